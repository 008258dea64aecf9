"""`aishell sync` on the real engine against the fixture registry."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_aishell
from tests.fixtures_lock import write_manifest

pytestmark = pytest.mark.engine

HARNESSES = 'a = { npm = "agent-a", version = "^1" }\nb = { npm = "agent-b", version = "1.0.0" }'


def sync_json(project: Path, *args: str) -> dict:
    r = run_aishell("sync", "--json", *args, cwd=project)
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    doc["_rc"] = r.returncode
    return doc


def remove_volume(name: str) -> None:
    subprocess.run(["docker", "volume", "rm", "-f", name], capture_output=True, check=False)


@pytest.fixture
def project(tmp_path, lock_env, foundation_tag):
    p = tmp_path / "proj"
    p.mkdir()
    write_manifest(p, HARNESSES)
    yield p
    lock = p / "aishell.lock"
    if lock.exists():
        for line in lock.read_text().splitlines():
            if line.startswith("id = "):
                remove_volume("aishell-env-" + line.split('"')[1][:32])


def run_in_env(volume: str, image: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", "--init", "--label", "dev.aishell.test=1", "--network", "none",
         "--mount", f"type=volume,source={volume},target=/tools,readonly,volume-nocopy",
         "-e", "AISHELL_UID=4321", "-e", "AISHELL_GID=4321", image, "bash", "-c", script],
        capture_output=True, text=True, check=False, timeout=120,
    )


def test_sync_builds_a_working_env_once_and_a_second_project_reuses_it(
        project, lock_env, foundation_tag, tmp_path):
    first = sync_json(project)
    assert first["_rc"] == 0
    assert first["lock"] == "relocked"
    env = first["env"]
    assert env["state"] == "built" and env["files"] > 0 and len(env["tree_digest"]) == 64
    # The bins run as a non-root user from the read-only volume; the locked install
    # script of agent-b ran, nothing else's did.
    r = run_in_env(env["volume"], foundation_tag,
                   "id -u; agent-a; agent-b; node --version; "
                   "test -e /tools/h/b/node_modules/agent-b/built && echo script-ran; "
                   "touch /tools/x 2>/dev/null || echo read-only")
    assert r.stdout.split() == ["4321", "agent-a@1.0.0", "agent-b@1.0.0", "v24.21.0",
                                "script-ran", "read-only"], r.stderr

    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(project / "aishell.toml", other)
    shutil.copy(project / "aishell.lock", other)
    mark = len(lock_env.log)
    second = sync_json(other)
    assert second["env"]["state"] == "reused"
    assert second["env"]["volume"] == env["volume"]
    assert second["downloads"]["fetched"] == 0
    assert lock_env.requests_since(mark) == []  # not one request to the registry


def test_offline_resync_after_removing_the_volume_is_identical(project, lock_env):
    built = sync_json(project)["env"]
    remove_volume(built["volume"])
    mark = len(lock_env.log)
    again = sync_json(project, "--offline")
    assert again["env"]["state"] == "built"
    assert again["env"]["tree_digest"] == built["tree_digest"]
    assert again["downloads"]["fetched"] == 0
    assert lock_env.requests_since(mark) == []
    verified = run_aishell("verify", cwd=project)  # this project's env
    assert verified.returncode == 0, verified.stderr
    assert built["volume"][len("aishell-env-"):][:12] in verified.stdout


def test_check_reports_and_builds_nothing(project):
    r = run_aishell("lock", cwd=project)
    assert r.returncode == 0, r.stderr
    missing = sync_json(project, "--check")
    assert missing["_rc"] == 1
    assert missing["env"]["state"] == "missing"
    sync_json(project)
    assert sync_json(project, "--check")["_rc"] == 0


def test_locked_refuses_a_stale_lock(project):
    assert run_aishell("lock", cwd=project).returncode == 0
    write_manifest(project, HARNESSES.replace("1.0.0", "^1"))
    r = run_aishell("sync", "--locked", cwd=project)
    assert r.returncode == 1
    assert "is out of date: b: requested '1.0.0' -> '^1'" in r.stderr
    assert "Traceback" not in r.stderr


def test_frozen_needs_a_lock(project):
    r = run_aishell("sync", "--frozen", cwd=project)
    assert r.returncode == 1
    assert "--frozen uses the lock as it is" in r.stderr


def test_a_corrupted_cached_tarball_is_an_error_naming_the_package(project, private_state):
    built = sync_json(project)["env"]
    remove_volume(built["volume"])
    cache = private_state / "cache" / "tarballs"
    lock = (project / "aishell.lock").read_text()
    integrity = next(line.split('"')[1] for line in lock.splitlines()
                     if line.startswith("integrity") and "agent-b" not in line
                     and lock.find(line) > lock.find('path = "node_modules/agent-b"'))
    from aishell.lock.cache import DownloadCache

    victim = DownloadCache(cache).path_for(integrity)
    original = victim.read_bytes()
    try:
        victim.chmod(0o644)
        victim.write_bytes(original[:-10] + b"0123456789")
        r = run_aishell("sync", "--offline", cwd=project)
        assert r.returncode == 1
        assert "agent-b@1.0.0" in r.stderr
        assert "is corrupted" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        victim.write_bytes(original)


def test_killed_sync_leaves_nothing_mountable_and_the_next_repairs(project, private_state):
    assert run_aishell("lock", cwd=project).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "aishell", "-v", "sync"], cwd=project, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy(),
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if "installing" in line or time.monotonic() > deadline:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    check = sync_json(project, "--check")
    assert check["env"]["state"] == "missing"
    repaired = sync_json(project)
    assert repaired["env"]["state"] == "built"
    assert run_aishell("verify", "--all", cwd=project).returncode == 0


def test_two_concurrent_syncs_build_once(project):
    assert run_aishell("lock", cwd=project).returncode == 0
    procs = [subprocess.Popen([sys.executable, "-m", "aishell", "sync", "--json"], cwd=project,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    states = sorted(json.loads(p.communicate(timeout=600)[0])["env"]["state"] for p in procs)
    assert states == ["built", "reused"]


def test_a_failing_install_shows_its_last_lines_without_verbose(project, lock_env):
    import uuid

    name = f"failing-{uuid.uuid4().hex[:8]}"
    lock_env.publish(name, "1.0.0", bin={"failing": "bin/f.js"},
                     install_script="echo 'cannot unpack the native binary' >&2; exit 3")
    # allow-network-install: `lock` does not run the script, so the failure is population's.
    write_manifest(project, f'f = {{ npm = "{name}", allow-network-install = true }}')
    r = run_aishell("sync", cwd=project)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    error = next(i for i, ln in enumerate(lines) if ln.startswith("error:"))
    shown = "\n".join(lines[:error])
    assert "  | " in shown and "cannot unpack the native binary" in shown
    assert "aishell: installing f failed" in shown
    assert lines[error].endswith("step 'install the locked closure' exited with code 3")
    assert lines[error + 1] == (
        "hint: the last 20 lines of the step's output are shown above (`-v` streams all of "
        "it); nothing half-built was kept, so running again starts from scratch")


def test_a_no_op_sync_is_answered_from_the_plan_cache_until_the_env_or_an_input_changes(
        project, private_state):
    first = run_aishell("sync", cwd=project)
    assert first.returncode == 0, first.stderr  # built and locked: nothing cached yet
    noop = run_aishell("sync", cwd=project)
    assert noop.returncode == 0 and "is complete: reused" in noop.stdout, noop.stderr
    probe = ("import sys; from aishell.cli import main; rc = main(['sync']); "
             "print(rc, 'aishell.store.sync' in sys.modules)")
    again = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True,
                           text=True, check=True, env={**os.environ})
    assert again.stdout.splitlines() == [noop.stdout.strip(), "0 False"]  # replayed
    volume = json.loads(run_aishell("sync", "--json", cwd=project).stdout)["env"]["volume"]
    remove_volume(volume)  # the env is gone: the answer no longer holds
    rebuilt = run_aishell("sync", cwd=project)
    assert rebuilt.returncode == 0 and "reused" not in rebuilt.stdout, rebuilt.stdout
    (project / "aishell.toml").write_text((project / "aishell.toml").read_text() + "\n")
    edited = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True,
                            text=True, check=True, env={**os.environ})
    assert edited.stdout.splitlines()[-1] == "0 True"  # an input changed: the full path
