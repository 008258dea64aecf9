"""The real, locked Claude Code and OpenCode do real work in a sandbox: a tool-call loop
against a stub of the Anthropic Messages API on the engine host (live tier: the env comes
from npm).

Turn 1 the stub answers with the harness's file-writing tool (Claude Code's ``Write``,
OpenCode's ``write``) aimed at a file in the project; the harness writes it and sends the
tool's result back; turn 2 the stub answers with text and the harness ends. The stub is
reached directly in ``open`` mode and through the sandbox's egress proxy (both harnesses
honour ``HTTP_PROXY`` for a plain-HTTP base URL) in ``allowlist`` mode. There a forwarded
``ANTHROPIC_BASE_URL`` admits its own host; to test the allow list itself, claude is pointed
at the stub by ``~/.claude/settings.json`` (``env``), which aishell does not read.

What they need (tests/stubs/anthropic.py has the wire side):

* Claude Code: ``ANTHROPIC_BASE_URL=http://ADDR:PORT`` (it appends ``/v1/messages?beta=true``)
  and a dummy ``ANTHROPIC_API_KEY``, both forwarded by name (the catalog's gateway
  variables); ``-p PROMPT --output-format text`` with stdin not a TTY; aishell's
  ``--dangerously-skip-permissions`` and ``IS_SANDBOX=1`` (without it Claude Code refuses
  that flag as root). ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` keeps it off
  ``api.anthropic.com`` (without it: ``HEAD /api/hello`` to the stub, and lookups of
  api.anthropic.com for its telemetry); it is not a gateway variable, so ``-e`` sets it.
* OpenCode: its Anthropic provider's ``baseURL`` *with* ``/v1`` (the AI SDK appends
  ``/messages``) in ``OPENCODE_CONFIG_CONTENT``, a ``model`` there, and
  ``OPENCODE_DISABLE_MODELS_FETCH=1`` (else models.dev is fetched); all forwarded by name.
  It also asks the stub for a session title (a request without tools). Its background
  install of ``@opencode-ai/plugin`` into ``~/.config/opencode`` still looks up
  registry.npmjs.org (no switch turns it off; a failure is only logged).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aishell.engine import Engine
from aishell.lock.freshness import read_lock
from tests.conftest import forget_home, run_aishell
from tests.lock.test_locking_live import MANIFEST
from tests.store.test_gc_homes_engine import UID as OTHER_UID
from tests.store.test_gc_homes_engine import USER as OTHER_USER
from tests.stubs.anthropic import TOOL_USE_ID, AnthropicStub, tool_results, tool_uses
from tests.stubs.base import Recorded, Script, StubServer, engine_host_address

pytestmark = [pytest.mark.live, pytest.mark.engine]

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-ant-test-stub-0000"  # a dummy: the stub checks nothing, nothing leaves the machine
CONTENT = 'written by the agent: "quotes", \\backslash, $HOME, `not run`, ünïcödé ✓\n\ttab\n'
FINAL = "Done: the file is written."
QUIET = ("-e", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1")  # no telemetry, no /api/hello
CLAUDE_PROMPT = ("-p", "Write the file.", "--output-format", "text")
OPENCODE_MODEL = "anthropic/claude-sonnet-4-5"


@pytest.fixture(scope="module")
def agent_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project locking the real harnesses (the live lock), its env synced once.

    The env volume is content-addressed and shared with the other live modules: it stays.
    """
    root = tmp_path_factory.mktemp("agent live")
    project = root / "agent project"
    project.mkdir()
    (project / "aishell.toml").write_text(MANIFEST, encoding="utf-8")
    shutil.copy(REPO / "aishell.lock.example", project / "aishell.lock")
    home = root / "aishell home"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("npm_config_registry", raising=False)
        synced = run_aishell("sync", "--locked", cwd=project, env={"AISHELL_HOME": str(home)},
                             timeout=1800)
    assert synced.returncode == 0, synced.stderr
    yield project
    forget_home(home)


def project_copy(agent_project: Path, where: Path, network: str = "") -> Path:
    """The synced project's two files in a fresh directory (same lock, same env)."""
    project = where / "agent project"
    project.mkdir(parents=True)
    (project / "aishell.toml").write_text(MANIFEST + network, encoding="utf-8")
    shutil.copy(agent_project / "aishell.lock", project / "aishell.lock")
    return project


def allowlist(*allow: str) -> str:
    return '\n[network]\nmode = "allowlist"\n' + (f"allow = {json.dumps(list(allow))}\n"
                                                  if allow else "")


def stub_for(engine: Engine, target: Path) -> StubServer:
    return StubServer(AnthropicStub, Script(str(target), CONTENT, FINAL),
                      engine_host_address(engine))


def user_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return home


def claude(project: Path, home: Path, stub: StubServer | None, *options: str,
           ) -> subprocess.CompletedProcess[str]:
    """``aishell claude -p …`` headless (stdin empty, stdout a pipe), pointed at ``stub``."""
    env = {"HOME": str(home), "ANTHROPIC_API_KEY": KEY}
    if stub is not None:
        env["ANTHROPIC_BASE_URL"] = stub.base_url
    return run_aishell(*options, *QUIET, "claude", *CLAUDE_PROMPT, cwd=project, env=env,
                       input="", timeout=600)


def settings_pointing_at(home: Path, stub: StubServer) -> Path:
    """``home`` with a ``~/.claude/settings.json`` whose ``env`` points claude at ``stub``:
    a base URL aishell does not see (no gateway variable), so nothing admits it by itself."""
    (home / ".claude").mkdir(exist_ok=True)
    (home / ".claude" / "settings.json").write_text(
        json.dumps({"env": {"ANTHROPIC_BASE_URL": stub.base_url}}), encoding="utf-8")
    return home


def agent_turns(stub: StubServer, tool: str) -> list[dict[str, Any]]:
    """The bodies of the Messages requests that offered the write tool ``tool``, in order."""
    bodies = [r.json() for r in messages(stub)]
    return [b for b in bodies if tool in {t.get("name") for t in b.get("tools") or []}]


def messages(stub: StubServer) -> list[Recorded]:
    return [r for r in stub.model_requests("/messages") if "count_tokens" not in r.path]


def assert_tool_loop(stub: StubServer, tool: str, path_key: str, target: Path) -> None:
    """≥ 2 model turns; the first carries no tool result, the second the result of the
    ``tool_use`` the stub answered the first with (its id, its input in the history)."""
    turns = agent_turns(stub, tool)
    assert len(turns) >= 2, [r.path for r in stub.requests]
    assert not tool_results(turns[0])
    results = tool_results(turns[1])
    assert [r["tool_use_id"] for r in results] == [TOOL_USE_ID], results
    assert not results[0].get("is_error"), results
    asked = [u for u in tool_uses(turns[1]) if u["id"] == TOOL_USE_ID]
    assert [(u["name"], u["input"]) for u in asked] == [
        (tool, {path_key: str(target), "content": CONTENT})]


def assert_written(target: Path, uid: int) -> None:
    assert target.read_text(encoding="utf-8") == CONTENT
    assert target.stat().st_uid == uid


def user_agent_version(stub: StubServer, product: str) -> set[str]:
    """The versions the model requests' ``user-agent`` names (``claude-cli/2.1.330 …``)."""
    found = {re.match(rf"{re.escape(product)}/(\S+)", r.headers.get("user-agent", ""))
             for r in messages(stub)}
    return {m.group(1) for m in found if m}


def locked_version(project: Path, harness: str) -> str:
    lock = read_lock(project / "aishell.lock")
    assert lock is not None
    return next(h.version for h in lock.harnesses if h.name == harness)


def egress_address(engine: Engine) -> str:
    """The address of this test home's egress service on the engine's default network."""
    from aishell.paths import default_paths
    from aishell.store import egressservice

    state = str(default_paths(dict(os.environ)).state)
    found = engine.list_containers({egressservice.HOME_LABEL: state}, all=False)
    assert len(found) == 1, found
    inspected = engine.container_inspect(str(found[0]["Id"])) or {}
    networks = inspected.get("NetworkSettings", {}).get("Networks") or {}
    return next(str(n["IPAddress"]) for n in networks.values() if n.get("IPAddress"))


def test_claude_headless_runs_its_write_loop_against_the_stub_in_open_mode(
        agent_project, engine, tmp_path):
    project = project_copy(agent_project, tmp_path)
    target = project / "written by claude.txt"
    with stub_for(engine, target) as stub:
        r = claude(project, user_home(tmp_path), stub)
    assert r.returncode == 0, r.stdout + r.stderr
    assert FINAL in r.stdout
    assert_written(target, os.getuid())
    assert_tool_loop(stub, "Write", "file_path", target)
    assert user_agent_version(stub, "claude-cli") == {locked_version(project, "claude")}


def test_claude_reaches_an_allowed_stub_through_the_egress_proxy_in_allowlist_mode(
        agent_project, engine, tmp_path):
    """Only the allow entry admits the stub: claude finds it in its own settings."""
    target = tmp_path / "agent project" / "written by claude.txt"
    home = user_home(tmp_path)
    with stub_for(engine, target) as stub:
        project = project_copy(agent_project, tmp_path, allowlist(f"{stub.host}:{stub.port}"))
        r = claude(project, settings_pointing_at(home, stub), None, "-v")
        peers = {rec.peer for rec in stub.requests}
        proxy = egress_address(engine)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "egress: no request was denied" in r.stderr
    assert peers == {proxy}  # every request came from the egress service, none directly
    assert_written(target, os.getuid())
    assert_tool_loop(stub, "Write", "file_path", target)
    assert user_agent_version(stub, "claude-cli") == {locked_version(project, "claude")}


def test_allowlist_mode_admits_the_gateway_anthropic_base_url_names(
        agent_project, engine, tmp_path):
    """No allow entry: the host of the forwarded ANTHROPIC_BASE_URL is admitted by itself."""
    target = tmp_path / "agent project" / "written by claude.txt"
    project = project_copy(agent_project, tmp_path, allowlist())
    with stub_for(engine, target) as stub:
        r = claude(project, user_home(tmp_path), stub, "-v")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "egress: no request was denied" in r.stderr
    assert_written(target, os.getuid())
    assert_tool_loop(stub, "Write", "file_path", target)


def test_claude_fails_and_the_denial_is_reported_when_allowlist_mode_does_not_admit_the_stub(
        agent_project, engine, tmp_path):
    """Claude finds the stub in its own settings, no allow entry names it: refused."""
    target = tmp_path / "agent project" / "written by claude.txt"
    project = project_copy(agent_project, tmp_path, allowlist())
    with stub_for(engine, target) as stub:
        r = claude(project, settings_pointing_at(user_home(tmp_path), stub), None, "-v")
    assert r.returncode != 0, r.stdout + r.stderr
    assert "API Error: 403" in r.stdout + r.stderr  # the egress proxy's refusal, as claude says it
    assert stub.requests == []
    assert re.search(rf"^egress: \d+ denied: .*{re.escape(f'{stub.host}:{stub.port}')}",
                     r.stderr, re.MULTILINE), r.stderr
    assert not target.exists()


def test_opencode_runs_its_write_loop_against_the_stub_in_open_mode(
        agent_project, engine, tmp_path):
    project = project_copy(agent_project, tmp_path)
    target = project / "written by opencode.txt"
    with stub_for(engine, target) as stub:
        config = {"provider": {"anthropic": {"options": {"baseURL": f"{stub.base_url}/v1"}}},
                  "model": OPENCODE_MODEL}
        r = run_aishell("opencode", "run", "Write the file.", cwd=project, input="", timeout=600,
                        env={"HOME": str(user_home(tmp_path)), "ANTHROPIC_API_KEY": KEY,
                             "OPENCODE_CONFIG_CONTENT": json.dumps(config),
                             "OPENCODE_DISABLE_MODELS_FETCH": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert FINAL in r.stdout
    assert_written(target, os.getuid())
    assert_tool_loop(stub, "write", "filePath", target)
    assert user_agent_version(stub, "opencode") == {locked_version(project, "opencode")}


@pytest.fixture
def other_user(engine: Engine) -> Iterator[tuple[str, Path]]:
    """(name, a private directory) of uid 1500, a member of the engine socket's group."""
    del engine  # the engine is up: its socket exists
    try:
        name = pwd.getpwuid(OTHER_UID).pw_name
    except KeyError:  # the same user as tests/store/test_gc_homes_engine.py's
        name = OTHER_USER
        subprocess.run(["useradd", "--uid", str(OTHER_UID), "--create-home", name], check=True)
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    socket = Path(host.removeprefix("unix://"))
    subprocess.run(["usermod", "-aG", str(socket.stat().st_gid), name], check=True)
    root = Path(tempfile.mkdtemp(prefix="aishell-agent1500-", dir="/tmp"))
    os.chown(root, OTHER_UID, OTHER_UID)
    root.chmod(0o700)
    yield name, root
    forget_home(root / "aishell home")
    shutil.rmtree(root, ignore_errors=True)


def _importable_site(name: str, python: Path, root: Path) -> str:
    """A PYTHONPATH from which uid 1500 imports aishell: this venv and checkout when it
    can read them, else a copy of aishell's runtime packages in its own directory."""
    here = f"{sysconfig.get_paths()['purelib']}{os.pathsep}{REPO}"
    probe = subprocess.run(["runuser", "-u", name, "--", "env", f"PYTHONPATH={here}",
                            str(python), "-c", "import aishell.cli, blake3, tomlkit"],
                           capture_output=True, check=False)
    if probe.returncode == 0:
        return here
    site = root / "site"
    purelib = Path(sysconfig.get_paths()["purelib"])
    shutil.copytree(purelib, site, symlinks=True, ignore=shutil.ignore_patterns(
        "__pycache__", "mypy*", "_pytest", "pytest*", "hypothesis*", "ruff*"))
    shutil.copytree(REPO / "aishell", site / "aishell", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chown", "-R", f"{OTHER_UID}:{OTHER_UID}", str(site)], check=True)
    return str(site)


def test_claude_runs_its_write_loop_as_a_non_root_host_user(agent_project, engine, other_user):
    """aishell run by uid 1500 (its own home, aishell home and project): the file is its."""
    name, root = other_user
    python = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    assert python.exists(), "no system interpreter the other user can run"
    site = _importable_site(name, python, root)
    project = project_copy(agent_project, root)
    home = root / "home"
    home.mkdir()
    for path in (project, project / "aishell.toml", project / "aishell.lock", home):
        os.chown(path, OTHER_UID, OTHER_UID)
    target = project / "written by claude.txt"
    with stub_for(engine, target) as stub:
        env = {"HOME": str(home), "AISHELL_HOME": str(root / "aishell home"),
               "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
               "PYTHONPATH": site, "PYTHONDONTWRITEBYTECODE": "1",
               "ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": stub.base_url}
        if os.environ.get("DOCKER_HOST"):
            env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
        r = subprocess.run(
            ["runuser", "-u", name, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()),
             str(python), "-m", "aishell", *QUIET, "claude", *CLAUDE_PROMPT],
            cwd=project, input="", capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert FINAL in r.stdout
    assert_written(target, OTHER_UID)
    assert_tool_loop(stub, "Write", "file_path", target)
