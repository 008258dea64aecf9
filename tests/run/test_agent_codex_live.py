"""The real, locked Codex CLI does real work in a sandbox: a tool-call loop against a stub
of the OpenAI Responses API on the engine host (live tier: the env comes from npm).

Turn 1 the stub answers with a tool call that writes a file in the project; codex runs it
and sends the tool's output back; turn 2 the stub answers with text and codex ends. The
stub is reached directly in ``open`` mode and through the sandbox's egress proxy in
``allowlist`` mode (codex honours ``HTTP_PROXY``: its WebSocket attempt goes as a
``CONNECT``, its HTTP requests as absolute-form ``POST http://…``).

What codex 0.169 needs (see tests/stubs/openai.py for the wire side): its endpoint only
from config (``-c openai_base_url=…``; it does not read ``OPENAI_BASE_URL`` itself, aishell
translates that variable into this same ``-c``), the key in ``CODEX_API_KEY`` (without it
no ``Authorization`` is sent), a git repository (else ``--skip-git-repo-check``), no model
name. Two keys of aishell's /etc/codex/config.toml keep it off the internet:
``analytics.enabled = false`` (Statsig metrics to ``ab.chatgpt.com``) and
``features.plugins = false`` (the curated plugin sync from ``github.com``,
``api.github.com`` and ``chatgpt.com``); the allowlist test proves nothing else is asked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from aishell.engine import Engine
from aishell.lock.freshness import read_lock
from tests.conftest import forget_home, run_aishell
from tests.lock.test_locking_live import MANIFEST
from tests.stubs.base import Script, StubServer, engine_host_address
from tests.stubs.openai import CALL_ID, OpenAIStub, tool_output

pytestmark = [pytest.mark.live, pytest.mark.engine]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Script("written by codex.txt", "codex was here: it's $HOME, `not run`\n\tand a tab\n",
                final="The file is written.")


@pytest.fixture(scope="module")
def codex_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A git project locking the real harnesses (the live lock), its env synced once.

    The env volume is content-addressed and shared with the other live modules: it stays.
    """
    root = tmp_path_factory.mktemp("codex live")
    project = root / "codex project"
    project.mkdir()
    (project / "aishell.toml").write_text(MANIFEST, encoding="utf-8")
    shutil.copy(REPO / "aishell.lock.example", project / "aishell.lock")
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    home = root / "aishell home"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("npm_config_registry", raising=False)
        synced = run_aishell("sync", "--locked", cwd=project, env={"AISHELL_HOME": str(home)},
                             timeout=1800)
    assert synced.returncode == 0, synced.stderr
    yield project
    forget_home(home)


@pytest.fixture
def stub(engine: Engine) -> Iterator[StubServer]:
    with StubServer(OpenAIStub, SCRIPT, engine_host_address(engine)) as server:
        yield server


def locked_version(project: Path) -> str:
    lock = read_lock(project / "aishell.lock")
    assert lock is not None
    return next(h.version for h in lock.harnesses if h.name == "codex")


def codex_exec(project: Path, stub: StubServer, home: Path, *, gateway: bool = False
               ) -> subprocess.CompletedProcess[str]:
    """``aishell -v codex exec`` against the stub: named by ``-c openai_base_url`` or, with
    ``gateway``, by ``OPENAI_BASE_URL`` on the host (aishell hands it over as that key)."""
    (project / SCRIPT.path).unlink(missing_ok=True)
    endpoint = () if gateway else ("-c", f'openai_base_url="{stub.base_url}/v1"')
    env = {"HOME": str(home), "CODEX_API_KEY": "sk-stub-not-a-real-key"}
    if gateway:
        env["OPENAI_BASE_URL"] = f"{stub.base_url}/v1"
    return run_aishell("-v", "codex", "exec", *endpoint, f"Write the file {SCRIPT.path!r}.",
                       cwd=project, input="", env=env, timeout=600)


def assert_loop_done(project: Path, stub: StubServer, run: subprocess.CompletedProcess[str]
                     ) -> None:
    """Exit 0, the file written as scripted and owned by the user, two model requests (the
    second with the first's tool output), answered by the locked codex."""
    assert run.returncode == 0, run.stdout + run.stderr
    written = project / SCRIPT.path
    assert written.read_bytes() == SCRIPT.content.encode()
    assert written.stat().st_uid == os.getuid()
    turns = [r for r in stub.model_requests("/v1/responses") if r.method == "POST"]
    assert len(turns) >= 2, [(r.method, r.path) for r in stub.requests]
    assert tool_output(turns[0].json()) is None
    assert tool_output(turns[1].json()) is not None, f"no output for {CALL_ID}"
    version = locked_version(project)
    for rec in turns:
        assert rec.headers.get("version") == version, rec.headers
        assert rec.headers.get("user-agent", "").startswith(f"codex_exec/{version} "), rec.headers


def egress_addresses(engine: Engine, aishell_home: Path) -> set[str]:
    """The addresses of this home's egress service on the engine's networks."""
    from aishell.paths import default_paths
    from aishell.store import egressservice

    state = default_paths({"AISHELL_HOME": str(aishell_home)}).state
    found = set()
    for c in engine.list_containers({egressservice.HOME_LABEL: str(state)}):
        doc = engine.container_inspect(str(c["Id"])) or {}
        for net in ((doc.get("NetworkSettings") or {}).get("Networks") or {}).values():
            if net.get("IPAddress"):
                found.add(str(net["IPAddress"]))
    return found


def test_codex_exec_writes_a_file_by_a_tool_call_and_ends_in_open_mode(
        codex_project, stub, tmp_path):
    (codex_project / "aishell.toml").write_text(MANIFEST, encoding="utf-8")
    run = codex_exec(codex_project, stub, tmp_path)
    assert_loop_done(codex_project, stub, run)


def test_codex_exec_does_the_same_through_the_proxy_in_allowlist_mode(
        codex_project, stub, tmp_path, engine, private_state):
    # No allow entry: the gateway named by OPENAI_BASE_URL is allowed by aishell itself.
    (codex_project / "aishell.toml").write_text(
        f'{MANIFEST}\n[network]\nmode = "allowlist"\nallow = []\n', encoding="utf-8")
    run = codex_exec(codex_project, stub, tmp_path, gateway=True)
    assert_loop_done(codex_project, stub, run)
    # aishell's defaults keep codex's own metrics and plugin sync off: nothing was refused
    assert "egress: no request was denied" in run.stderr, run.stderr
    # The sandbox has no network: every request reached the stub from the egress service.
    peers = {r.peer for r in stub.requests}
    assert peers and peers <= egress_addresses(engine, private_state), peers
