"""The manifest's lock-relevant tables, and round-trip edits of aishell.toml."""

from __future__ import annotations

import pytest

from aishell.errors import ConfigError, UsageError
from aishell.lock.edit import Addition, add, parse_spec, remove, starter
from aishell.lock.manifest import HarnessSpec, from_config
from aishell.project import config


def load(tmp_path, text):
    (tmp_path / "aishell.toml").write_text(text)
    return from_config(config.load(tmp_path, None))


def test_catalog_names_ranges_and_tables(tmp_path):
    m = load(tmp_path, '[harnesses]\nclaude = "^2.1"\ncodex = "0.169.0"\ngemini = "latest"\n'
                       'mytool = { npm = "@acme/agent", version = "~1.4", bin = ["acme"] }\n'
                       '[runtime]\nnode = "22"\n')
    assert m.harnesses == (
        HarnessSpec("claude", "@anthropic-ai/claude-code", "^2.1", ("claude",)),
        HarnessSpec("codex", "@openai/codex", "0.169.0", ("codex",)),
        HarnessSpec("gemini", "@google/gemini-cli", "latest", ("gemini",)),
        HarnessSpec("mytool", "@acme/agent", "~1.4", ("acme",)),
    )
    assert m.node == "22"
    assert m.platforms == ("linux/amd64", "linux/arm64")


def test_defaults_without_a_manifest(tmp_path):
    m = from_config(config.load(tmp_path, None))
    assert m.harnesses == () and m.node == "24" and m.base == "debian:trixie-slim"


@pytest.mark.parametrize(("text", "message", "hint"), [
    ('[harnesses]\nclaud = "latest"\n', "2: unknown harness `claud`",
     "did you mean `claude`?"),
    ('[harnesses]\n\nclaude = "^^2"\n', "3: [harnesses] claude: '^^2' is not an npm version range",
     "use a range"),
    ('[harnesses]\nx = { npm = "agent", verson = "1" }\n', "2: unknown key `verson` in harness `x`",
     "did you mean `version`?"),
    ('[harnesses]\nx = { version = "1" }\n', '2: harness `x` needs `npm = "package-name"`', "e.g."),
    ('[harnesses]\nclaude = 2\n', ('2: [harnesses] claude must be a range like "^2.1", an exact '
                                   'version like "0.169.0", or "latest", or a table '
                                   '{ npm = …, version = … }'), None),
    ('[runtime]\nnode = "twenty"\n', "2: [runtime] node: 'twenty' is not a Node.js version range",
     'use a major version like "24"'),
    ('[settings]\nplatforms = ["linux/riscv64"]\n', "2: unsupported platform 'linux/riscv64'",
     "supported: linux/amd64, linux/arm64"),
    ('[runtme]\nnode = "24"\n', "1: unknown table [runtme]", "did you mean [runtime]?"),
])
def test_bad_manifest_is_one_line_with_file_and_line(tmp_path, text, message, hint):
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, text)
    assert str(exc.value) == f"{tmp_path / 'aishell.toml'}:{message}"
    if hint:
        assert hint in (exc.value.hint or "")


@pytest.mark.parametrize(("spec", "name", "value"), [
    ("claude", "claude", "latest"),
    ("claude@^2.1", "claude", "^2.1"),
    ("codex@0.169.0", "codex", "0.169.0"),
    ("npm:@scope/pkg@~1.2", "pkg", {"npm": "@scope/pkg", "version": "~1.2"}),
    ("npm:left-pad", "left-pad", {"npm": "left-pad", "version": "latest"}),
    ("mine=npm:@scope/pkg@1.0.0", "mine", {"npm": "@scope/pkg", "version": "1.0.0"}),
    ("npm:@openai/codex@^0.169", "codex", "^0.169"),  # a catalog package keeps its short name
])
def test_parse_spec_forms(spec, name, value):
    assert parse_spec(spec) == Addition(name, value)


@pytest.mark.parametrize("bad", ["claud", "claude@^^1", "npm:Bad Name", "X=npm:pkg", "mine=pkg"])
def test_parse_spec_rejects_bad_input(bad):
    with pytest.raises(UsageError):
        parse_spec(bad)


MANIFEST = """\
# my project's agents
[harnesses]
claude = "^2.1"   # the main one
# codex is for reviews
codex = "0.169.0"

[run]
mounts = ["~/.aws:ro"]  # keep
"""


def test_add_and_remove_keep_comments_and_layout():
    added = add(MANIFEST, [parse_spec("gemini@latest"), parse_spec("x=npm:@acme/agent@~1.4")])
    assert added.startswith(MANIFEST.split("\n[run]", maxsplit=1)[0].rstrip("\n"))
    assert 'gemini = "latest"\n' in added
    assert 'x = {npm = "@acme/agent", version = "~1.4"}' in added
    assert '# the main one' in added and 'mounts = ["~/.aws:ro"]  # keep' in added
    removed = remove(added, ["gemini", "x"])
    assert removed == MANIFEST
    assert "codex is for reviews" in remove(MANIFEST, ["claude"])


def test_add_replaces_an_existing_spec_in_place():
    out = add(MANIFEST, [parse_spec("claude@^2.2")])
    assert 'claude = "^2.2"   # the main one' in out


def test_remove_unknown_names_the_present_ones():
    with pytest.raises(UsageError) as exc:
        remove(MANIFEST, ["gemini"])
    assert "'gemini' is not in [harnesses]" in str(exc.value)


def test_starter_is_valid_and_commented(tmp_path):
    text = starter([parse_spec("claude"), parse_spec("codex@^0.169")])
    assert text.startswith("# aishell.toml")
    m = load(tmp_path, text)
    assert [(h.name, h.requested) for h in m.harnesses] == [("claude", "latest"), ("codex", "^0.169")]


def test_allow_network_install_is_a_flag_with_file_and_line(tmp_path):
    m = load(tmp_path, '[harnesses]\ncrush = { npm = "@charmland/crush", '
                       'allow-network-install = true }\n')
    assert m.harnesses[0].network_install is True
    assert m.harnesses[0].where == f"{tmp_path / 'aishell.toml'}:2"
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, '[harnesses]\n\ncrush = { npm = "@charmland/crush", '
                       'allow-network-install = "yes" }\n')
    assert str(exc.value) == (f"{tmp_path / 'aishell.toml'}:3: [harnesses] crush: "
                              "allow-network-install must be true or false")
