"""Locking the four real harnesses against the real npm registry."""

from __future__ import annotations

import tomllib

import pytest

from aishell.lock.closure import installed
from aishell.lock.freshness import read_lock
from tests.conftest import run_aishell
from tests.lock.test_lockfile import validate_schema

pytestmark = [pytest.mark.live, pytest.mark.engine]

# opencode is pinned: its newest releases were published without the linux-arm64 package
# (aishell warns about exactly that); 1.18.18 is the newest with both linux natives.
MANIFEST = """\
[harnesses]
claude = "latest"
codex = "latest"
gemini = "latest"
opencode = "1.18.18"
"""
NATIVES = {  # harness -> package that carries its native binary, without the platform suffix
    "claude": "@anthropic-ai/claude-code-linux-",
    "codex": "@openai/codex-linux-",
    "gemini": "@lydell/node-pty-linux-",
    "opencode": "opencode-linux-",
}


def test_lock_four_real_harnesses(tmp_path, foundation_tag, monkeypatch):
    monkeypatch.delenv("npm_config_registry", raising=False)
    (tmp_path / "aishell.toml").write_text(MANIFEST)
    r = run_aishell("lock", cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "aishell.lock"
    validate_schema(path)
    lock = read_lock(path)
    assert lock is not None
    for h in lock.harnesses:
        for platform, cpu in (("linux/amd64", "x64"), ("linux/arm64", "arm64")):
            native = f"node_modules/{NATIVES[h.name]}{cpu}"
            got = {p["path"]: p for p in installed(h.packages, h.package, platform)}
            assert native in got, f"{h.name} has no {native} for {platform}"
            assert got[native]["integrity"].startswith("sha512-")
    doc = tomllib.loads(path.read_text())
    assert set(doc["runtime"]["nodejs"]) == {"linux/amd64", "linux/arm64"}
    assert run_aishell("lock", "--check", cwd=tmp_path).returncode == 0
