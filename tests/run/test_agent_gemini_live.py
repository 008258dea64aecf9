"""The real, locked Gemini CLI does real work in an open-mode sandbox (live tier).

``aishell gemini -p …`` runs headless against a stub of the Gemini API on the engine
host (``GOOGLE_GEMINI_BASE_URL``): turn 1 the stub answers with a ``functionCall`` of
``write_file``, the CLI writes the file in the project, turn 2 carries the
``functionResponse`` and the stub ends the turn with text. One run, several checks.

Nothing leaves the machine: the test user's settings turn off Gemini CLI's usage
statistics (Clearcut, ``play.googleapis.com``) and the sandbox gets an unusable resolver
(``--dns 127.0.0.1``), so no host name resolves; the stub is reached by address.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from aishell.lock.freshness import read_lock
from tests.conftest import forget_home, run_aishell
from tests.lock.test_locking_live import MANIFEST
from tests.stubs.base import Script, StubServer, engine_host_address
from tests.stubs.gemini import GeminiStub, agent_turns, function_responses, model_requests

pytestmark = [pytest.mark.live, pytest.mark.engine]

REPO = Path(__file__).resolve().parents[2]
CONTENT = "written by the real gemini\nthrough aishell\n"
USER_SETTINGS = {"privacy": {"usageStatisticsEnabled": False}}  # no Clearcut telemetry
RUN = '[run]\ndocker_args = ["--label", "dev.aishell.test=1", "--dns", "127.0.0.1"]\n'


@pytest.fixture(scope="module")
def gemini_run(tmp_path_factory, engine, foundation_tag):
    """The synced project and one headless `aishell gemini -p` against the stub."""
    del foundation_tag  # built once per session; the CLI finds it by tag
    base = tmp_path_factory.mktemp("gemini-live")
    base.chmod(0o755)
    project, home, aishell_home = base / "gemini project", base / "home", base / "aishell"
    for d in (project, home / ".gemini", aishell_home):
        d.mkdir(parents=True)
    (project / "aishell.toml").write_text(MANIFEST + RUN)
    shutil.copy(REPO / "aishell.lock.example", project / "aishell.lock")
    (home / ".gemini" / "settings.json").write_text(json.dumps(USER_SETTINGS))
    # Module scope: the per-test private AISHELL_HOME is not set yet, so pass our own.
    env = {"HOME": str(home), "AISHELL_HOME": str(aishell_home),
           **{v: str(aishell_home / "xdg-must-not-be-used")
              for v in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")}}
    target = project / "notes" / "hello.txt"
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.delenv("npm_config_registry", raising=False)
            synced = run_aishell("sync", "--locked", cwd=project, env=env, timeout=1800)
            assert synced.returncode == 0, synced.stderr
            with StubServer(GeminiStub, Script(str(target), CONTENT),
                            engine_host_address(engine)) as stub:
                result = run_aishell(
                    "gemini", "-p", "Write notes/hello.txt.", cwd=project, timeout=600,
                    env={**env, "GEMINI_API_KEY": "stub-key",
                         "GOOGLE_GEMINI_BASE_URL": stub.base_url})
        lock = read_lock(project / "aishell.lock")
        assert lock is not None
        version = next(h.version for h in lock.harnesses if h.name == "gemini")
        yield SimpleNamespace(result=result, stub=stub, target=target, version=version)
    finally:
        _remove_containers(project)
        forget_home(aishell_home)  # its sync and launch published gc roots; envs stay


def _remove_containers(project: Path) -> None:
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=dev.aishell.test=1",
         "--filter", f"label=dev.aishell.project={project}"],
        capture_output=True, text=True, check=False).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)


def _why(run: SimpleNamespace) -> str:
    return f"stdout: {run.result.stdout[-2000:]}\nstderr: {run.result.stderr[-4000:]}"


def test_gemini_headless_loop_exits_0(gemini_run):
    assert gemini_run.result.returncode == 0, _why(gemini_run)


def test_the_file_is_on_the_host_with_the_scripted_content_owned_by_the_user(gemini_run):
    target = gemini_run.target
    assert target.is_file(), _why(gemini_run)
    assert target.read_text() == CONTENT
    assert target.stat().st_uid == os.getuid()


def test_the_stub_saw_two_model_requests_and_the_second_carried_the_function_response(
        gemini_run):
    turns = agent_turns(gemini_run.stub)
    assert len(turns) >= 2, _why(gemini_run)
    assert not function_responses(turns[0].json())
    answered = function_responses(turns[1].json())
    assert [f["name"] for f in answered] == ["write_file"], answered


def test_the_answering_harness_is_the_locked_version(gemini_run):
    agents = {r.headers.get("user-agent", "") for r in model_requests(gemini_run.stub)}
    assert agents, _why(gemini_run)
    # GeminiCLI[-client]/VERSION/MODEL (platform; arch; surface)
    assert {a.split("/")[1] for a in agents} == {gemini_run.version}, agents
