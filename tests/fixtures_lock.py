"""Fixtures for lock tests: the fixture registry, a shared download cache, projects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry_server import RegistryServer

REPO = Path(__file__).resolve().parent.parent
FIXTURE_CACHE = REPO / ".pytest_cache" / "aishell-fixtures"


def publish_fixtures(reg: RegistryServer) -> None:
    """The fixture packages the lock tests resolve."""
    for v in ("1.0.0", "1.1.0"):
        reg.publish("dep-x", v)
    reg.publish("dep-y", "2.0.0", dependencies={"dep-x": "1.0.0"})
    reg.publish("agent-a-linux-x64", "1.0.0", os=["linux"], cpu=["x64"])
    reg.publish("agent-a-linux-arm64", "1.0.0", os=["linux"], cpu=["arm64"])
    reg.publish("agent-a-darwin-arm64", "1.0.0", os=["darwin"], cpu=["arm64"])
    platform_deps = {"agent-a-linux-x64": "1.0.0", "agent-a-linux-arm64": "1.0.0",
                     "agent-a-darwin-arm64": "1.0.0"}
    reg.publish("agent-a", "0.9.0", dependencies={"dep-x": "^1.0.0"}, bin={"agent-a": "bin/a.js"})
    reg.publish("agent-a", "1.0.0", dependencies={"dep-x": "^1.0.0", "dep-y": "^2.0.0"},
                optional=platform_deps, bin={"agent-a": "bin/a.js"})
    reg.publish("agent-a", "2.0.0-beta.1", dependencies={"dep-x": "^1.0.0"},
                bin={"agent-a": "bin/a.js"}, latest=False, tags={"next": "2.0.0-beta.1"})
    reg.publish("agent-b", "1.0.0", dependencies={"dep-x": "~1.0.0"}, bin={"agent-b": "bin/b.js"},
                install_script=True)
    reg.publish("@fix/agent-c", "0.1.0", bin={"agent-c": "bin/c.js"})


# An install script like crush's install.js: it downloads the release binary the bin runs.
FETCHING_INSTALL = """\
const fs = require("fs"), path = require("path");
const client = require(URL.startsWith("https:") ? "https" : "http");
fs.mkdirSync(path.join(__dirname, "vendor"), { recursive: true });
client.get(URL, (res) => {
  if (res.statusCode !== 200) {
    console.error(`NAME: downloading ${URL} failed: HTTP ${res.statusCode}`);
    process.exit(1);
  }
  const out = fs.createWriteStream(path.join(__dirname, "vendor", "NAME"), { mode: 0o755 });
  res.pipe(out);
  out.on("finish", () => console.log(`NAME: installed ${URL}`));
}).on("error", (e) => { console.error(`NAME: downloading ${URL} failed: ${e.message}`); process.exit(1); });
"""
FETCHING_BIN = """\
#!/usr/bin/env node
const { execFileSync } = require("child_process");
execFileSync(require("path").join(__dirname, "..", "vendor", "NAME"), process.argv.slice(2),
             { stdio: "inherit" });
"""


def publish_fetching(reg: RegistryServer, name: str, version: str, url: str) -> None:
    """A harness whose install script downloads its binary from ``url``."""
    script = FETCHING_INSTALL.replace("URL", json.dumps(url)).replace("NAME", name)
    script = script.replace(json.dumps(url) + ".startsWith", "String(" + json.dumps(url) + ").startsWith")
    reg.publish(name, version, bin={name: "bin/run.js"}, install_script="node install.js",
                files={"install.js": script, "bin/run.js": FETCHING_BIN.replace("NAME", name)})


@pytest.fixture(scope="session")
def registry() -> Iterator[RegistryServer]:
    """The fixture registry, serving the real Node.js and npm too (fetched once)."""
    with RegistryServer() as reg:
        reg.publish_runtime(FIXTURE_CACHE / "real")
        publish_fixtures(reg)
        yield reg


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aishell-cache")


@pytest.fixture
def lock_env(private_state: Path, shared_cache: Path, registry: RegistryServer,
             monkeypatch: pytest.MonkeyPatch) -> RegistryServer:
    """AISHELL_HOME with the session's download cache, npm_config_registry at the fixture."""
    (private_state / "cache").symlink_to(shared_cache)
    monkeypatch.setenv("npm_config_registry", registry.url)
    return registry


def write_manifest(project: Path, harnesses: str, extra: str = "") -> Path:
    path = project / "aishell.toml"
    path.write_text(f"[harnesses]\n{harnesses}\n{extra}", encoding="utf-8")
    return path
