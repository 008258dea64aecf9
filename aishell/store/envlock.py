"""The per-env host lock.

Two host locks guard the store, always taken in this order (never the other way round,
so they cannot deadlock):

1. the **store lock** (:mod:`aishell.store.storelock`): shared by ``sync``, ``verify`` and
   ``run`` (until its container exists), exclusive for ``gc``;
2. a **per-env lock** (``<state>/locks/env-<env id>.lock``, ``filelock``, here): held while
   one env volume is checked and populated, so two concurrent syncs of the same env build
   it once — the second waits, re-checks and finds it complete.

Both report a wait through an ``on_wait`` hook (a message for the user) before they
block, so a waiting command never looks hung.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from aishell.paths import Paths

WaitHook = Callable[[str], None]


def locks_dir(paths: Paths) -> Path:
    directory = paths.ensure_state() / "locks"
    directory.mkdir(exist_ok=True)
    return directory


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
