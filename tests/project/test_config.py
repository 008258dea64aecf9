from __future__ import annotations

from pathlib import Path

import pytest

from aishell.errors import ConfigError
from aishell.project import config


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "aishell.toml").write_text(text)
    return tmp_path


def test_unknown_key_names_file_line_and_nearest(tmp_path):
    write(tmp_path, '[run]\nmounts = []\nport = ["8080:80"]\n')
    with pytest.raises(ConfigError) as exc:
        config.load(tmp_path, None)
    assert str(exc.value).endswith("aishell.toml:3: unknown key `port` in [run]")
    assert exc.value.hint == "did you mean `ports`?"


def test_unknown_table(tmp_path):
    write(tmp_path, "[harness]\nclaude = 'latest'\n")
    with pytest.raises(ConfigError) as exc:
        config.load(tmp_path, None)
    assert ":1: unknown table [harness]" in str(exc.value)
    assert exc.value.hint == "did you mean [harnesses]?"


def test_wrong_type_says_what_is_valid(tmp_path):
    write(tmp_path, "[security]\n\ndetection = 'yes'\n")
    with pytest.raises(ConfigError) as exc:
        config.load(tmp_path, None)
    assert ":3: [security] detection must be true or false" in str(exc.value)


def test_toml_syntax_error_has_the_line(tmp_path):
    write(tmp_path, "[run]\nmounts = [\n\n= 3\n")
    with pytest.raises(ConfigError) as exc:
        config.load(tmp_path, None)
    assert "aishell.toml:4: invalid TOML" in str(exc.value)


def test_a_truncated_manifest_names_its_last_line_and_a_hint(tmp_path):
    write(tmp_path, '[harnesses]\nclaude = "latest"\n[run]\nmounts = ["~/.aws:ro", "/da')
    with pytest.raises(ConfigError) as exc:
        config.load(tmp_path, None)
    assert str(exc.value) == (f"{tmp_path / 'aishell.toml'}:4: invalid TOML: Unterminated "
                              "string at the end of the file (is it cut short?)")
    assert exc.value.hint == "a string, array or inline table opened earlier is never closed"


def test_a_syntax_error_hint_says_to_fix_that_line(tmp_path):
    write(tmp_path, "[run]\nsudo = yes\n")
    with pytest.raises(ConfigError) as exc:
        config.load(tmp_path, None)
    assert str(exc.value).startswith(f"{tmp_path / 'aishell.toml'}:2: invalid TOML: ")
    assert exc.value.hint == "fix the TOML syntax on that line (https://toml.io)"


def test_merge_conflict_markers_are_reported(tmp_path):
    write(tmp_path, "[run]\n<<<<<<< HEAD\nmounts = []\n=======\n>>>>>>> b\n")
    with pytest.raises(ConfigError) as exc:
        config.load(tmp_path, None)
    assert ":2: unresolved merge-conflict markers" in str(exc.value)


def test_merge_semantics():
    base = {"run": {"mounts": ["a"], "env": {"X": "1", "Y": "1"}, "pre_start": "g"}}
    over = {"run": {"mounts": ["b"], "env": {"Y": "2"}, "pre_start": "p"}}
    assert config.merge(base, over) == {
        "run": {"mounts": ["a", "b"], "env": {"X": "1", "Y": "2"}, "pre_start": "p"}
    }


def test_global_config_is_merged_unless_extends_none(tmp_path):
    glob = tmp_path / "global.toml"
    glob.write_text('[run]\nmounts = ["~/.aws:ro"]\n')
    project = tmp_path / "p"
    project.mkdir()
    write(project, '[run]\nmounts = ["/data"]\n')
    assert config.load(project, glob).table("run")["mounts"] == ["~/.aws:ro", "/data"]
    write(project, 'extends = "none"\n[run]\nmounts = ["/data"]\n')
    assert config.load(project, glob).table("run")["mounts"] == ["/data"]


def test_global_config_rejects_project_only_tables(tmp_path):
    glob = tmp_path / "config.toml"
    glob.write_text("[harnesses]\nclaude = 'latest'\n")
    with pytest.raises(ConfigError) as exc:
        config.load(tmp_path, glob)
    assert "config.toml:1: unknown table [harnesses]" in str(exc.value)


def test_find_project_walks_up(tmp_path):
    write(tmp_path, "")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert config.find_project(deep) == tmp_path.resolve()


def test_find_project_defaults_to_start(tmp_path):
    assert config.find_project(tmp_path) == tmp_path.resolve()
