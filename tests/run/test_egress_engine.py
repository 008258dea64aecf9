"""The network modes on the real engine: the tinyproxy sidecar admits the allowed registry
(npm), refuses another (PyPI) with a 403 it logs and reports, and a sandbox that ignores
the proxy variables gets nowhere; mode "none" has no network; nothing is left behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_aishell
from tests.fixtures_run import wait_for

pytestmark = pytest.mark.engine

ALLOWED = "registry.npmjs.org"
DENIED = "pypi.org"


@dataclass
class NetProject:
    path: Path

    def configure(self, mode: str, allow: tuple[str, ...] = (ALLOWED,)) -> None:
        hosts = ", ".join(f'"{h}"' for h in allow)
        (self.path / "aishell.toml").write_text(
            f'[network]\nmode = "{mode}"\nallow = [{hosts}]\n', encoding="utf-8")

    def aishell(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run_aishell(*args, cwd=self.path, timeout=timeout)

    def leftovers(self) -> list[str]:
        """This project's egress sidecars, sandboxes and networks still on the engine."""
        label = f"label=dev.aishell.project={self.path}"
        containers = subprocess.run(
            ["docker", "ps", "-a", "-q", "--filter", label], capture_output=True, text=True,
            check=True).stdout.split()
        networks = subprocess.run(
            ["docker", "network", "ls", "-q", "--filter", label], capture_output=True,
            text=True, check=True).stdout.split()
        return containers + networks

    def sandbox_running(self) -> bool:
        return bool(subprocess.run(
            ["docker", "ps", "-q", "--filter", "status=running", "--filter",
             "label=dev.aishell.kind=sandbox", "--filter", f"label=dev.aishell.project={self.path}"],
            capture_output=True, text=True, check=True).stdout.strip())

    def cleanup(self) -> None:
        label = f"label=dev.aishell.project={self.path}"
        for kind in ("container", "network"):
            ids = subprocess.run(
                ["docker", kind, "ls", "-q", "--filter", label, *(["-a"] if kind == "container"
                                                                   else [])],
                capture_output=True, text=True, check=False).stdout.split()
            if ids:
                subprocess.run(["docker", kind, "rm", *(["-f"] if kind == "container" else []),
                                *ids], capture_output=True, check=False)


@pytest.fixture
def net_project(tmp_path: Path, foundation_tag: str) -> Iterator[NetProject]:
    del foundation_tag  # built once per session; the CLI finds it by tag
    project = tmp_path / "egress proj ü"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    np = NetProject(project)
    yield np
    np.cleanup()


# Run inside the sandbox: one line per probe.
PROBE = f"""
curl -sS -o /dev/null -w 'allowed %{{http_code}}\\n' https://{ALLOWED}/
curl -sS -o /dev/null -w 'denied %{{http_connect}}\\n' https://{DENIED}/
python3 -c 'import urllib.request; print("python", urllib.request.urlopen("https://{ALLOWED}/").status)'
curl -sS -m 8 --noproxy '*' -o /dev/null https://{ALLOWED}/ && echo direct ok || echo direct failed
python3 - "$@" <<'EOF'
import socket, sys
try:
    socket.create_connection((sys.argv[1], 443), timeout=8).close()
    print("raw ok")
except OSError:
    print("raw failed")
EOF
"""


def _address(host: str) -> str:
    return socket.getaddrinfo(host, 443, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]


def test_allowlist_admits_the_allowed_host_refuses_the_rest_and_cleans_up(net_project):
    np = net_project
    np.configure("allowlist")
    r = np.aishell("-v", "exec", "--", "sh", "-c", PROBE, "probe", _address(ALLOWED))
    assert r.stdout.splitlines() == ["allowed 200", "denied 403", "python 200",
                                     "direct failed", "raw failed"], r.stderr
    # the denial was logged by the proxy and reported at exit
    assert f"egress: 1 denied: {DENIED} (aishell-egress-" in r.stderr
    assert np.leftovers() == []  # the sidecar, the network and the sandbox are gone
    # a plan with a sidecar is not cached, so a second run starts its own proxy again
    plans = Path(os.environ["AISHELL_HOME"]) / "state" / "launch-plans"
    assert not plans.is_dir() or list(plans.iterdir()) == []
    again = np.aishell("exec", "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                       f"https://{ALLOWED}/")
    assert again.stdout == "200", again.stderr
    assert np.leftovers() == []


def test_an_empty_allow_list_refuses_everything(net_project):
    np = net_project
    np.configure("allowlist", allow=())
    r = np.aishell("exec", "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_connect}",
                   f"https://{ALLOWED}/")
    assert r.stdout == "403", r.stderr
    assert np.leftovers() == []


def test_mode_none_has_no_network_at_all(net_project):
    np = net_project
    np.configure("none")
    r = np.aishell("exec", "--", "sh", "-c",
                   f"ls /sys/class/net; curl -sS -m 5 https://{ALLOWED}/ >/dev/null "
                   "&& echo reached || echo unreachable")
    assert r.stdout.split() == ["lo", "unreachable"], r.stderr
    assert np.leftovers() == []


def test_a_detached_sandbox_reports_denials_in_ps_and_stop_removes_its_proxy(net_project):
    np = net_project
    np.configure("allowlist")
    started = np.aishell("run", "--detach", "--name", "box")
    assert started.returncode == 0, started.stderr
    try:
        probe = np.aishell("attach", "box", "--", "curl", "-sS", "-o", "/dev/null",
                           "-w", "%{http_connect}", f"https://{DENIED}/")
        assert probe.stdout == "403", probe.stderr
        ps = np.aishell("ps", "--json")
        assert ps.returncode == 0, ps.stderr
        (box,) = json.loads(ps.stdout)["sandboxes"]
        assert (box["network"], box["denied"], box["denied_hosts"]) == (
            "allowlist", 1, [DENIED])
        table = np.aishell("ps")
        assert f"allowlist, 1 denied ({DENIED})" in table.stdout
    finally:
        stopped = np.aishell("stop", "box")
    assert stopped.returncode == 0, stopped.stderr
    assert np.leftovers() == []


def test_a_terminated_launch_removes_its_proxy(net_project):
    np = net_project
    np.configure("allowlist")
    proc = subprocess.Popen([sys.executable, "-m", "aishell", "exec", "--", "sleep", "60"],
                            cwd=np.path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        # the sandbox runs (so the engine CLI passes signals on to it), next to its proxy
        wait_for(np.sandbox_running, timeout=120)
        assert len(np.leftovers()) == 3  # proxy, network, sandbox
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0, stderr
    assert np.leftovers() == []


def test_a_network_override_in_docker_args_is_refused_in_strict_mode(net_project):
    np = net_project
    np.configure("allowlist")
    with (np.path / "aishell.toml").open("a", encoding="utf-8") as fh:
        fh.write('[run]\ndocker_args = ["--network", "bridge"]\n[security]\nstrict = true\n')
    r = np.aishell("exec", "--", "true")
    assert r.returncode == 1
    assert "--network bridge puts the sandbox on another network" in r.stderr
    assert np.leftovers() == []


def test_gc_keeps_the_proxy_image_a_project_launched_with(net_project, engine, tmp_path,
                                                          monkeypatch):
    from datetime import timedelta

    from aishell.lock.foundation import Foundation
    from aishell.paths import default_paths
    from aishell.store import gc, proxyimage

    np = net_project
    np.configure("allowlist")
    assert np.aishell("exec", "--", "true").returncode == 0
    image = proxyimage.proxy_image(Foundation.from_settings())
    labels = engine.image_inspect(image.tag)["Config"]["Labels"]
    assert labels["dev.aishell.kind"] == "proxy"
    assert labels["dev.aishell.managed"] == "1"
    # A dry run over every aishell item of the engine (it changes nothing). Not confined
    # by a label_filter: podman 4.3 answers an image list filtered by two labels with none.
    result = gc.collect_garbage(default_paths(), engine, dry_run=True,
                                older_than=timedelta(0))
    image_id = engine.image_inspect(image.tag)["Id"]
    assert image_id not in {c.id for c in result.candidates}  # the launch record is its root
    assert result.reachable >= 1
    # Another home on the engine keeps it too, once the launch's recording child has
    # published this home's roots (docs/gc.md); with those gone it would sweep it.
    from aishell.store import engineroots
    from tests.conftest import forget_home

    this_home = Path(os.environ["AISHELL_HOME"])
    wait_for(lambda: engine.list_volumes({engineroots.REF: f"image:{image_id}"}), timeout=30)
    monkeypatch.setenv("AISHELL_HOME", str(tmp_path / "other home"))
    other = gc.collect_garbage(default_paths(), engine, dry_run=True, older_than=timedelta(0))
    assert image_id not in {c.id for c in other.candidates}
    forget_home(this_home)  # control: no home references it any more
    fresh = gc.collect_garbage(default_paths(), engine, dry_run=True, older_than=timedelta(0))
    assert image_id in {c.id for c in fresh.candidates}


def test_a_sandbox_with_an_env_volume_runs_behind_its_proxy(lock_env, net_project):
    """The env path: the sandbox is created through the API (so the store lock can be
    released once it exists) and attached with `start --attach` as a child of aishell."""
    from tests.fixtures_lock import write_manifest
    from tests.run.test_fast_engine import env_volumes

    del lock_env  # the fixture registry on loopback; sync installs on the host side
    np = net_project
    write_manifest(np.path, 'a = { npm = "agent-a", version = "^1" }',
                   f'[network]\nmode = "allowlist"\nallow = ["{ALLOWED}"]\n')
    try:
        r = np.aishell("-v", "exec", "--", "sh", "-c",
                       "agent-a; curl -sS -o /dev/null -w '%{http_code} ' "
                       f"https://{ALLOWED}/; curl -sS -o /dev/null -w '%{{http_connect}}' "
                       f"https://{DENIED}/", timeout=600)
        assert r.stdout == "agent-a@1.0.0\n200 403", r.stderr
        assert "+ run: docker start --attach --interactive" in r.stderr.replace(
            "podman start", "docker start")
        assert f"egress: 1 denied: {DENIED}" in r.stderr
        assert np.leftovers() == []
    finally:
        for volume in env_volumes(np.path):
            subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True,
                           check=False)


def test_an_upstream_proxy_is_chained_through(net_project, engine):
    """A "corporate" proxy (a second tinyproxy on the default network, admitting npm only)
    as [network] upstream: the sandbox's request reaches npm through both proxies."""
    from aishell.lock.foundation import Foundation
    from aishell.request import ContainerRequest
    from aishell.run import egress
    from aishell.store import proxyimage

    np = net_project
    np.configure("allowlist")
    corp = egress.Egress("0" * 12, (ALLOWED,))
    upstream = engine.create_sandbox(ContainerRequest(
        image=proxyimage.proxy_image(Foundation.from_settings()).tag,
        env=egress.sidecar_env(corp), interactive=False, remove=False,
        labels={"dev.aishell.project": str(np.path)}), {})
    try:
        engine.start_container(upstream)
        wait_for(lambda: b"Accepting connections" in (
            engine.read_file(upstream, egress.LOG_PATH) or b""))
        networks = engine.container_inspect(upstream)["NetworkSettings"]["Networks"]
        address = networks[engine.default_network()]["IPAddress"]
        with (np.path / "aishell.toml").open("a", encoding="utf-8") as fh:
            fh.write(f'upstream = "{address}:{egress.PORT}"\n')
        r = np.aishell("exec", "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                       f"https://{ALLOWED}/")
        assert r.stdout == "200", r.stderr
        log = (engine.read_file(upstream, egress.LOG_PATH) or b"").decode()
        assert f"CONNECT {ALLOWED}:443" in log  # it came through the corporate proxy
    finally:
        engine.remove_container(upstream, force=True)
    assert np.leftovers() == []
