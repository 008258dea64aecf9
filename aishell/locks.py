"""Host-side locks of the store.

Two kinds, always taken in this order (never the other way round, so they cannot
deadlock):

1. the **store lock** (``<state>/locks/store.lock``): taken *shared* by every command that
   builds or uses store items (``sync``, ``run`` until its container exists, ``verify``)
   and *exclusive* by ``gc``, so gc never sweeps an item a sync is building or a launch
   is about to mount. ``filelock`` has no shared mode, so this is ``flock(2)`` on a lock
   file: the kernel releases it when the process dies, even on ``kill -9``.
2. a **per-env lock** (``<state>/locks/env-<env id>.lock``, ``filelock``): held while one
   env volume is checked and populated, so two concurrent syncs of the same env build it
   once — the second waits, re-checks and finds it complete.

Both report a wait through an ``on_wait`` hook (a message for the user) before they
block, so a waiting command never looks hung.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from aishell.paths import Paths

WaitHook = Callable[[str], None]


def locks_dir(paths: Paths) -> Path:
    directory = paths.state / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class StoreLock:
    """The store-wide shared/exclusive lock (``flock`` on ``path``).

    Args:
        path: the lock file (created when missing; its content is never used).
        on_wait: called once with a message when the lock is busy, before blocking.
    """

    def __init__(self, path: Path, on_wait: WaitHook | None = None) -> None:
        self.path = path
        self.on_wait = on_wait

    @classmethod
    def for_paths(cls, paths: Paths, on_wait: WaitHook | None = None) -> StoreLock:
        return cls(locks_dir(paths) / "store.lock", on_wait)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Held by builders and users of the store; many at once."""
        with self._hold(fcntl.LOCK_SH, "waiting for `aishell gc` to finish with the store"):
            yield

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held by gc; excludes every other holder."""
        with self._hold(fcntl.LOCK_EX,
                        "waiting for other aishell commands to finish using the store"):
            yield

    @contextlib.contextmanager
    def _hold(self, operation: int, message: str) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            try:
                fcntl.flock(fd, operation | fcntl.LOCK_NB)
            except BlockingIOError:
                if self.on_wait is not None:
                    self.on_wait(message)
                fcntl.flock(fd, operation)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock


@contextlib.contextmanager
def env_lock(paths: Paths, env_id: str, on_wait: WaitHook | None = None) -> Iterator[None]:
    """Hold the per-env lock of ``env_id`` (exclusive, across processes)."""
    lock = FileLock(str(locks_dir(paths) / f"env-{env_id}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if on_wait is not None:
            on_wait(f"waiting for another aishell to finish building env {env_id[:12]}")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
