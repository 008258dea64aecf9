"""The seam between run and sync: which env volume a launch mounts."""

from __future__ import annotations

import pytest

from aishell.errors import ConfigError
from aishell.lock import catalog
from aishell.project.context import Context
from aishell.run.env import resolve_env
from aishell.store import sync


def ctx_for(tmp_path, toml: str | None = None, lock: bool = False) -> Context:
    project = tmp_path / "p"
    project.mkdir(parents=True)
    if toml is not None:
        (project / "aishell.toml").write_text(toml)
    if lock:
        (project / "aishell.lock").write_text("# generated\n")
    return Context.create(str(project))


@pytest.fixture
def ensure_calls(monkeypatch):
    calls = []

    def fake(ctx, **flags):
        calls.append(flags)
        return "aishell-env-0123456789abcdef"

    monkeypatch.setattr(sync, "ensure_env", fake)
    return calls


def test_no_harnesses_and_no_lock_means_no_env_and_no_sync(tmp_path, ensure_calls):
    assert resolve_env(ctx_for(tmp_path), catalog.CATALOG["claude"]) is None
    assert resolve_env(ctx_for(tmp_path / "x", "[run]\n"), None) is None
    assert ensure_calls == []


def test_a_project_with_harnesses_is_synced_with_the_flags(tmp_path, ensure_calls):
    ctx = ctx_for(tmp_path, '[harnesses]\nclaude = "^2"\n')
    volume = resolve_env(ctx, catalog.CATALOG["claude"], locked=True, offline=True)
    assert volume == "aishell-env-0123456789abcdef"
    assert ensure_calls == [{"locked": True, "frozen": False, "offline": True,
                             "substituters": (), "no_substitute": False}]
    assert resolve_env(ctx, None) == volume  # a shell gets the env too


def test_a_lock_alone_is_synced_when_frozen(tmp_path, ensure_calls):
    resolve_env(ctx_for(tmp_path, None, lock=True), None, frozen=True)
    assert ensure_calls == [{"locked": False, "frozen": True, "offline": False,
                             "substituters": (), "no_substitute": False}]


def test_a_harness_not_in_the_manifest_is_one_line_with_file_and_line(tmp_path, ensure_calls):
    ctx = ctx_for(tmp_path, '[run]\nenv = {}\n\n[harnesses]\nclaude = "^2"\n')
    with pytest.raises(ConfigError) as exc:
        resolve_env(ctx, catalog.CATALOG["codex"])
    assert str(exc.value) == (f"{ctx.project / 'aishell.toml'}:4: harness `codex` is not in "
                              "this project's aishell.toml (nor its lock)")
    assert exc.value.hint == "`aishell add codex` adds and locks it"
    assert ensure_calls == []
