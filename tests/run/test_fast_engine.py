"""The cached launch plan on the real engine: replayed when nothing changed, and never stale.

Each test changes one input of a launch between two `aishell exec`s and sees the second
follow it. A replay is recognised by its plan file: the full launch rewrites it, a replay
only reads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aishell.run import fast
from tests.conftest import run_aishell
from tests.fixtures_lock import write_manifest
from tests.fixtures_run import run_project_fixture  # noqa: F401 - the `run_project` fixture

pytestmark = pytest.mark.engine


def plans(home: Path) -> dict[str, int]:
    """plan file -> mtime_ns"""
    directory = home / "state" / "launch-plans"
    return {p.name: p.stat().st_mtime_ns for p in directory.glob("*.plan")} if directory.is_dir() else {}


def exec_out(project: Path, *command: str) -> subprocess.CompletedProcess[str]:
    r = run_aishell("exec", "--", *command, cwd=project, timeout=600)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture
def project(tmp_path, foundation_tag, git_project):
    del foundation_tag  # built once per session; the CLI finds it by tag
    (git_project / "aishell.toml").write_text('[run]\nenv = { FOO = "1" }\n')
    yield git_project
    ids = subprocess.run(["docker", "images", "-q", "--filter",
                          f"label=dev.aishell.project={git_project}"],
                         capture_output=True, text=True, check=False).stdout.split()
    if ids:
        subprocess.run(["docker", "rmi", "-f", *ids], capture_output=True, check=False)


def test_a_repeated_exec_replays_and_a_manifest_edit_is_followed(project, private_state):
    assert exec_out(project, "printenv", "FOO").stdout == "1\n"
    saved = plans(private_state)
    assert len(saved) == 1
    assert exec_out(project, "printenv", "FOO").stdout == "1\n"
    assert plans(private_state) == saved  # replayed: read, not rewritten
    (project / "aishell.toml").write_text('[run]\nenv = { FOO = "2" }\n')
    assert exec_out(project, "printenv", "FOO").stdout == "2\n"
    assert plans(private_state) != saved


def test_the_global_config_and_git_identity_are_followed(project, private_state):
    assert exec_out(project, "printenv", "GIT_AUTHOR_NAME").stdout == "Ada Lovelace\n"
    subprocess.run(["git", "-C", str(project), "config", "user.name", "Grace Hopper"], check=True)
    assert exec_out(project, "printenv", "GIT_AUTHOR_NAME").stdout == "Grace Hopper\n"
    r = exec_out(project, "sh", "-c", "echo ${BAR:-unset}")
    assert r.stdout == "unset\n"
    config = private_state / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[run]\nenv = { BAR = "global" }\n')
    assert exec_out(project, "sh", "-c", "echo ${BAR:-unset}").stdout == "global\n"


def test_a_mount_source_that_appears_is_mounted_next_time(project, tmp_path):
    data = tmp_path / "data"
    (project / "aishell.toml").write_text(f'[run]\nmounts = ["{data}:/data:ro"]\n')
    first = exec_out(project, "sh", "-c", "test -d /data && echo yes || echo no")
    assert first.stdout == "no\n"
    assert "does not exist" in first.stderr
    again = exec_out(project, "sh", "-c", "test -d /data && echo yes || echo no")
    assert again.stdout == "no\n"
    assert "does not exist" in again.stderr  # a replay shows the plan's warnings again
    data.mkdir()
    assert exec_out(project, "sh", "-c", "test -d /data && echo yes || echo no").stdout == "yes\n"


def test_a_new_dockerfile_a_changed_context_file_and_a_removed_image_are_followed(project):
    assert exec_out(project, "sh", "-c", "cat /ext 2>/dev/null || echo none").stdout == "none\n"
    ext = project / ".aishell"
    ext.mkdir()
    (ext / "Dockerfile").write_text("ARG AISHELL_FOUNDATION\nFROM ${AISHELL_FOUNDATION}\n"
                                    "COPY ext /ext\n")
    (ext / "ext").write_text("one\n")
    assert exec_out(project, "cat", "/ext").stdout == "one\n"
    (ext / "ext").write_text("two\n")
    assert exec_out(project, "cat", "/ext").stdout == "two\n"
    info = run_aishell("info", "--json", cwd=project)
    ids = subprocess.run(["docker", "images", "-q", "--filter",
                          f"label=dev.aishell.project={project}"],
                         capture_output=True, text=True, check=False).stdout.split()
    assert ids, info.stdout
    subprocess.run(["docker", "rmi", "-f", *ids], capture_output=True, check=True)
    assert exec_out(project, "cat", "/ext").stdout == "two\n"  # rebuilt, not replayed


def env_volumes(project: Path) -> list[str]:
    lock = project / "aishell.lock"
    if not lock.exists():
        return []
    return ["aishell-env-" + line.split('"')[1][:32] for line in lock.read_text().splitlines()
            if line.startswith("id = ")]


@pytest.fixture
def env_project(tmp_path, lock_env, foundation_tag):
    """A project that locks the fixture harness agent-a; its env volumes removed after."""
    del lock_env, foundation_tag
    project = tmp_path / "env proj"
    project.mkdir()
    write_manifest(project, 'a = { npm = "agent-a", version = "^1" }')
    seen: set[str] = set()
    yield project, seen
    for volume in seen | set(env_volumes(project)):
        subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, check=False)


def test_a_stale_lock_is_relocked_on_the_next_launch(env_project, private_state):
    project, seen = env_project
    assert exec_out(project, "agent-a").stdout == "agent-a@1.0.0\n"
    seen.update(env_volumes(project))
    saved = plans(private_state)
    assert exec_out(project, "agent-a").stdout == "agent-a@1.0.0\n"
    assert plans(private_state) == saved  # an env launch replays too
    write_manifest(project, 'a = { npm = "agent-a", version = "^1" }\n'
                            'b = { npm = "agent-b", version = "1.0.0" }')
    assert exec_out(project, "agent-b").stdout == "agent-b@1.0.0\n"
    assert "[harness.b]" in (project / "aishell.lock").read_text()


def test_a_removed_env_volume_is_never_mounted_from_a_plan(env_project):
    project, _seen = env_project
    exec_out(project, "agent-a")
    existing = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True,
                              check=True).stdout.split()
    (volume,) = [v for v in env_volumes(project) if v in existing]  # this engine's platform
    subprocess.run(["docker", "volume", "rm", volume], check=True, capture_output=True)
    # the plan is found, its env is not: the full launch syncs it again
    assert exec_out(project, "agent-a").stdout == "agent-a@1.0.0\n"


def test_the_plan_file_is_private(project, private_state):
    exec_out(project, "true")
    (path,) = (private_state / "state" / "launch-plans").glob("*.plan")
    assert path.stat().st_mode & 0o077 == 0
    assert fast.load(str(path)) is not None


def test_a_replayed_launch_imports_only_what_it_needs(project):
    exec_out(project, "true")
    probe = (
        "import os, sys\n"
        "def handed_over(*args):\n"
        "    print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('argparse', 'typing', 'dataclasses', 'pathlib', 'json', 'docker', 'rich', "
        "'tomllib', 'tomlkit', 'yaml', 'inspect', 'subprocess') or m.startswith('aishell'))))\n"
        "    os._exit(0)\n"
        "os.execvp = handed_over\n"
        "import aishell.engine.wire\n"
        "aishell.engine.wire.run_attached = handed_over  # no TTY: the API hand-over\n"
        "from aishell.cli import main\n"
        "main(['exec', '--', 'true'])\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True,
                       text=True, check=False, timeout=60, env={**os.environ})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["aishell", "aishell.cli", "aishell.cli.words", "aishell.engine",
                                "aishell.engine.wire", "aishell.inputs", "aishell.run",
                                "aishell.run.fast"]


def test_attach_replays_only_while_that_very_sandbox_runs(run_project, private_state):
    rp = run_project
    assert rp.aishell("shell", "--detach", "--name", "box").returncode == 0
    first = rp.aishell("attach", "box", "--", "echo", "in")
    assert first.returncode == 0 and first.stdout == "in\n", first.stderr
    saved = plans(private_state)
    again = rp.aishell("attach", "box", "--", "echo", "in")
    assert again.stdout == "in\n"
    assert plans(private_state) == saved  # replayed
    assert rp.aishell("stop", "box").returncode == 0
    gone = rp.aishell("attach", "box", "--", "echo", "in")
    assert gone.returncode == 1 and "no sandbox named `box`" in gone.stderr
    assert rp.aishell("shell", "--detach", "--name", "box").returncode == 0
    fresh = rp.aishell("attach", "box", "--", "echo", "in")  # a new container: a new plan
    assert fresh.stdout == "in\n", fresh.stderr
    assert plans(private_state) != saved


def test_attach_without_a_tty_streams_stdin_stdout_stderr_and_the_exit_code(
        run_project, private_state):
    """No TTY: the join runs over the API from aishell itself, first time and replayed,
    with the same behaviour as `docker exec --interactive`."""
    rp = run_project
    assert rp.aishell("shell", "--detach", "--name", "pipe").returncode == 0
    try:
        script = "tr a-z A-Z; echo to-stderr >&2; echo $HOME; exit 7"
        for round_ in ("full", "replayed"):
            # No engine CLI on PATH: only the API can have run it.
            r = run_aishell("attach", "pipe", "--", "sh", "-c", script, cwd=rp.path,
                            env=rp.env(PATH="/nonexistent"), input="hello\nworld\n" * 5000)
            assert r.returncode == 7, (round_, r.stderr)
            lines = r.stdout.splitlines()
            assert lines[:10000] == ["HELLO", "WORLD"] * 5000, round_
            assert lines[10000:] == [str(rp.home)], round_
            assert r.stderr == "to-stderr\n", round_
        assert len(plans(private_state)) >= 1
    finally:
        rp.aishell("stop", "pipe")


def test_a_replayed_exec_without_a_tty_streams_passes_signals_and_removes_its_container(
        project, private_state):
    """The replay runs the container over the API (no engine CLI): stdin in, stdout and
    stderr apart, the exit code out, a signal passed on, the container gone after."""
    script = "tr a-z A-Z; echo to-stderr >&2; exit 3"
    first = run_aishell("exec", "--", "sh", "-c", script, cwd=project, input="abc\n" * 20000)
    assert first.returncode == 3 and first.stdout == "ABC\n" * 20000, first.stderr
    saved = plans(private_state)
    (plan,) = (private_state / "state" / "launch-plans").glob("*.plan")
    entry = fast.load(str(plan))
    assert entry is not None and entry["mode"] == "api" and entry["tty"] is False
    again = run_aishell("exec", "--", "sh", "-c", script, cwd=project, input="abc\n" * 20000)
    assert again.returncode == 3 and again.stdout == "ABC\n" * 20000, again.stderr
    assert again.stderr.endswith("to-stderr\n")
    assert plans(private_state) == saved
    loop = "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.1; done"
    trap = ["exec", "--", "sh", "-c", loop]
    assert run_aishell(*trap[:2], "true", cwd=project).returncode == 0
    for _ in range(2):  # the first run saves the plan, the second replays it
        proc = subprocess.Popen([sys.executable, "-m", "aishell", *trap], cwd=project,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(15)
        out, _err = proc.communicate(timeout=60)
        assert proc.returncode == 42 and out == "got-term\n"
    left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=dev.aishell.project={project}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert left == []
