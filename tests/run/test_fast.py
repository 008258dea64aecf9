"""The plan cache's pure parts: the key, where plans live, reading them, the wire helpers."""

from __future__ import annotations

import json
import marshal
import os
from pathlib import Path

import pytest

from aishell import inputs
from aishell.engine import wire
from aishell.paths import default_paths
from aishell.run import fast

ARGV = ["exec", "--", "true"]


def test_the_key_is_stable_and_names_every_non_file_input():
    env = {"HOME": "/home/ada", "PATH": "/usr/bin", "API_KEY": "s3cret"}
    k = fast.key(ARGV, env, "/p")
    assert k == fast.key(list(ARGV), dict(env), "/p")
    assert k != fast.key([*ARGV, "x"], env, "/p")
    assert k != fast.key(ARGV, env, "/q")
    assert k != fast.key(ARGV, {**env, "API_KEY": "other"}, "/p")
    assert "s3cret" not in k


@pytest.mark.parametrize("var", sorted(fast.VOLATILE))
def test_shell_bookkeeping_variables_do_not_change_the_key(var):
    env = {"HOME": "/home/ada"}
    assert fast.key(ARGV, env, "/p") == fast.key(ARGV, {**env, var: "anything"}, "/p")


@pytest.mark.parametrize("env", [
    {"AISHELL_HOME": "/srv/ai"},
    {"HOME": "/home/ada", "XDG_STATE_HOME": "/var/state"},
    {"HOME": "/home/ada", "XDG_STATE_HOME": "relative/ignored"},
    {"HOME": "/home/ada"},
])
def test_state_dir_is_the_paths_modules_answer(env, monkeypatch):
    monkeypatch.undo()  # the real xdg_paths, with a fake environment
    monkeypatch.setenv("HOME", env.get("HOME", "/root"))
    assert fast.state_dir(env) == str(default_paths(env).state)


def test_a_missing_truncated_or_foreign_plan_is_not_replayed(tmp_path):
    path = tmp_path / "x.plan"
    assert fast.load(str(path)) is None
    path.write_bytes(marshal.dumps({"format": fast.FORMAT, "argv": ["docker"]})[:-3])
    assert fast.load(str(path)) is None
    path.write_bytes(marshal.dumps({"format": fast.FORMAT + 1}))
    assert fast.load(str(path)) is None
    path.write_bytes(b"not marshal at all")
    assert fast.load(str(path)) is None
    path.write_bytes(marshal.dumps({"format": fast.FORMAT, "argv": ["docker"]}))
    assert fast.load(str(path)) == {"format": fast.FORMAT, "argv": ["docker"]}


def test_a_launch_without_a_plan_falls_through(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert fast.launch(ARGV) is None


def test_a_plan_whose_input_changed_falls_through(tmp_path, monkeypatch, private_state):
    monkeypatch.chdir(tmp_path)
    watched = tmp_path / "aishell.toml"
    watched.write_text("[run]\n")
    entry = {"format": fast.FORMAT, "inputs": [[str(watched), inputs.signature(str(watched))]],
             "images": [], "mode": "cli", "argv": ["/nonexistent/docker"], "process_env": {},
             "said": [], "record": None}
    path = Path(fast.plan_path(os.environ, fast.key(ARGV, os.environ, str(tmp_path))))
    path.parent.mkdir(parents=True)
    path.write_bytes(marshal.dumps(entry))
    watched.write_text("[run]\nenv = { A = '1' }\n")
    assert fast.launch(ARGV) is None  # never reaches the (missing) engine CLI


def test_signatures_see_presence_content_and_replacement(tmp_path):
    path = str(tmp_path / "f")
    assert inputs.signature(path) is None
    with inputs.Recording(["x"]) as noted:
        inputs.note(path)
        assert inputs.current() == (["x"], noted)
    assert inputs.current() is None
    assert inputs.changed(noted) == []
    (tmp_path / "f").write_text("a")
    assert inputs.changed(noted) == [path]
    assert inputs.signature(str(tmp_path / "f" / "under-a-file")) is None


def test_json_strings_match_the_json_module():
    for text in ['plain', 'quo"te', "back\\slash", "tab\tnew\nline\x01", "ünï©ødé", ""]:
        assert json.loads(fast._json_string(text)) == text


def test_references_are_quoted_for_a_url_path():
    assert fast._quote("aishell-foundation:abc") == "aishell-foundation%3Aabc"
    assert fast._quote("reg.io/x/y:1") == "reg.io%2Fx%2Fy%3A1"


def test_api_env_passes_host_values_through_and_fixed_values_win():
    env = wire.api_env(["TOKEN", "ABSENT", "LANG"], {"LANG": "C.UTF-8", "X": "1"},
                       {"TOKEN": "t", "LANG": "fr_FR"})
    assert env == {"TOKEN": "t", "LANG": "C.UTF-8", "X": "1"}


def test_socket_path_of_docker_host():
    assert wire.socket_path(None) == wire.DEFAULT_SOCKET
    assert wire.socket_path("unix:///run/user/1000/docker.sock") == "/run/user/1000/docker.sock"
    assert wire.socket_path("tcp://127.0.0.1:2375") is None
