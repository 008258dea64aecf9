"""The real four-harness env from the real npm registry (live tier)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from aishell.lock.freshness import read_lock
from tests.conftest import forget_home, run_aishell
from tests.lock.test_locking_live import MANIFEST

pytestmark = [pytest.mark.live, pytest.mark.engine]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def real_project(tmp_path_factory):
    project = tmp_path_factory.mktemp("live") / "four harnesses"
    project.mkdir()
    (project / "aishell.toml").write_text(MANIFEST)
    shutil.copy(REPO / "aishell.lock.example", project / "aishell.lock")
    yield project
    lock = read_lock(project / "aishell.lock")
    if lock is not None:
        from aishell.store.envs import volume_name

        for env_id in lock.env_ids().values():
            subprocess.run(["docker", "volume", "rm", "-f", volume_name(env_id)],
                           capture_output=True, check=False)


def test_sync_and_run_the_real_harnesses_as_a_user(real_project, foundation_tag, monkeypatch):
    monkeypatch.delenv("npm_config_registry", raising=False)
    r = run_aishell("sync", "--locked", "--json", cwd=real_project, timeout=1800)
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)["env"]
    assert env["state"] in ("built", "reused", "restored")  # restored: an archive on the engine
    lock = read_lock(real_project / "aishell.lock")
    assert lock is not None
    versions = {h.name: h.version for h in lock.harnesses}
    script = "; ".join(f"echo {name}: $({name} --version 2>&1 | head -n 1)" for name in versions)
    out = subprocess.run(
        ["docker", "run", "--rm", "--init", "--label", "dev.aishell.test=1",
         "--mount", f"type=volume,source={env['volume']},target=/tools,readonly,volume-nocopy",
         "-e", "AISHELL_UID=4321", "-e", "AISHELL_GID=4321", "-e", "DISABLE_AUTOUPDATER=1",
         foundation_tag, "bash", "-c", f"id -u; {script}"],
        capture_output=True, text=True, check=False, timeout=300,
    )
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "4321", out.stderr
    printed = dict(line.split(": ", 1) for line in lines[1:])
    for name, version in versions.items():
        assert version in printed[name], f"{name}: locked {version}, printed {printed[name]!r}"
    assert run_aishell("verify", "--all", cwd=real_project).returncode == 0


def test_the_real_env_is_pushed_and_substituted_into_an_empty_home(
        real_project, foundation_tag, oci_registry, tmp_path, monkeypatch):
    """The four real harnesses through a real registry: no npm, the same tree digest."""
    monkeypatch.delenv("npm_config_registry", raising=False)
    try:
        _push_and_substitute(real_project, foundation_tag, oci_registry, tmp_path)
    finally:
        _remove_env_images(real_project)
        forget_home(tmp_path / "second home")  # its sync published its gc roots


def _remove_env_images(project: Path) -> None:
    lock = read_lock(project / "aishell.lock")
    for env_id in (lock.env_ids().values() if lock else ()):
        for image in subprocess.run(["docker", "images", "-q", "--filter",
                                     f"label=dev.aishell.env-id={env_id}"],
                                    capture_output=True, text=True, check=True).stdout.split():
            subprocess.run(["docker", "rmi", "-f", image], capture_output=True, check=False)


def _push_and_substitute(real_project, foundation_tag, oci_registry, tmp_path) -> None:
    built = run_aishell("sync", "--locked", "--json", cwd=real_project, timeout=1800)
    assert built.returncode == 0, built.stderr
    env = json.loads(built.stdout)["env"]
    pushed = run_aishell("store", "push", "--json", "--to", oci_registry.path(),
                         cwd=real_project, timeout=1800)
    assert pushed.returncode == 0, pushed.stderr
    subprocess.run(["docker", "volume", "rm", "-f", env["volume"]], capture_output=True,
                   check=True)
    _remove_env_images(real_project)
    home = {"AISHELL_HOME": str(tmp_path / "second home"),
            "npm_config_registry": "http://127.0.0.1:9/"}  # npm would fail: it must not run
    got = run_aishell("sync", "--locked", "--json", "--substituter", oci_registry.path(),
                      cwd=real_project, env=home, timeout=1800)
    assert got.returncode == 0, got.stderr
    substituted = json.loads(got.stdout)["env"]
    assert substituted["state"] == "substituted", got.stderr
    assert (substituted["tree_digest"], substituted["files"]) == (env["tree_digest"], env["files"])
    assert not [f for f in (tmp_path / "second home" / "cache").rglob("*") if f.is_file()]
    verified = run_aishell("verify", "--all", cwd=real_project, env=home, timeout=600)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # The pulled env runs: claude's native binary kept its executable bit.
    out = subprocess.run(
        ["docker", "run", "--rm", "--init", "--label", "dev.aishell.test=1",
         "--mount", f"type=volume,source={env['volume']},target=/tools,readonly,volume-nocopy",
         "-e", "AISHELL_UID=4321", "-e", "AISHELL_GID=4321", "-e", "DISABLE_AUTOUPDATER=1",
         foundation_tag, "bash", "-c", "claude --version"],
        capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stderr
