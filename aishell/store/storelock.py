"""The store-wide lock: ``sync`` and ``run`` hold it shared, ``gc`` holds it exclusively.

Sharing lets any number of syncs and launches proceed together, while ``gc`` waits for all
of them to finish (and they wait for a running ``gc``), so an item is never swept between
the moment a sync decides it exists and the moment it is used. ``run`` holds it only until
its container exists: from then on the container itself is a root, and the engine refuses
to remove a volume a container uses.

It is an ``flock(2)`` on ``<state>/locks/store.lock`` — the same file
``aishell.store.envlock.StoreLock`` (the sync branch) uses, so the two interoperate until one
replaces the other. The kernel drops the lock when the process dies, so a killed sync
never leaves the store locked. flock locks belong to the open file description, so two
holders in one process conflict just like two processes do.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from aishell.errors import AishellError
from aishell.paths import Paths

LOCKS_DIR = "locks"
LOCK_NAME = "store.lock"
POLL_SECONDS = 0.1


class StoreLockTimeout(AishellError):
    """The store lock was not granted within the time allowed."""


def lock_path(paths: Paths) -> Path:
    directory = paths.ensure_state() / LOCKS_DIR
    directory.mkdir(exist_ok=True)
    return directory / LOCK_NAME


@contextmanager
def _held(paths: Paths, mode: int, what: str, on_wait: Callable[[str], None] | None,
          timeout: float | None) -> Iterator[None]:
    fd = os.open(lock_path(paths), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                other = "a sync or launch" if mode == fcntl.LOCK_EX else "a garbage collection"
                on_wait(f"waiting for {other} to finish (the store is locked)…")
            _wait(fd, mode, what, timeout)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _wait(fd: int, mode: int, what: str, timeout: float | None) -> None:
    if timeout is None:
        fcntl.flock(fd, mode)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreLockTimeout(
                    f"the store stayed locked for {timeout:g} s; {what} gave up",
                    hint="another aishell (sync, run or gc) holds it; try again when it is done",
                ) from None
            time.sleep(POLL_SECONDS)


def shared(paths: Paths, *, on_wait: Callable[[str], None] | None = None,
           timeout: float | None = None) -> AbstractContextManager[None]:
    """Hold the store lock shared (``sync``, ``run`` until its container exists).

    Args:
        paths: where the state directory is.
        on_wait: called once with a message when the lock is not granted at once.
        timeout: seconds to wait before StoreLockTimeout (default: wait for ever).
    """
    return _held(paths, fcntl.LOCK_SH, "sync", on_wait, timeout)


def exclusive(paths: Paths, *, on_wait: Callable[[str], None] | None = None,
              timeout: float | None = None) -> AbstractContextManager[None]:
    """Hold the store lock exclusively (``gc``); same arguments as :func:`shared`."""
    return _held(paths, fcntl.LOCK_EX, "gc", on_wait, timeout)

