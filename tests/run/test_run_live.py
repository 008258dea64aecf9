"""`aishell HARNESS --version` prints the locked version, through the whole pipeline (live)."""

from __future__ import annotations

import pytest

from aishell.lock.freshness import read_lock
from tests.conftest import run_aishell
from tests.store.test_live_env import real_project  # noqa: F401 - the module-scoped fixture

pytestmark = [pytest.mark.live, pytest.mark.engine]


@pytest.mark.parametrize("harness", ["claude", "codex", "gemini", "opencode"])
def test_harness_prints_its_locked_version(real_project, foundation_tag, harness, tmp_path):  # noqa: F811
    lock = read_lock(real_project / "aishell.lock")
    assert lock is not None
    version = next(h.version for h in lock.harnesses if h.name == harness)
    r = run_aishell("-q", "run", "--frozen", harness, "--", "--version", cwd=real_project,
                    env={"HOME": str(tmp_path)}, timeout=1800)
    assert r.returncode == 0, r.stderr
    assert version in r.stdout, f"{harness}: locked {version}, printed {r.stdout!r}"
