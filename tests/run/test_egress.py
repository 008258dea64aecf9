"""The egress policy as data: tinyproxy's filter and config, the sandbox's variables, the
plan of each network mode, denials read back from the log (pure)."""

from __future__ import annotations

import re

import pytest

from aishell.project import network
from aishell.request import cli_args
from aishell.run import egress, plancache
from aishell.run.plan import RunOptions
from tests.run.test_run_plan import make_plan, project_with

PATTERNS = ["registry.npmjs.org", "*.openai.com", "a-b.example", "dev.example:8443"]
# (URL as tinyproxy filters it: http://host[:port]/path for plain HTTP, host:port for a
# CONNECT) → host, port, TLS
REQUESTS = {
    "registry.npmjs.org:443": ("registry.npmjs.org", 443, True),
    "REGISTRY.NPMJS.ORG:443": ("registry.npmjs.org", 443, True),
    "registry.npmjs.org:8443": ("registry.npmjs.org", 8443, True),
    "registry.npmjs.org:80": ("registry.npmjs.org", 80, True),
    "http://registry.npmjs.org/": ("registry.npmjs.org", 80, False),
    "http://registry.npmjs.org:80/x": ("registry.npmjs.org", 80, False),
    "http://registry.npmjs.org:8123/": ("registry.npmjs.org", 8123, False),
    "registry.npmjs.org.:443": ("registry.npmjs.org.", 443, True),
    "xregistry.npmjs.org:443": ("xregistry.npmjs.org", 443, True),
    "registry.npmjs.org.evil.example:443": ("registry.npmjs.org.evil.example", 443, True),
    "registryxnpmjs.org:443": ("registryxnpmjs.org", 443, True),
    "api.openai.com:443": ("api.openai.com", 443, True),
    "a.b.openai.com:443": ("a.b.openai.com", 443, True),
    "http://api.openai.com/v1": ("api.openai.com", 80, False),
    "openai.com:443": ("openai.com", 443, True),
    "evilopenai.com:443": ("evilopenai.com", 443, True),
    "openai.com.evil.example:443": ("openai.com.evil.example", 443, True),
    "a-b.example:443": ("a-b.example", 443, True),
    "ab.example:443": ("ab.example", 443, True),
    "dev.example:8443": ("dev.example", 8443, True),
    "http://dev.example:8443/": ("dev.example", 8443, False),
    "dev.example:443": ("dev.example", 443, True),
    "http://dev.example/": ("dev.example", 80, False),
}
# URLs that smuggle another host past a naive pattern: all refused
SMUGGLED = ["http://evil.example/x.openai.com/", "http://api.openai.com@evil.example/",
            "http://evil.example/registry.npmjs.org/", "evil.example:443/x.openai.com:443",
            "http://registry.npmjs.org.evil.example/", "http://x.openai.com:80@evil.example/"]


def _filtered(url: str, allow: list[str]) -> bool:
    # tinyproxy runs these as POSIX EREs, case-insensitively; for this subset (anchors,
    # `\.`, classes, groups, `?`, `+`, `*`) Python's re means the same
    return any(re.search(line, url, re.IGNORECASE)
               for line in egress.filter_text(allow).splitlines())


def test_each_pattern_gives_an_anchored_regex_for_plain_http_and_one_for_connect():
    assert egress.filter_text(PATTERNS).splitlines() == [
        r"^http://registry\.npmjs\.org(:80)?/", r"^registry\.npmjs\.org:443$",
        r"^http://[a-z0-9-]+(\.[a-z0-9-]+)*\.openai\.com(:80)?/",
        r"^[a-z0-9-]+(\.[a-z0-9-]+)*\.openai\.com:443$",
        r"^http://a-b\.example(:80)?/", r"^a-b\.example:443$",
        r"^http://dev\.example:8443/", r"^dev\.example:8443$"]


def test_an_empty_allow_list_still_denies_everything():
    text = egress.filter_text([])
    assert text == egress.NOTHING
    assert not any(_filtered(url, []) for url in REQUESTS)


@pytest.mark.parametrize("url", sorted(REQUESTS))
def test_the_filter_and_the_matcher_agree(url):
    host, port, tls = REQUESTS[url]
    assert _filtered(url, PATTERNS) is network.allowed(host, PATTERNS, port=port, tls=tls)


@pytest.mark.parametrize("url", SMUGGLED)
def test_a_url_that_hides_another_host_is_refused(url):
    assert not _filtered(url, PATTERNS)


def test_the_config_denies_by_default_and_filters_host_and_port():
    conf = egress.tinyproxy_conf(PATTERNS, None).splitlines()
    for line in ("FilterDefaultDeny Yes", "FilterURLs On", "FilterType ere",
                 "FilterCaseSensitive Off", "ConnectPort 443", "ConnectPort 8443"):
        assert line in conf
    # the service owns where it listens, logs and finds the filter
    assert not [line for line in conf if line.split()[0] in ("Port", "Listen", "LogFile", "Filter")]
    assert "ConnectPort 80" not in conf
    assert not [line for line in conf if line.startswith("Upstream")]
    assert "Upstream http proxy.corp.example:3128" in egress.tinyproxy_conf(
        [], "proxy.corp.example:3128").splitlines()


def test_the_sandbox_is_pointed_at_its_forwarder_on_loopback():
    env = egress.sandbox_env()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        assert env[name] == f"http://127.0.0.1:{egress.PORT}"
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1,::1"
    assert env["NODE_USE_ENV_PROXY"] == "1"
    assert env["AISHELL_EGRESS_FORWARDS"] == f"{egress.PORT}=proxy.sock"


LOG = """\
NOTICE    Dec 03 11:59:04.659 [1]: Initializing tinyproxy ...
INFO      Dec 03 11:59:04.659 [1]: Starting main loop. Accepting connections.
CONNECT   Dec 03 11:59:14.999 [1]: Request (file descriptor 5): CONNECT pypi.org:443 HTTP/1.1
NOTICE    Dec 03 11:59:14.999 [1]: Proxying refused on filtered url "pypi.org:443"
NOTICE    Dec 03 11:59:15.100 [1]: Proxying refused on filtered url "http://Example.COM/x"
NOTICE    Dec 03 11:59:15.200 [1]: Proxying refused on filtered url "pypi.org:443"
INFO      Dec 03 11:59:15.300 [1]: Refused CONNECT method on port 22
NOTICE    Dec 03 11:59:15.400 [1]: Proxying refused on filtered url "http://localhost:8123/"
NOTICE    Dec 03 11:59:15.500 [1]: Proxying refused on filtered url "dev.example:8443"
NOTICE    Dec 03 11:59:15.600 [1]: Proxying refused on filtered domain "old.example"
"""


def test_denials_are_read_from_the_log_in_order():
    assert egress.denied(LOG) == ["pypi.org", "example.com", "pypi.org", "port 22",
                                  "localhost:8123", "dev.example:8443", "old.example"]
    assert egress.summary(egress.denied(LOG)) == (
        "7 denied: old.example, dev.example:8443, localhost:8123, port 22, pypi.org (2) "
        "and 1 more")
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


def test_allowlist_mode_gives_the_sandbox_no_network_but_its_own_socket(tmp_path):
    project = project_with(tmp_path, '[network]\nmode = "allowlist"\nallow = ["registry.npmjs.org"]\n')
    p = make_plan(project, RunOptions("claude"))
    assert p.egress is not None
    assert re.fullmatch(r"[0-9a-f]{12}", p.egress.id)
    assert p.request.network == "none"
    assert p.request.labels[egress.LABEL] == p.egress.id
    assert p.request.labels["dev.aishell.network"] == "allowlist"
    # its own socket's directory and nothing else of the egress service, read-only
    (mount,) = [m for m in p.request.mounts if m.target == egress.SANDBOX_SOCKET_DIR]
    assert mount.read_only
    assert mount.source.endswith(f"/egress/sockets/{p.egress.id}")
    assert not [m for m in p.request.mounts if "/egress/" in m.source and m is not mount]
    assert p.request.env["HTTPS_PROXY"] == f"http://127.0.0.1:{egress.PORT}"
    # the project's hosts, then the harness's own
    assert p.egress.allow[:2] == ("registry.npmjs.org", "api.anthropic.com")
    assert "claude.ai" in p.egress.allow
    other = make_plan(project, RunOptions("claude"))
    assert other.egress is not None and other.egress.id != p.egress.id


def test_a_plan_in_allowlist_mode_is_never_cached(tmp_path):
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


@pytest.mark.parametrize("mode", ["allowlist", "none"])
def test_ports_are_not_published_without_a_network_and_the_launch_says_so(tmp_path, mode):
    project = project_with(tmp_path, f'[network]\nmode = "{mode}"\n[run]\nports = ["18999:8000"]\n')
    p = make_plan(project, RunOptions())
    assert p.request.ports == ()
    assert any("ports (18999:8000/tcp) are not published" in n for n in p.notices)
