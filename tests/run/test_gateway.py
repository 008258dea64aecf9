"""Model gateways: each harness's base-URL and gateway variables pass by name, codex gets
its endpoint as config, and allowlist mode admits the gateway's host (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aishell.lock.catalog import CATALOG
from aishell.project import network
from aishell.run.plan import RunOptions
from tests.run.test_run_plan import make_plan, project_with

ALLOWLIST = '[network]\nmode = "allowlist"\n'


@pytest.mark.parametrize(("name", "variable"), [
    ("claude", "ANTHROPIC_BASE_URL"), ("claude", "ANTHROPIC_AUTH_TOKEN"),
    ("claude", "CLAUDE_CODE_USE_BEDROCK"), ("codex", "OPENAI_BASE_URL"),
    ("gemini", "GOOGLE_GEMINI_BASE_URL"), ("opencode", "ANTHROPIC_BASE_URL"),
    ("opencode", "OPENCODE_CONFIG_CONTENT"),
])
def test_gateway_variables_pass_by_name_and_never_by_value(tmp_path, name, variable):
    secret = "value-that-must-not-be-in-argv"
    p = make_plan(project_with(tmp_path), RunOptions(name), {variable: secret})
    assert variable in p.request.env_passthrough
    assert variable not in p.request.env
    if variable.endswith("BASE_URL") and name == "codex":
        return  # codex reads its endpoint only from config: the next test
    assert secret not in " ".join(p.request.command)


def test_codex_gets_openai_base_url_as_its_config_key(tmp_path):
    p = make_plan(project_with(tmp_path), RunOptions("codex", ("exec", "hi")),
                  {"OPENAI_BASE_URL": "http://gw.example:4000/v1"})
    cmd = list(p.request.command)
    at = cmd.index('openai_base_url="http://gw.example:4000/v1"')
    assert cmd[at - 1] == "-c"
    assert cmd[-2:] == ["exec", "hi"]  # the user's arguments stay last
    plain = make_plan(project_with(tmp_path), RunOptions("codex", ("exec", "hi")), {})
    assert not [a for a in plain.request.command if a.startswith("openai_base_url")]


@pytest.mark.parametrize(("url", "entry"), [
    ("http://172.17.0.1:4000", "172.17.0.1:4000"), ("https://gw.example/v1", "gw.example"),
    ("http://gw.example/", "gw.example"), ("https://GW.example:8443/x", "gw.example:8443"),
    ("http://gw.example:443/", "gw.example:443"), ("ftp://gw.example/", None),
    ("not a url", None), ("http://:80/", None), ("http://gw.example:99999/", None),
])
def test_a_base_url_becomes_the_allow_entry_of_its_host_and_port(url, entry):
    assert network.url_pattern(url) == entry


def test_allowlist_mode_admits_the_gateway_and_labels_the_sandbox(tmp_path):
    p = make_plan(project_with(tmp_path, ALLOWLIST), RunOptions("claude"),
                  {"ANTHROPIC_BASE_URL": "http://172.17.0.1:4000"})
    assert p.egress is not None
    assert "172.17.0.1:4000" in p.egress.allow
    assert p.request.labels["dev.aishell.gateway"] == "172.17.0.1:4000"
    assert network.allowed("172.17.0.1", p.egress.allow, port=4000, tls=False)


def test_a_gateway_variable_of_another_harness_opens_nothing(tmp_path):
    p = make_plan(project_with(tmp_path, ALLOWLIST), RunOptions("codex"),
                  {"ANTHROPIC_BASE_URL": "http://172.17.0.1:4000"})
    assert p.egress is not None
    assert "172.17.0.1:4000" not in p.egress.allow
    assert "dev.aishell.gateway" not in p.request.labels


def test_every_gateway_base_url_variable_is_forwarded_for_its_harness():
    for harness in CATALOG.values():
        for name, _key in harness.config_from_env:
            assert name in harness.gateway


def test_gemini_runs_trusted_and_without_asking_unless_the_user_picks_a_mode(tmp_path):
    p = make_plan(project_with(tmp_path), RunOptions("gemini", ("-p", "hi")))
    assert p.request.command[:2] == ("gemini", "--yolo")
    assert p.request.env["GEMINI_CLI_TRUST_WORKSPACE"] == "true"
    for chosen in (("--approval-mode", "auto_edit"), ("--approval-mode=plan",), ("-y",)):
        mine = make_plan(project_with(tmp_path), RunOptions("gemini", chosen))
        assert "--yolo" not in mine.request.command[:2], chosen


def test_gemini_pointed_at_a_gateway_gets_an_api_key_auth_default(tmp_path):
    import json

    from aishell.project.context import Context
    from aishell.run.host import system_file_mounts

    ctx = Context.create(str(project_with(tmp_path)))
    gemini = CATALOG["gemini"]
    plain = {m.target: m for m in system_file_mounts(ctx, gemini)}
    gateway = {m.target: m for m in system_file_mounts(ctx, gemini, gateway=True)}
    defaults = "/etc/gemini-cli/system-defaults.json"
    assert set(plain) == set(gateway) == {"/etc/gemini-cli/settings.json", defaults}
    def read(mounts):
        return json.loads(Path(mounts[defaults].source).read_text(encoding="utf-8"))

    assert read(plain) == {"privacy": {"usageStatisticsEnabled": False}}
    assert read(gateway)["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert plain[defaults].source != gateway[defaults].source  # both kept side by side


def test_claude_pointed_at_a_gateway_sends_nothing_else_to_anthropic(tmp_path):
    pointed = make_plan(project_with(tmp_path), RunOptions("claude"),
                        {"ANTHROPIC_BASE_URL": "http://172.17.0.1:4000"})
    assert pointed.request.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    plain = make_plan(project_with(tmp_path), RunOptions("claude"), {})
    assert "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC" not in plain.request.env
    mine = make_plan(project_with(tmp_path, '[run.env]\nCLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = "0"\n'),
                     RunOptions("claude"), {"ANTHROPIC_BASE_URL": "http://172.17.0.1:4000"})
    assert mine.request.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "0"  # config wins


@pytest.mark.parametrize("url", ["https://*.evil.example/", "http://gw.example:0/"])
def test_a_gateway_url_that_names_no_single_host_and_port_opens_nothing(tmp_path, url):
    p = make_plan(project_with(tmp_path, ALLOWLIST), RunOptions("claude"),
                  {"ANTHROPIC_BASE_URL": url, "CLAUDE_CODE_OAUTH_TOKEN": ""})
    assert p.egress is not None
    assert not [h for h in p.egress.allow if "evil" in h or h.endswith(":0")]
