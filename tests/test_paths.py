from __future__ import annotations

from pathlib import Path

import pytest

from aishell import paths
from aishell.paths import default_paths

REAL_XDG = paths.xdg_paths  # captured before the autouse fixture replaces it


def test_aishell_home_holds_everything(tmp_path):
    p = default_paths({"AISHELL_HOME": str(tmp_path)})
    assert (p.config, p.state, p.cache) == (tmp_path / "config", tmp_path / "state",
                                            tmp_path / "cache")


def test_xdg_variables_are_honoured(monkeypatch):
    monkeypatch.setattr(Path, "home", lambda: Path("/home/u"))
    p = REAL_XDG({"XDG_CONFIG_HOME": "/c", "XDG_STATE_HOME": "relative/ignored"})
    assert p.config == Path("/c/aishell")
    assert p.state == Path("/home/u/.local/state/aishell")
    assert p.cache == Path("/home/u/.cache/aishell")


def test_real_defaults_are_guarded_in_tests():
    with pytest.raises(AssertionError, match="real XDG"):
        default_paths({})


def test_state_dir_gets_a_readme(tmp_path):
    state = default_paths({"AISHELL_HOME": str(tmp_path)}).ensure_state()
    assert "aishell" in (state / "README").read_text()
