"""The store lock (shared/exclusive flock) and the per-env lock, across processes."""

from __future__ import annotations

import subprocess
import sys
import time

from aishell.locks import StoreLock, env_lock
from aishell.paths import default_paths

HOLD = """
import sys, time
from pathlib import Path
from aishell.locks import StoreLock
lock = StoreLock(Path(sys.argv[1]))
with getattr(lock, sys.argv[2])():
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def hold(path, mode: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), mode, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def finish(proc: subprocess.Popen[str], *, kill: bool = False) -> None:
    if kill:
        proc.kill()
    proc.communicate(timeout=60)


def test_shared_holders_do_not_wait_for_each_other(tmp_path):
    path = tmp_path / "store.lock"
    other = hold(path, "shared", 5)
    waits: list[str] = []
    started = time.monotonic()
    with StoreLock(path, on_wait=waits.append).shared():
        assert time.monotonic() - started < 2
    assert waits == []
    finish(other, kill=True)


def test_exclusive_waits_for_shared_and_says_so(tmp_path):
    path = tmp_path / "store.lock"
    other = hold(path, "shared", 1.0)
    waits: list[str] = []
    started = time.monotonic()
    with StoreLock(path, on_wait=waits.append).exclusive():
        waited = time.monotonic() - started
    finish(other)
    assert waited >= 0.5
    assert waits == ["waiting for other aishell commands to finish using the store"]


def test_shared_waits_for_exclusive_and_says_so(tmp_path):
    path = tmp_path / "store.lock"
    other = hold(path, "exclusive", 1.0)
    waits: list[str] = []
    started = time.monotonic()
    with StoreLock(path, on_wait=waits.append).shared():
        waited = time.monotonic() - started
    finish(other)
    assert waited >= 0.5
    assert waits == ["waiting for `aishell gc` to finish with the store"]


def test_a_killed_holder_releases_the_lock(tmp_path):
    path = tmp_path / "store.lock"
    other = hold(path, "exclusive", 60)
    finish(other, kill=True)  # SIGKILL: the kernel drops the flock
    started = time.monotonic()
    with StoreLock(path).exclusive():
        assert time.monotonic() - started < 2


def test_env_lock_is_exclusive_across_processes_and_reports_waiting():
    paths = default_paths()
    env_id = "ab" * 32
    code = (
        "import sys, time; from aishell.locks import env_lock; from aishell.paths import "
        "default_paths\nwith env_lock(default_paths(), sys.argv[1]):\n"
        "    print('held', flush=True); time.sleep(1.0)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, env_id], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    waits: list[str] = []
    started = time.monotonic()
    with env_lock(paths, env_id, on_wait=waits.append):
        waited = time.monotonic() - started
    finish(proc)
    assert waited >= 0.5
    assert waits == [f"waiting for another aishell to finish building env {env_id[:12]}"]
    assert (paths.state / "locks" / f"env-{env_id}.lock").exists()
