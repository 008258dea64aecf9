"""The store lock: shared holders coexist, exclusive waits for them (no engine)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from aishell.paths import default_paths
from aishell.store import storelock


def _cannot(lock, **kw) -> str:
    with pytest.raises(storelock.StoreLockTimeout) as exc, lock(default_paths(), timeout=0.2, **kw):
        pass
    return exc.value.message


def test_shared_holders_coexist_and_exclude_gc():
    paths = default_paths()
    with storelock.shared(paths), storelock.shared(paths):
        assert "gc gave up" in _cannot(storelock.exclusive)
    with storelock.exclusive(paths, timeout=0.2):
        assert "sync gave up" in _cannot(storelock.shared)


def test_wait_message_is_given_once():
    seen: list[str] = []
    with storelock.exclusive(default_paths()):
        _cannot(storelock.shared, on_wait=seen.append)
    assert seen == ["waiting for a garbage collection to finish (the store is locked)…"]


def test_a_killed_holder_releases_the_lock():
    code = textwrap.dedent("""
        import sys
        from aishell.store import storelock
        from aishell.paths import default_paths
        with storelock.shared(default_paths()):
            print("held", flush=True)
            sys.stdin.readline()
    """)
    with subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        _cannot(storelock.exclusive)
        proc.kill()
    with storelock.exclusive(default_paths(), timeout=5):
        pass


def test_same_file_as_the_sync_branch_lock():
    # aishell.store.envlock.StoreLock (sync) flocks <state>/locks/store.lock: gc must exclude it.
    import fcntl
    import os

    paths = default_paths()
    assert storelock.lock_path(paths) == paths.state / "locks" / "store.lock"
    fd = os.open(paths.state / "locks" / "store.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        _cannot(storelock.exclusive)
    finally:
        os.close(fd)
