"""`aishell lock --check` and `tree` on an existing lock: fast, offline, no engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from aishell.lock import lockfile
from tests.conftest import run_aishell
from tests.lock.test_lockfile import current_lock


def project_with_lock(tmp_path):
    lock = current_lock()
    (tmp_path / "aishell.toml").write_text(
        '[harnesses]\nagent = { npm = "agent", version = "^1" }\n')
    lockfile.write(tmp_path / "aishell.lock", lock)
    return tmp_path


def test_check_imports_neither_the_sdk_nor_the_resolver(tmp_path):
    project = project_with_lock(tmp_path)
    code = ("import sys; from aishell.cli import main; rc = main(['--project', sys.argv[1], "
            "'lock', '--check']); print(rc, sorted(m for m in sys.modules if m.split('.')[0] in "
            "('docker', 'rich') or m in ('urllib.request', 'aishell.lock.resolver', 'aishell.lock.registry', "
            "'tomlkit')))")
    r = subprocess.run([sys.executable, "-c", code, str(project)], capture_output=True,
                       text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "0 []"


def test_check_fresh_and_stale(tmp_path):
    project = project_with_lock(tmp_path)
    r = run_aishell("lock", "--check", cwd=project)
    assert r.returncode == 0
    assert r.stderr.strip() == f"{project / 'aishell.lock'} is up to date"
    (project / "aishell.toml").write_text('[harnesses]\nagent = { npm = "agent", version = "^2" }\n')
    r = run_aishell("lock", "--check", "--json", cwd=project)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["schema"] == "aishell.lock" and doc["status"] == "stale"
    assert doc["reasons"] == ["agent: requested '^1' -> '^2'"]


def test_fresh_relock_is_byte_identical_and_offline(tmp_path):
    project = project_with_lock(tmp_path)
    before = (project / "aishell.lock").read_bytes()
    # Unreachable registry and engine: a fresh lock needs neither.
    r = run_aishell("lock", cwd=project, env={"npm_config_registry": "http://127.0.0.1:9/",
                                              "DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert r.returncode == 0, r.stderr
    assert (project / "aishell.lock").read_bytes() == before


def test_removing_a_harness_relocks_offline(tmp_path):
    project = project_with_lock(tmp_path)
    (project / "aishell.toml").write_text("[harnesses]\n")
    r = run_aishell("lock", cwd=project, env={"npm_config_registry": "http://127.0.0.1:9/",
                                              "DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert r.returncode == 0, r.stderr
    assert "- agent agent@1.0.0" in r.stderr
    assert "[harness." not in (project / "aishell.lock").read_text()


def test_tree_lists_the_closure_per_platform(tmp_path):
    project = project_with_lock(tmp_path)
    r = run_aishell("tree", cwd=project)
    assert r.returncode == 0
    assert "agent agent@1.0.0 (requested '^1', bins: agent)" in r.stdout
    assert "  agent-linux-x64 1.0.0  [linux/amd64]" in r.stdout
    doc = json.loads(run_aishell("tree", "--json", cwd=project).stdout)
    assert doc["schema"] == "aishell.tree"
    assert doc["env_ids"] == current_lock().env_ids()


def test_init_writes_a_starter_and_refuses_to_overwrite(tmp_path):
    r = run_aishell("init", "--harness", "claude", cwd=tmp_path)
    assert r.returncode == 0
    text = (tmp_path / "aishell.toml").read_text()
    assert 'claude = "latest"' in text and text.startswith("# aishell.toml")
    again = run_aishell("init", cwd=tmp_path)
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_a_fresh_check_is_answered_from_the_plan_cache_until_an_input_changes(tmp_path):
    project = project_with_lock(tmp_path)
    home = tmp_path / "home"
    env = {"AISHELL_HOME": str(home)}
    first = run_aishell("lock", "--check", cwd=project, env=env)
    assert first.returncode == 0
    plans = list((home / "state" / "launch-plans").glob("*.plan"))
    assert len(plans) == 1
    code = ("import sys; from aishell.cli import main; rc = main(['lock', '--check']); "
            "print(rc, 'aishell.lock.lockfile' in sys.modules, file=sys.stdout)")
    again = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                           text=True, check=True, env={**os.environ, **env})
    assert again.stdout.strip() == "0 False"  # answered without loading the lock
    assert again.stderr == first.stderr
    # Any input that changes sends the check down the full path: the manifest here.
    (project / "aishell.toml").write_text('[harnesses]\nagent = { npm = "agent", version = "^2" }\n')
    stale = run_aishell("lock", "--check", cwd=project, env=env)
    assert stale.returncode == 1 and "stale" in stale.stderr
