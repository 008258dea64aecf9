"""`aishell check --network` on the real engine: the probe sandbox reaches the allowed
host through the proxy, the proxy refuses another, and no address of the engine host
answers a direct dial."""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_aishell

pytestmark = pytest.mark.engine


def _project(tmp_path: Path, network: str) -> Path:
    project = tmp_path / "net check ü"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / "aishell.toml").write_text(network, encoding="utf-8")
    return project


def test_check_network_proves_the_allowlist_from_inside_a_sandbox(tmp_path, foundation_tag,
                                                                   engine):
    del foundation_tag
    project = _project(tmp_path, '[network]\nmode = "allowlist"\nallow = ["registry.npmjs.org"]\n')
    r = run_aishell("check", "--network", "--json", cwd=project, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    found = {f["subject"]: f for f in doc["findings"]}
    assert found["allowed host"]["status"] == "ok", found["allowed host"]
    assert found["denied host"]["status"] == "ok", found["denied host"]
    assert found["engine host"]["status"] == "ok", found["engine host"]
    # it dialled the gateway of every engine network among the engine host's addresses
    # (Docker's list leaves the default bridge's out: its subnet's first address)
    gateways = [c.get("Gateway") or str(next(ipaddress.ip_network(c["Subnet"]).hosts()))
                for n in engine.list_networks({}) for c in (n.get("IPAM") or {}).get("Config") or []]
    assert gateways
    assert all(f"{g}," in found["engine host"]["detail"] + "," for g in gateways)


def test_check_network_of_an_open_project_says_there_is_nothing_to_probe(tmp_path,
                                                                        foundation_tag):
    del foundation_tag
    project = _project(tmp_path, '[network]\nmode = "open"\n')
    r = run_aishell("check", "--network", cwd=project)
    assert "is in mode = \"open\": nothing to probe" in r.stdout, r.stdout + r.stderr
