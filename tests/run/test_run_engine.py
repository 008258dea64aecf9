"""`aishell run`, attach, ps, stop on the real engine, with a fake harness."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aishell.run.sandbox import container_name
from tests.conftest import forget_home
from tests.fixtures_run import (
    all_cmdlines,
    free_port,
    http_get,
    run_project_fixture,  # noqa: F401 - the `run_project` fixture
    tmux,
    wait_for,
)
from tests.run.test_sandbox_engine import (
    TEST_USER,
    non_root_runner,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.engine


def _running(rp, name: str) -> bool:
    return any(c["Names"] == container_name(rp.path, name) and c["State"] == "running"
               for c in rp.containers())


def test_foreground_harness_gets_flags_untouched_and_exit_code(run_project):
    rp = run_project
    rp.write_config('harness_args = { claude = ["--model", "sonnet"] }\n')
    r = subprocess.run(
        [sys.executable, "-m", "aishell", "claude", "--name", "x", "--json", "--", "-p"],
        cwd=rp.path, env={**os.environ, **rp.env()}, input="hello\nquit\n",
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert r.returncode == 3, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ("fake-harness args: --dangerously-skip-permissions --model sonnet "
                        "--name x --json -- -p")
    assert lines[1:] == ["got: hello", "got: quit"]
    # the catalog's config paths were created on the host (and seeded)
    assert (rp.home / ".claude").is_dir()
    assert (rp.home / ".claude.json").read_text() == "{}\n"
    assert rp.containers() == []  # --rm


def test_run_double_dash_and_version(run_project):
    r = run_project.aishell("run", "pi", "--", "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "fake-harness 1.2.3\n"


def test_unknown_harness_suggests_nearest(run_project):
    r = run_project.aishell("run", "claud")
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["error: unknown harness `claud`",
                                     "hint: did you mean `claude`?"]


def test_a_brokered_key_is_a_placeholder_inside(run_project):
    rp = run_project
    secret = "sk-ant-test-" + os.urandom(8).hex()
    report = rp.path / "report"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aishell", "-e", "FAKE_REPORT", "claude"], cwd=rp.path,
        env={**os.environ, **rp.env(ANTHROPIC_API_KEY=secret, FAKE_REPORT=str(report))},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(report.exists, timeout=60)
        key = report.read_text().split()[0]
        assert key.startswith("key=sk-ant-api03-aishellbrokerplaceholder-"), key
        assert secret not in key
        assert not [c for c in all_cmdlines() if secret in c]
    finally:
        _out, err = proc.communicate("quit\n", timeout=60)
    assert proc.returncode == 3, err


def test_api_key_in_env_but_in_no_command_line(run_project):
    """``[credentials] mode = "env"``: the key is passed in, by name only."""
    rp = run_project
    with (rp.path / "aishell.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[credentials]\nmode = "env"\n')
    secret = "sk-ant-test-" + os.urandom(8).hex()
    report = rp.path / "report"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aishell", "-e", "FAKE_REPORT", "claude"], cwd=rp.path,
        env={**os.environ, **rp.env(ANTHROPIC_API_KEY=secret, FAKE_REPORT=str(report))},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for(report.exists, timeout=60)
        assert report.read_text().split() == [f"key={secret}", "auto=1", "sandbox=1"]
        lines = all_cmdlines()
        assert any("/tools/bin/claude" in c for c in lines)  # the harness is running now
        assert any(c.startswith(("docker run", "podman run")) for c in lines)  # and the engine CLI
        assert not [c for c in lines if secret in c]
    finally:
        _out, err = proc.communicate("quit\n", timeout=60)
    assert proc.returncode == 3, err


def test_detach_attach_send_keys_ps_and_stop(run_project):
    rp = run_project
    r = rp.aishell("--detach", "pi", "--flag")
    assert r.returncode == 0, r.stderr
    name = container_name(rp.path, "pi")
    assert "aishell attach pi" in r.stdout
    wait_for(lambda: "fake-harness args: --flag" in tmux(name, "capture-pane", "-p", "-t", "main"))
    tmux(name, "send-keys", "-t", "main", "hello tmux", "Enter")
    wait_for(lambda: "got: hello tmux" in tmux(name, "capture-pane", "-p", "-t", "main"))

    ps = rp.aishell("ps")
    assert ps.returncode == 0, ps.stderr
    head, row = ps.stdout.splitlines()
    assert head.split() == ["NAME", "HARNESS", "ENV", "STATUS", "UPTIME", "PRE-START", "NETWORK"]
    assert row.split()[:4] == ["pi", "pi", "-", "running"]
    assert row.split()[-1] == "open"

    # a real attach through a terminal, then detach with Ctrl-B D
    pid, fd = pty.fork()
    if pid == 0:  # child: become `aishell attach fake`
        os.chdir(rp.path)
        os.environ.update(rp.env())
        os.execv(sys.executable, [sys.executable, "-m", "aishell", "attach", "pi"])
    screen = b""
    deadline = time.monotonic() + 30
    while b"got: hello tmux" not in screen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.5)[0]:
            try:
                screen += os.read(fd, 65536)
            except OSError:
                break
    assert b"got: hello tmux" in screen
    os.write(fd, b"typed in attach\r")
    wait_for(lambda: "got: typed in attach" in tmux(name, "capture-pane", "-p", "-t", "main"))
    os.write(fd, b"\x02d")  # Ctrl-B d: detach, the sandbox keeps running
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _running(rp, "pi")

    stop = rp.aishell("stop", "pi")
    assert stop.returncode == 0, stop.stderr
    wait_for(lambda: not rp.containers())


def test_detached_sandbox_ends_when_the_harness_exits(run_project):
    rp = run_project
    assert rp.aishell("-d", "pi").returncode == 0
    name = container_name(rp.path, "pi")
    wait_for(lambda: "fake-harness args" in tmux(name, "capture-pane", "-p", "-t", "main"))
    tmux(name, "send-keys", "-t", "main", "quit", "Enter")
    wait_for(lambda: not rp.containers(), timeout=30)


def test_attach_with_a_command_and_to_a_foreground_sandbox(run_project):
    rp = run_project
    assert rp.aishell("shell", "--detach", "--name", "box").returncode == 0
    r = rp.aishell("attach", "box", "--", "sh", "-c", "echo $HOME; tmux ls | cut -d: -f1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [str(rp.home), "main"]
    r = rp.aishell("attach", "nope")
    assert r.returncode == 1 and "no sandbox named `nope`" in r.stderr


def test_ps_pre_start_states(run_project):
    rp = run_project
    for name, cmd in (("ok", "true"), ("bad", "echo broken >&2; exit 3"),
                      ("slow", "sleep 300")):
        rp.write_config(f"pre_start = '{cmd}'\n")
        r = rp.aishell("shell", "--detach", "--name", name)
        assert r.returncode == 0, r.stderr
    rp.write_config()
    assert rp.aishell("shell", "--detach", "--name", "none").returncode == 0

    def states() -> dict[str, str | None]:
        import json

        r = rp.aishell("ps", "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["schema"] == "aishell.ps" and doc["version"] == 1
        return {s["name"]: s["pre_start"] for s in doc["sandboxes"]}

    wait_for(lambda: states() == {"ok": "ready", "bad": "failed", "slow": "pending",
                                  "none": None}, timeout=30, every=0.5)
    log = rp.aishell("attach", "bad", "--", "cat", "/tmp/pre-start.log")
    assert log.stdout == "broken\n"
    assert "failed" in rp.aishell("ps").stdout
    every = rp.aishell("ps", "--all").stdout
    assert "PROJECT" in every.splitlines()[0] and str(rp.path) in every


def test_running_duplicate_is_an_error_stopped_one_is_replaced(run_project, foundation_tag):
    rp = run_project
    assert rp.aishell("shell", "--detach").returncode == 0
    r = rp.aishell("shell", "--detach")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"error: sandbox `shell` is already running ({container_name(rp.path, 'shell')})",
        "hint: join it with `aishell attach shell`, or pick another name with --name",
    ]
    assert rp.aishell("stop", "shell").returncode == 0
    wait_for(lambda: not rp.containers())
    # a stopped container with the name (not --rm): replaced by the next launch
    name = container_name(rp.path, "shell")
    old = subprocess.run(
        ["docker", "create", "--name", name, "--label", "dev.aishell.test=1",
         "--label", "dev.aishell.kind=sandbox", "--label", f"dev.aishell.project={rp.path}",
         foundation_tag, "true"], capture_output=True, text=True, check=True).stdout.strip()
    r = rp.aishell("shell", "--detach")
    assert r.returncode == 0, r.stderr
    (new,) = rp.containers()
    assert new["State"] == "running" and not old.startswith(str(new["ID"]))


def test_worktree_git_works_inside(run_project):
    rp = run_project
    main = rp.path.parent / "main repo"
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q", str(main)], check=True)
    subprocess.run(["git", "-C", str(main), "config", "user.name", "T"], check=True)
    subprocess.run(["git", "-C", str(main), "config", "user.email", "t@example.org"], check=True)
    subprocess.run([*git, "-C", str(main), "commit", "-q", "--allow-empty", "-m", "first"],
                   check=True)
    wt = rp.path.parent / "the worktree"
    subprocess.run([*git, "-C", str(main), "worktree", "add", "-q", "-b", "feature", str(wt)],
                   check=True)
    (wt / "aishell.toml").write_text((rp.path / "aishell.toml").read_text())
    r = subprocess.run(
        [sys.executable, "-m", "aishell", "exec", "--", "sh", "-c",
         ("git status --short --branch && git commit -q --allow-empty -m inside && "
          "git log -1 --format=%s")],
        cwd=wt, env={**os.environ, **rp.env()}, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["## feature", "?? aishell.toml", "inside"]
    host = subprocess.run(["git", "-C", str(main), "log", "feature", "-1", "--format=%s"],
                          capture_output=True, text=True, check=True).stdout
    assert host == "inside\n"


def test_missing_mount_source_warns_and_is_skipped(run_project):
    rp = run_project
    text = (rp.path / "aishell.toml").read_text().replace(
        "mounts = [", f'mounts = ["{rp.path}/nope:/nope", "{rp.path}:/also:ro", ')
    (rp.path / "aishell.toml").write_text(text)
    r = rp.aishell("exec", "--", "sh", "-c", "test -e /nope || echo skipped; ls /also")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["skipped", "aishell.toml"]
    assert f"warning: mount source {rp.path}/nope does not exist" in r.stderr


def test_port_is_reachable_from_the_host(run_project):
    rp = run_project
    port = free_port()
    (rp.path / "index.html").write_text("hello from the sandbox\n")
    rp.write_config(f'ports = ["127.0.0.1:{port}:8000"]\n'
                    'pre_start = "python3 -m http.server 8000"\n')
    assert rp.aishell("shell", "--detach").returncode == 0
    body = wait_for(lambda: http_get(port), timeout=30, every=0.3)
    assert body == "hello from the sandbox\n"


def test_terminal_locale_and_term_fallback(run_project):
    rp = run_project
    probe = "echo $TERM $LANG $LC_ALL"
    # kitty's terminfo is not in the image: fall back
    r = rp.aishell("exec", "--", "sh", "-c", probe, TERM="xterm-kitty")
    assert r.stdout == "xterm-256color C.UTF-8 C.UTF-8\n", r.stderr
    r = rp.aishell("exec", "--", "sh", "-c", probe, TERM="tmux-256color", LANG="de_DE.UTF-8")
    assert r.stdout == "tmux-256color C.UTF-8 C.UTF-8\n", r.stderr


def test_bad_port_in_config_is_one_line_with_file_and_line(run_project):
    rp = run_project
    rp.write_config('ports = ["8080:80", "127.0.0.1:80"]\n')
    r = rp.aishell("exec", "--", "true")
    assert r.returncode == 1
    toml = rp.path / "aishell.toml"
    line = next(i for i, text in enumerate(toml.read_text().splitlines(), 1)
                if "127.0.0.1:80" in text)
    # every launch validates first: the valid-but-public 8080:80 is warned about, then the
    # invalid one is the one error line
    errors = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert errors == [f"error: {toml}:{line}: invalid port mapping '127.0.0.1:80'"]
    assert "Traceback" not in r.stderr


def test_original_yaml_config_is_honoured(run_project):
    rp = run_project
    (rp.path / "aishell.toml").unlink()
    (rp.path / ".aishell").mkdir()
    (rp.path / ".aishell" / "config.yaml").write_text(
        f"mounts:\n  - {rp.bin_dir}:/tools/bin:ro\nenv:\n  GREETING: hi there\n"
        "docker_args: --label dev.aishell.test=1\n")
    r = rp.aishell("exec", "--", "sh", "-c", 'echo "$GREETING"; fake-harness --version')
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["hi there", "fake-harness 1.2.3"]
    assert r.stderr.count("aishell migrate") == 1
    m = rp.aishell("migrate")
    assert m.returncode == 0 and (rp.path / "aishell.toml").is_file()
    r = rp.aishell("exec", "--", "sh", "-c", 'echo "$GREETING"')
    assert r.stdout == "hi there\n" and "migrate" not in r.stderr


def test_title_is_set_on_a_terminal(run_project):
    rp = run_project
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(rp.path)
        os.environ.update(rp.env())
        os.execv(sys.executable, [sys.executable, "-m", "aishell", "exec", "--", "true"])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    assert f"\033]0;[aishell] {Path(rp.path).name}\007".encode() in out


def test_non_root_detach_attach_and_stop(run_project, non_root_runner):  # noqa: F811
    import pwd
    import shutil
    import tempfile

    user = pwd.getpwnam(TEST_USER) if os.getuid() == 0 else pwd.getpwuid(os.getuid())
    project = Path(tempfile.mkdtemp(prefix="aishell nonroot ", dir="/tmp"))
    try:
        os.chown(project, user.pw_uid, user.pw_gid)
        project.chmod(0o755)
        (project / "aishell.toml").write_text(
            '[run]\ndocker_args = ["--label", "dev.aishell.test=1"]\n')
        env = {**os.environ, "AISHELL_HOME": str(project / ".state"), "HOME": user.pw_dir}

        def aishell(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*non_root_runner, *args], cwd=project, env=env,
                                  capture_output=True, text=True, check=False, timeout=120)

        r = aishell("shell", "--detach")
        assert r.returncode == 0, r.stderr
        r = aishell("attach", "shell", "--", "sh", "-c",
                    "id -un; id -u; echo $HOME; tmux ls | cut -d: -f1")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[1:] == [str(user.pw_uid), user.pw_dir, "main"]
        assert aishell("stop", "shell").returncode == 0
    finally:
        subprocess.run(["docker", "rm", "-f", container_name(project, "shell")],
                       capture_output=True, check=False)
        forget_home(project / ".state")
        shutil.rmtree(project, ignore_errors=True)


def test_missing_command_says_why(run_project):
    rp = run_project
    rp.write_config()
    text = (rp.path / "aishell.toml").read_text().replace(f'"{rp.bin_dir}:/tools/bin:ro"', "")
    (rp.path / "aishell.toml").write_text(text)
    r = rp.aishell("exec", "--", "no-such-harness", "--version")
    assert r.returncode == 127
    assert r.stderr.endswith("aishell: no-such-harness: command not found "
                             "(no env is mounted at /tools: run `aishell sync`)\n")


ENV_LAUNCH = """
import os, sys
from aishell.run import launch as run
from aishell.project.context import Context
from aishell.run.identity import HostUser
project, image, volume = sys.argv[1:4]
ctx = Context.create(project)
from aishell.run.plan import RunOptions, plan
p = plan(ctx, RunOptions(), image=image, env_volume=volume, user=HostUser.current(),
             environ=os.environ, tty=False, one_shot=True, command=["envtool", "hi"])
created = run.create(ctx, p)
print("created", created, flush=True)
run.attach(ctx, p, created)
"""


def test_env_volume_launch_creates_then_attaches(run_project, foundation_tag, tmp_path):
    rp = run_project
    (rp.path / "aishell.toml").write_text('[run]\ndocker_args = ["--label", "dev.aishell.test=1"]\n')
    volume = f"aishell-env-test-{os.urandom(4).hex()}"
    subprocess.run(["docker", "volume", "create", "--label", "dev.aishell.test=1", volume],
                   check=True, capture_output=True)
    try:
        subprocess.run(
            ["docker", "run", "--rm", "--label", "dev.aishell.test=1", "--entrypoint", "sh",
             "-v", f"{volume}:/tools", foundation_tag, "-c",
             ("mkdir -p /tools/bin && printf '#!/bin/sh\\necho from-env $@\\n"
              "touch /tools/x 2>/dev/null || echo read-only\\nexit 4\\n' > /tools/bin/envtool"
              " && chmod 755 /tools/bin/envtool")], check=True, capture_output=True)
        script = tmp_path / "launch.py"
        script.write_text(ENV_LAUNCH)
        r = subprocess.run([sys.executable, str(script), str(rp.path), foundation_tag, volume],
                           cwd=rp.path, env={**os.environ, **rp.env()}, capture_output=True,
                           text=True, timeout=120, check=False)
        assert r.returncode == 4, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].startswith("created ") and lines[1:] == ["from-env hi", "read-only"]
        wait_for(lambda: not rp.containers())  # --rm after `start --attach`
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True, check=False)


def test_detached_harness_that_cannot_start_is_reported(run_project):
    rp = run_project
    r = rp.aishell("--detach", "copilot")  # not among the fake bins: it cannot start
    assert r.returncode == 1
    assert r.stderr.splitlines()[-2:] == [
        "error: sandbox `copilot` ended right after it started",
        "hint: run it in the foreground to see why (without --detach)",
    ]
