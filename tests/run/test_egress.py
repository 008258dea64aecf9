"""The egress proxy as data: tinyproxy's filter and config, the sandbox's variables, the
plan of each network mode, denials read back from the log (pure)."""

from __future__ import annotations

import re

import pytest

from aishell.project import network
from aishell.request import cli_args
from aishell.run import egress, plancache
from aishell.run.plan import RunOptions
from tests.run.test_run_plan import make_plan, project_with

PATTERNS = ["registry.npmjs.org", "*.openai.com", "a-b.example"]
HOSTS = ["registry.npmjs.org", "REGISTRY.NPMJS.ORG", "registry.npmjs.org.", "xregistry.npmjs.org",
         "registry.npmjs.org.evil.example", "registryxnpmjs.org", "api.openai.com",
         "a.b.openai.com", "openai.com", "evilopenai.com", "openai.com.evil.example",
         "a-b.example", "ab.example", "a-b.example.com"]


def test_the_filter_has_one_anchored_regex_per_pattern():
    assert egress.filter_text(PATTERNS).splitlines() == [
        r"^registry\.npmjs\.org$", r"^.+\.openai\.com$", r"^a-b\.example$"]


def test_an_empty_allow_list_still_denies_everything():
    text = egress.filter_text([])
    assert text == egress.NOTHING
    assert not any(re.search(text, h, re.IGNORECASE) for h in HOSTS)


@pytest.mark.parametrize("host", HOSTS)
def test_the_filter_and_the_matcher_agree(host):
    # tinyproxy runs these as POSIX EREs, case-insensitively; for this subset (anchors,
    # `\.`, `.+`) Python's re means the same
    by_filter = any(re.search(line, host, re.IGNORECASE)
                    for line in egress.filter_text(PATTERNS).splitlines())
    assert by_filter is network.allowed(host, PATTERNS)


def test_the_config_denies_by_default_and_filters_host_names_only():
    conf = egress.tinyproxy_conf(None).splitlines()
    for line in ("FilterDefaultDeny Yes", "FilterURLs Off", "FilterType ERE",
                 f'Filter "{egress.FILTER_PATH}"', "ConnectPort 443", "ConnectPort 80",
                 f"Port {egress.PORT}", f'LogFile "{egress.LOG_PATH}"'):
        assert line in conf
    assert not [line for line in conf if line.startswith("Upstream")]
    assert "Upstream http proxy.corp.example:3128" in egress.tinyproxy_conf(
        "proxy.corp.example:3128").splitlines()


def test_the_sandbox_is_pointed_at_the_proxy_by_address():
    env = egress.sandbox_env("172.30.0.2")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        assert env[name] == "http://172.30.0.2:8888"
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1,::1"
    assert env["NODE_USE_ENV_PROXY"] == "1"
    assert egress.sandbox_env("fd00::2")["HTTPS_PROXY"] == "http://[fd00::2]:8888"


LOG = """\
NOTICE    Dec 03 11:59:04.659 [1]: Initializing tinyproxy ...
INFO      Dec 03 11:59:04.659 [1]: Starting main loop. Accepting connections.
CONNECT   Dec 03 11:59:14.999 [1]: Request (file descriptor 5): CONNECT pypi.org:443 HTTP/1.1
NOTICE    Dec 03 11:59:14.999 [1]: Proxying refused on filtered domain "pypi.org"
NOTICE    Dec 03 11:59:15.100 [1]: Proxying refused on filtered domain "Example.COM"
NOTICE    Dec 03 11:59:15.200 [1]: Proxying refused on filtered domain "pypi.org"
INFO      Dec 03 11:59:15.300 [1]: Refused CONNECT method on port 22
"""


def test_denials_are_read_from_the_log_in_order():
    assert egress.denied(LOG) == ["pypi.org", "example.com", "pypi.org", "port 22"]
    assert egress.summary(egress.denied(LOG)) == "4 denied: port 22, pypi.org (2), example.com"
    assert egress.summary([]) == "no request was denied"
    many = [f"h{i}.example" for i in range(8)]
    assert egress.summary(many).endswith("h3.example and 3 more")


def test_open_mode_leaves_the_request_alone(tmp_path):
    p = make_plan(project_with(tmp_path, "[run]\n"), RunOptions(), one_shot=True,
                  command=["true"])
    assert p.egress is None
    assert p.request.network is None
    assert "dev.aishell.network" not in p.request.labels


def test_mode_none_has_no_network_and_is_still_replayable(tmp_path):
    p = make_plan(project_with(tmp_path, '[network]\nmode = "none"\n'), RunOptions(),
                  one_shot=True, command=["true"])
    assert p.egress is None
    argv = cli_args(p.request)
    assert argv[argv.index("--network") + 1] == "none"
    assert p.request.labels["dev.aishell.network"] == "none"
    assert plancache.cacheable(p, one_shot=True)


def test_allowlist_mode_puts_the_sandbox_on_its_own_internal_network(tmp_path):
    project = project_with(tmp_path, '[network]\nmode = "allowlist"\nallow = ["registry.npmjs.org"]\n')
    p = make_plan(project, RunOptions("claude"))
    assert p.egress is not None
    assert re.fullmatch(r"[0-9a-f]{12}", p.egress.id)
    assert p.request.network == p.egress.network == f"aishell-egress-{p.egress.id}"
    assert p.request.labels[egress.LABEL] == p.egress.id
    assert p.request.labels["dev.aishell.network"] == "allowlist"
    # the project's hosts, then the harness's own
    assert p.egress.allow[:2] == ("registry.npmjs.org", "api.anthropic.com")
    assert "claude.ai" in p.egress.allow
    other = make_plan(project, RunOptions("claude"))
    assert other.egress is not None and other.egress.id != p.egress.id


def test_a_plan_with_a_sidecar_is_never_cached(tmp_path):
    project = project_with(tmp_path, '[network]\nmode = "allowlist"\n')
    p = make_plan(project, RunOptions(), one_shot=True, command=["true"])
    assert p.egress is not None and p.egress.allow == ()
    assert not plancache.cacheable(p, one_shot=True)


@pytest.mark.parametrize(("name", "host"), [
    ("claude", "api.anthropic.com"), ("codex", "api.openai.com"),
    ("gemini", "generativelanguage.googleapis.com"), ("opencode", "opencode.ai"),
    ("pi", "api.anthropic.com"), ("copilot", "api.github.com"),
    ("qwen", "dashscope.aliyuncs.com"),
])
def test_every_catalog_harness_brings_its_hosts(name, host):
    from aishell.lock.catalog import CATALOG

    hosts = CATALOG[name].hosts
    assert host in hosts
    assert [network.normalise_host(h) for h in hosts] == list(hosts)
