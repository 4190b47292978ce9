"""Independent jobs (cross-validation folds) on forked worker processes, one thread each.

The models these jobs train are small: one torch thread per process is as fast as several, so on the 2-core default
machine two folds at a time halve the wall time. Workers are forked, so the data every job reads (`shared`) is
passed copy-on-write instead of pickled; each job must seed its own randomness, which makes the results independent
of `workers`. Every job runs with one torch thread and one OpenMP/BLAS thread (threadpoolctl): besides avoiding
oversubscription, a forked child must not enter an OpenMP parallel region of a pool its parent already started
(libgomp is not fork-safe: scikit-learn's gradient boosting hung there after a multi-threaded stage in the same
process).
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import torch
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)
_JOB: tuple[Callable[..., Any], tuple] | None = None  # (function, shared arguments); set before the workers fork


def _call(item: Any) -> Any:
    function, shared = _JOB
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            return function(item, *shared)
    finally:
        torch.set_num_threads(threads)


def map_forked(function: Callable[..., R], items: Sequence[T], shared: tuple = (), workers: int = 1,
               desc: str = "", progress: bool = False) -> Iterator[R]:
    """`function(item, *shared)` for every item, yielded in item order; with `workers` > 1 on that many forked
    processes (the results must be picklable). A worker process that dies (killed, or a fork-unsafe library) does
    not hang the caller: the jobs not yet returned run in this process instead, with the same results (each job
    seeds its own randomness)."""
    global _JOB
    _JOB = (function, shared)
    bar = tqdm(total=len(items), desc=desc, disable=not progress)
    done = 0
    try:
        if workers > 1 and len(items) > 1:
            try:
                with ProcessPoolExecutor(min(workers, len(items)), mp_context=multiprocessing.get_context("fork")) \
                        as pool:
                    for result in pool.map(_call, items):
                        yield result
                        done += 1
                        bar.update()
            except BrokenProcessPool:
                log.warning("%s: a worker process died; running the remaining %d of %d jobs in this process",
                            desc or "parallel jobs", len(items) - done, len(items))
        for item in items[done:]:
            yield _call(item)
            bar.update()
    finally:
        bar.close()
        _JOB = None
