"""The per-env lock, across processes (the store lock: tests/store/test_storelock.py)."""

from __future__ import annotations

import subprocess
import sys
import time

from aishell.paths import default_paths
from aishell.store.envlock import env_lock


def finish(proc: subprocess.Popen[str]) -> None:
    proc.communicate(timeout=60)


def test_env_lock_is_exclusive_across_processes_and_reports_waiting():
    paths = default_paths()
    env_id = "ab" * 32
    code = (
        "import sys, time; from aishell.store.envlock import env_lock; from aishell.paths import "
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
