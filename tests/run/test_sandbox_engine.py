"""The sandbox on the real engine: identity, paths, exit codes, the entrypoint's edge cases."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import forget_home, run_aishell

pytestmark = pytest.mark.engine

PROBE = "id -u; id -g; pwd; git config user.email; echo $HOME"


def test_exec_maps_identity_path_and_git(foundation_tag, git_project):
    r = run_aishell("exec", "--", "sh", "-c", PROBE, cwd=git_project)
    assert r.returncode == 0, r.stderr
    uid, gid, pwd, email, home = r.stdout.splitlines()
    assert (int(uid), int(gid)) == (os.getuid(), os.getgid())
    assert pwd == str(git_project)
    assert email == "ada@example.org"
    assert home == (os.environ["HOME"] if os.getuid() else "/root")


def test_exec_passes_the_exit_code_back(foundation_tag, tmp_path):
    r = run_aishell("exec", "--", "sh", "-c", "exit 7", cwd=tmp_path)
    assert r.returncode == 7


def test_exec_pipes_stdin_without_a_tty(foundation_tag, tmp_path):
    r = run_aishell("exec", "--", "sh", "-c", "tr a-z A-Z; test -t 0 || echo no-tty",
                    cwd=tmp_path, input="hello\n")
    assert r.stdout.splitlines() == ["HELLO", "no-tty"]


def test_no_wrapper_process_remains(foundation_tag, tmp_path):
    # docker-init is PID 1; the command itself must be its direct child (gosu exec'd it).
    r = run_aishell("exec", "--", "sh", "-c", "cat /proc/$$/status | grep PPid; ps -o comm= -p 1",
                    cwd=tmp_path)
    lines = r.stdout.split()
    assert lines[:2] == ["PPid:", "1"]
    from tests.conftest import TEST_ENGINE

    assert lines[2] == f"{TEST_ENGINE}-init"  # the engine's own tini (podman: catatonit)


def test_host_home_is_not_visible(foundation_tag, tmp_path):
    marker = Path(os.environ["HOME"]) / ".aishell-test-marker"
    marker.write_text("secret")
    try:
        r = run_aishell("exec", "--", "sh", "-c", f"test -e {marker} && echo LEAK || echo ok",
                        cwd=tmp_path)
    finally:
        marker.unlink()
    assert r.stdout.strip() == "ok"


def test_not_a_git_repo_and_no_identity_still_runs(foundation_tag, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    project = tmp_path / "plain"
    project.mkdir()
    r = run_aishell("exec", "--", "sh", "-c", "pwd; git config user.email || echo none",
                    cwd=project, env={"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(project), "none"]


def test_paths_with_commas_quotes_and_unicode(foundation_tag, tmp_path):
    project = tmp_path / 'we,ird "dir" ü ✓'
    project.mkdir()
    r = run_aishell("exec", "--", "sh", "-c", "pwd; touch made-inside", cwd=project)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(project)
    assert (project / "made-inside").exists()


def test_check_is_all_green(foundation_tag, tmp_path):
    r = run_aishell("check", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "✗" not in r.stdout
    assert "✓ foundation image" in r.stdout


def _entrypoint(foundation_tag: str, env: dict[str, str], script: str,
                home: str = "/home/someone") -> list[str]:
    args = ["docker", "run", "--rm", "--init", "--label", "dev.aishell.test=1"]
    for k, v in {"AISHELL_HOME": home, **env}.items():
        args += ["-e", f"{k}={v}"]
    r = subprocess.run([*args, foundation_tag, "sh", "-c", script], capture_output=True,
                       text=True, check=False, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_entrypoint_reuses_an_existing_uid(foundation_tag):
    # UID 1 is `daemon` in Debian images.
    out = _entrypoint(foundation_tag, {"AISHELL_UID": "1", "AISHELL_GID": "1",
                                       "AISHELL_USER": "ada"},
                      "id -u; id -g; echo $HOME; stat -c %u $HOME")
    assert out == ["1", "1", "/home/someone", "1"]


def test_entrypoint_handles_taken_name_and_existing_gid(foundation_tag):
    # `daemon` exists with another UID; GID 100 is `users`.
    out = _entrypoint(foundation_tag, {"AISHELL_UID": "4321", "AISHELL_GID": "100",
                                       "AISHELL_USER": "daemon"},
                      "id -u; id -g; id -gn; id -un")
    assert out == ["4321", "100", "users", "aishell-4321"]


def test_entrypoint_pre_start_runs_in_background(foundation_tag):
    out = _entrypoint(
        foundation_tag,
        {"AISHELL_UID": "4321", "AISHELL_GID": "4321", "AISHELL_PRE_START": "id -u > /tmp/who"},
        "for i in $(seq 50); do grep -q ready /run/aishell/pre-start 2>/dev/null && break;"
        " sleep 0.1; done; cat /run/aishell/pre-start /tmp/who",
    )
    assert out == ["ready", "4321"]


def test_entrypoint_puts_tools_bins_first_on_path(foundation_tag, tmp_path):
    tools = tmp_path / "tools" / "bin"
    tools.mkdir(parents=True)
    (tools / "hello-tool").write_text("#!/bin/sh\necho from-tools\n")
    (tools / "hello-tool").chmod(0o755)
    r = subprocess.run(
        ["docker", "run", "--rm", "--init", "--label", "dev.aishell.test=1",
         "-v", f"{tmp_path / 'tools'}:/tools:ro", "-e", "AISHELL_UID=4321", "-e",
         "AISHELL_GID=4321", foundation_tag, "sh", "-c", "hello-tool; bash -lc hello-tool"],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert r.stdout.split() == ["from-tools", "from-tools"], r.stderr


def test_failed_build_shows_the_failing_step(engine):
    from aishell.errors import BuildFailed
    from aishell.lock.foundation import Foundation
    from aishell.store.images import ensure_foundation

    broken = Foundation.from_settings(extra_packages=["aishell-no-such-package"])
    with pytest.raises(BuildFailed) as exc:
        ensure_foundation(engine, broken)
    assert "Unable to locate package aishell-no-such-package" in exc.value.log
    assert "apt-get install" in exc.value.log
    assert engine.image_inspect(broken.tag) is None


# -- as a non-root host user ---------------------------------------------------------------

TEST_USER = "aishell-test"


def _world_reachable(path: Path) -> bool:
    return all(p.stat().st_mode & 0o005 == 0o005 for p in (path, *path.parents))


@pytest.fixture(scope="session")
def non_root_runner(tmp_path_factory) -> Iterator[list[str]]:
    """argv prefix that runs aishell as an unprivileged user with access to the engine."""
    if os.getuid() != 0:
        yield [sys.executable, "-m", "aishell"]
        return
    sock = Path("/var/run/docker.sock")
    sock_gid = sock.stat().st_gid
    assert sock_gid != 0, "the engine socket's group is root; provision with the docker group"
    subprocess.run(["id", TEST_USER], capture_output=True, check=False).returncode == 0 or \
        subprocess.run(["useradd", "--create-home", TEST_USER], check=True)
    subprocess.run(["usermod", "-aG", str(sock_gid), TEST_USER], check=True)
    # The interpreter and packages must be readable by that user; root's are often not
    # (e.g. under /root). Copy the environment somewhere world-readable.
    python = Path(sys.executable).resolve()
    if not _world_reachable(python):
        candidate = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
        assert candidate.exists(), f"no interpreter readable by {TEST_USER}"
        python = candidate
    root = Path(tempfile.mkdtemp(prefix="aishell-nonroot-", dir="/tmp"))
    site = root / "site"
    shutil.copytree(sysconfig.get_paths()["purelib"], site, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "mypy*", "_pytest", "pytest*"))
    shutil.copytree(Path(__file__).resolve().parents[2] / "aishell", site / "aishell",
                    dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    root.chmod(0o755)
    yield ["runuser", "-u", TEST_USER, "--", "env", f"PYTHONPATH={site}",
           "PYTHONDONTWRITEBYTECODE=1", str(python), "-m", "aishell"]
    shutil.rmtree(root, ignore_errors=True)


def test_non_root_user_owns_what_the_sandbox_creates(foundation_tag, non_root_runner):
    import pwd

    user = pwd.getpwnam(TEST_USER) if os.getuid() == 0 else pwd.getpwuid(os.getuid())
    project = Path(tempfile.mkdtemp(prefix="aishell proj ", dir="/tmp"))
    home = Path(user.pw_dir)
    try:
        os.chown(project, user.pw_uid, user.pw_gid)
        project.chmod(0o755)
        as_user = ["runuser", "-u", user.pw_name, "--"] if os.getuid() == 0 else []
        subprocess.run([*as_user, "git", "init", "-q", str(project)], check=True)
        subprocess.run([*as_user, "git", "-C", str(project), "config", "user.email",
                        "nr@example.org"], check=True)
        state = project / ".state"
        r = subprocess.run(
            [*non_root_runner, "exec", "--", "sh", "-c",
             ("id -u; id -g; pwd; git config user.email; echo $HOME; touch made-here; "
             "mkdir -p sub && touch sub/deep")],
            cwd=project, capture_output=True, text=True, check=False, timeout=300,
            env={**os.environ, "AISHELL_HOME": str(state), "HOME": str(home)},
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == [str(user.pw_uid), str(user.pw_gid), str(project),
                                         "nr@example.org", str(home)]
        for made in (project / "made-here", project / "sub", project / "sub" / "deep"):
            st = made.stat()
            assert (st.st_uid, st.st_gid) == (user.pw_uid, user.pw_gid)
    finally:
        forget_home(project / ".state")
        shutil.rmtree(project, ignore_errors=True)


def test_check_reports_the_lock_and_env(foundation_tag, tmp_path):
    import shutil as _shutil

    from tests.lock.test_locking_live import MANIFEST

    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "aishell.toml").write_text(MANIFEST)
    _shutil.copy(repo / "aishell.lock.example", tmp_path / "aishell.lock")
    r = run_aishell("check", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert "✓ lock" in r.stdout and "is fresh" in r.stdout
    assert "· env" in r.stdout or "✓ env" in r.stdout
    (tmp_path / "aishell.toml").write_text(MANIFEST.replace('"1.18.18"', '"1.18.17"'))
    r = run_aishell("check", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert r.returncode == 0
    assert "! lock" in r.stdout and "requested '1.18.18' -> '1.18.17'" in r.stdout
    (tmp_path / "aishell.lock").write_text("<<<<<<< HEAD\n")
    r = run_aishell("check", cwd=tmp_path, env={"NO_COLOR": "1"})
    assert r.returncode == 1
    assert "✗ lock" in r.stdout and "merge-conflict" in r.stdout
