"""One writer per workspace: a lock that a second `matmcl` run, stage or Dagster step fails on at once.

The lock is an advisory `flock` on `<workspace>/.matmcl/lock`, which also records who holds it (pid, command,
start time). The operating system drops the flock when its process dies, so a lock left by a killed process is
stale by construction: the next run takes it, says so, and first removes the temporary files and folders that
the killed run's atomic writes left behind. The lock is re-entrant within a process (`matmcl run` holds it while
its stages take it again).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_DIR = ".matmcl"
LOCK_FILE = "lock"
TEMP_SUFFIXES = (".tmp", ".old")  # what matmcl.atomic leaves beside a target when its writer is killed

_held: dict[Path, int] = {}  # lock path -> nesting depth in this process


class WorkspaceBusyError(RuntimeError):
    """Another process holds the workspace lock."""


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid')} (`{holder.get('command', '?')}`, started {started})"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(folders: list[Path]) -> list[Path]:
    """Delete the hidden `.<name>.*.tmp` / `.<name>.old` files and folders that interrupted atomic writes left in
    `folders` (recursively); returns what was removed."""
    def leftover(name: str) -> bool:
        return name.startswith(".") and name.endswith(TEMP_SUFFIXES)

    found = []
    for folder in folders:
        if folder.parent.is_dir():  # an atomic replacement of the folder itself works beside it
            found += [p for p in folder.parent.glob(f".{folder.name}.*") if leftover(p.name)]
        for dirpath, dirnames, filenames in os.walk(folder):
            found += [Path(dirpath) / name for name in [*dirnames, *filenames] if leftover(name)]
            dirnames[:] = [d for d in dirnames if not leftover(d)]
    for path in found:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    return found


@contextmanager
def workspace_lock(root: str | Path, cleanup: list[Path] | None = None) -> Iterator[None]:
    """Hold the lock of workspace `root` for the block; raise WorkspaceBusyError naming the holder if another
    process has it. On first acquisition, remove leftovers of killed runs from the `cleanup` folders."""
    path = (Path(root) / LOCK_DIR / LOCK_FILE).resolve()
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise WorkspaceBusyError(f"workspace {Path(root).resolve()} is in use by {_describe(_holder(path))}; "
                                 "wait for it to finish or stop it") from None
    previous = _holder(path)
    if previous.get("pid") and previous["pid"] != os.getpid() and not _alive(previous["pid"]):
        log.warning("cleared a stale workspace lock of %s, which no longer runs", _describe(previous))
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv[:3]), "started": time.time()}))
    handle.flush()
    _held[path] = 1
    try:
        for leftover in remove_leftovers(cleanup or []):
            log.warning("removed %s, left by an interrupted run", leftover)
        yield
    finally:
        del _held[path]
        handle.seek(0)
        handle.truncate()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
