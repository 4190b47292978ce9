"""`map_forked`: results in item order whatever the number of workers, and a worker process that dies does not hang
the caller (the remaining jobs run in the calling process)."""

import os

from matmcl.parallel import map_forked


def _square(item: int, offset: int) -> int:
    return item * item + offset


def _dies_in_a_worker(item: int, parent: int) -> int:
    if item == 3 and os.getpid() != parent:
        os._exit(1)  # a worker killed mid-job (e.g. by a fork-unsafe library)
    return item * 10


def test_results_come_in_item_order_with_any_number_of_workers():
    items = list(range(7))
    expected = [i * i + 5 for i in items]
    assert list(map_forked(_square, items, (5,), workers=1)) == expected
    assert list(map_forked(_square, items, (5,), workers=2)) == expected


def test_a_dead_worker_falls_back_to_this_process_with_the_same_results():
    items = list(range(6))
    assert list(map_forked(_dies_in_a_worker, items, (os.getpid(),), workers=2)) == [i * 10 for i in items]
