"""The [network] table: checked per file with its line, merged like every list, matched."""

from __future__ import annotations

from pathlib import Path

import pytest

from aishell.errors import ConfigError
from aishell.project import config, network


def load(tmp_path: Path, project: str, global_text: str | None = None) -> config.Config:
    proj = tmp_path / "p"
    proj.mkdir(exist_ok=True)
    (proj / "aishell.toml").write_text(project, encoding="utf-8")
    glob = None
    if global_text is not None:
        glob = tmp_path / "config.toml"
        glob.write_text(global_text, encoding="utf-8")
    return config.load(proj, glob)


def test_the_default_is_open_with_nothing_allowed(tmp_path):
    net = network.from_config(load(tmp_path, ""))
    assert net == network.NetworkConfig(mode="open", allow=(), upstream=None)


def test_lists_concatenate_global_first_and_the_project_mode_wins(tmp_path):
    cfg = load(tmp_path, '[network]\nmode = "allowlist"\nallow = ["Registry.NPMjs.org"]\n',
               '[network]\nmode = "none"\nallow = ["api.example.com", "*.corp.example"]\n')
    net = network.from_config(cfg, harness_hosts=("api.anthropic.com", "api.example.com"))
    assert net.mode == "allowlist"
    assert net.allow == ("api.example.com", "*.corp.example", "registry.npmjs.org",
                         "api.anthropic.com")  # lower-cased, deduplicated, in order


def test_a_project_that_loosens_the_global_mode_is_said(tmp_path):
    cfg = load(tmp_path, '\n[network]\nmode = "open"\n', '[network]\nmode = "allowlist"\n')
    warning = network.weakened(cfg)
    assert warning is not None
    assert warning.startswith(f"{tmp_path / 'p' / 'aishell.toml'}:3: [network] mode = 'open'")
    tighter = load(tmp_path, '[network]\nmode = "none"\n', '[network]\nmode = "allowlist"\n')
    assert network.weakened(tighter) is None


@pytest.mark.parametrize(("entry", "why"), [
    ("https://api.openai.com", "is not a host name"),
    ("api.openai.com:0", "the port must be a number from 1 to 65535"),
    ("api.openai.com:70000", "the port must be a number from 1 to 65535"),
    ("api.openai.com:https", "the port must be a number from 1 to 65535"),
    ("api.openai.com:", "the port must be a number from 1 to 65535"),
    ("[::1]:443", "is not a host name"),
    ("api.openai.com/v1", "is not a host name"),
    ("*", "only a leading `*.` wildcard"),
    ("api.*.com", "only a leading `*.` wildcard"),
    ("bad_host.example", "is not a valid host name"),
    ("-x.example", "is not a valid host name"),
])
def test_a_bad_allow_entry_names_its_file_and_line(tmp_path, entry, why):
    text = f'[network]\nmode = "allowlist"\nallow = [\n  "ok.example",\n  "{entry}",\n]\n'
    with pytest.raises(ConfigError) as err:
        network.from_config(load(tmp_path, text))
    assert err.value.message.startswith(f"{tmp_path / 'p' / 'aishell.toml'}:5: [network] allow:")
    assert why in err.value.message
    assert err.value.hint == network.HOST_HINT


def test_a_bad_entry_in_the_global_file_points_there(tmp_path):
    with pytest.raises(ConfigError) as err:
        network.from_config(load(tmp_path, "", '[network]\nallow = ["ftp://x"]\n'))
    assert err.value.path == tmp_path / "config.toml"
    assert err.value.line == 2


def test_the_schema_checks_mode_and_types(tmp_path):
    with pytest.raises(ConfigError, match=r'aishell.toml:2: \[network\] mode must be "open", '):
        load(tmp_path, '[network]\nmode = "closed"\n')
    with pytest.raises(ConfigError, match=r"\[network\] allow must be a list of host names"):
        load(tmp_path, '[network]\nallow = "api.openai.com"\n')


@pytest.mark.parametrize(("value", "parsed"), [
    ("proxy.corp.example:3128", "proxy.corp.example:3128"),
    ("http://proxy.corp.example:3128/", "proxy.corp.example:3128"),
    ("[2001:db8::1]:8080", "[2001:db8::1]:8080"),
])
def test_upstream_is_host_and_port(value, parsed):
    assert network.parse_upstream(value) == parsed


@pytest.mark.parametrize("value", ["proxy", "https://p:1", "p:0", "p:99999", "socks5://p:1"])
def test_an_upstream_that_is_not_host_port_is_refused(value):
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        network.parse_upstream(value)


def test_upstream_comes_from_config_else_from_the_environment(tmp_path):
    env = {"HTTPS_PROXY": "http://user:pw@proxy.env.example:8080"}
    assert network.from_config(load(tmp_path, ""), environ=env).upstream == \
        "proxy.env.example:8080"
    cfg = load(tmp_path, '[network]\nupstream = "proxy.cfg.example:3128"\n')
    assert network.from_config(cfg, environ=env).upstream == "proxy.cfg.example:3128"
    assert network.upstream_from_env({"HTTPS_PROXY": "socks5://x:1"}) is None
    with pytest.raises(ConfigError, match=r"aishell.toml:2: \[network\] upstream proxy"):
        network.from_config(load(tmp_path, '[network]\nupstream = "nope"\n'))


@pytest.mark.parametrize(("host", "pattern", "expected"), [
    ("registry.npmjs.org", "registry.npmjs.org", True),
    ("REGISTRY.npmjs.org", "registry.npmjs.org", True),
    ("registry.npmjs.org.", "registry.npmjs.org", False),
    ("xregistry.npmjs.org", "registry.npmjs.org", False),
    ("registry.npmjs.org.evil.example", "registry.npmjs.org", False),
    ("api.openai.com", "*.openai.com", True),
    ("a.b.openai.com", "*.openai.com", True),
    ("openai.com", "*.openai.com", False),
    ("evilopenai.com", "*.openai.com", False),
    ("openai.com.evil.example", "*.openai.com", False),
])
def test_wildcards_match_names_below_the_domain_only(host, pattern, expected):
    assert network.matches(host, pattern) is expected


@pytest.mark.parametrize(("entry", "normalised"), [
    ("Dev.Example:8443", "dev.example:8443"), ("*.example.com:08443", "*.example.com:8443"),
    ("dev.example", "dev.example"),
])
def test_an_entry_may_name_a_port(entry, normalised):
    assert network.normalise_host(entry) == normalised


@pytest.mark.parametrize(("host", "port", "tls", "expected"), [
    ("dev.example", 443, True, True), ("dev.example", 80, False, True),
    ("dev.example", 80, True, False), ("dev.example", 443, False, False),
    ("dev.example", 8443, True, False), ("dev.example", 8123, False, False),
    ("api.example", 8443, True, True), ("api.example", 8443, False, True),
    ("api.example", 443, True, False), ("api.example", 80, False, False),
])
def test_ports_are_the_defaults_unless_an_entry_names_one(host, port, tls, expected):
    patterns = ["dev.example", "api.example:8443"]
    assert network.allowed(host, patterns, port=port, tls=tls) is expected
