"""The network modes on the real engine.

Allowlist mode: the sandbox runs with ``--network none``; its one way out is the socket
of its own proxy in the home's egress service (one container per aishell home). That
proxy admits the allowed registry (npm), refuses another (PyPI) with a 403 it logs and
reports, admits only the ports an entry names, and nothing reaches the engine host
directly. Mode "none" has no network. A launch leaves no sandbox and no policy behind;
the service stays up for the next launch, until gc finds no sandbox using it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aishell.engine import Engine
from aishell.errors import EngineError
from aishell.request import ContainerRequest
from tests.conftest import run_aishell
from tests.fixtures_run import wait_for

pytestmark = pytest.mark.engine

ALLOWED = "registry.npmjs.org"
DENIED = "pypi.org"


def egress_summary(stderr: str) -> str:
    """What ``aishell -v exec`` said about its proxy's denials (``no request was denied``,
    ``2 denied: a, b``)."""
    found = re.findall(r"^egress: (.*) \([0-9a-f]{12}\)$", stderr, re.M)
    assert len(found) == 1, stderr
    return str(found[0])


@dataclass
class NetProject:
    path: Path
    state: Path  # the aishell home's state directory (its egress files are under it)
    engine: Engine

    def configure(self, mode: str, allow: tuple[str, ...] = (ALLOWED,), extra: str = "") -> None:
        hosts = ", ".join(f'"{h}"' for h in allow)
        (self.path / "aishell.toml").write_text(
            f'[network]\nmode = "{mode}"\nallow = [{hosts}]\n{extra}', encoding="utf-8")

    def aishell(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run_aishell(*args, cwd=self.path, timeout=timeout)

    def sandboxes(self, *, running: bool = False) -> list[dict[str, Any]]:
        """This project's containers on the engine (sandboxes, and what a test labels so)."""
        found = self.engine.list_containers({"dev.aishell.project": str(self.path)},
                                            all=not running)
        return [c for c in found if not running or c.get("State") == "running"]

    def egress_dirs(self) -> list[str]:
        """This home's per-sandbox egress entries: ``policies/<id>``, ``sockets/<id>``
        (and the ``.<id>.tmp`` of a policy being written)."""
        root = self.state / "egress"
        return sorted(f"{sub}/{e.name}" for sub in ("policies", "sockets")
                      if (root / sub).is_dir() for e in (root / sub).iterdir())

    def leftovers(self) -> list[str]:
        """This project's sandboxes and this home's policies and sockets (the egress
        service itself is meant to stay)."""
        return [str(c["Id"]) for c in self.sandboxes()] + self.egress_dirs()

    def assert_clean(self) -> None:
        """Nothing of this project's launches is left: no policy and no socket (a launch
        removes its own before it returns, `stop` a detached one's), and no sandbox (the
        engine removes an exited --rm one itself: that is waited for)."""
        assert self.egress_dirs() == []
        wait_for(lambda: self.sandboxes() == [], timeout=30)

    @property
    def service_name(self) -> str:
        from aishell.paths import default_paths
        from aishell.store.engineroots import home_id

        return f"aishell-egress-{home_id(default_paths({'AISHELL_HOME': str(self.state.parent)}))}"

    def services(self) -> list[dict[str, Any]]:
        """This home's egress service containers (running or not)."""
        from aishell.store import egressservice

        return [c for c in self.engine.list_containers(
                    {egressservice.HOME_LABEL: str(self.state)}, all=True)
                if (c.get("Labels") or {}).get("dev.aishell.kind") == egressservice.KIND]

    def service_id(self) -> str:
        """The one egress service of this home, running."""
        services = self.services()
        assert [(c["Names"], c["State"]) for c in services] == [
            ([f"/{self.service_name}"], "running")], services
        return str(services[0]["Id"])

    def cleanup(self) -> None:
        for c in [*self.sandboxes(), *self.services()]:
            with contextlib.suppress(EngineError):
                self.engine.remove_container(str(c["Id"]), force=True)


@pytest.fixture
def net_projects(tmp_path: Path, foundation_tag: str, engine: Engine
                 ) -> Iterator[Callable[[str], NetProject]]:
    """A factory of git projects in this test's aishell home; their sandboxes and the
    home's egress service are removed afterwards."""
    from aishell.paths import default_paths

    del foundation_tag  # built once per session; the CLI finds it by tag
    state = default_paths().state
    made: list[NetProject] = []

    def make(name: str) -> NetProject:
        project = tmp_path / name
        project.mkdir()
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        made.append(NetProject(project, state, engine))
        return made[-1]

    yield make
    for np in made:
        np.cleanup()


@pytest.fixture
def net_project(net_projects: Callable[[str], NetProject]) -> NetProject:
    return net_projects("egress proj ü")


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
    import socket

    return socket.getaddrinfo(host, 443, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]


def test_allowlist_admits_the_allowed_host_refuses_the_rest_and_cleans_up(net_project):
    np = net_project
    np.configure("allowlist")
    r = np.aishell("-v", "exec", "--", "sh", "-c", PROBE, "probe", _address(ALLOWED))
    assert r.stdout.splitlines() == ["allowed 200", "denied 403", "python 200",
                                     "direct failed", "raw failed"], r.stderr
    # the denial was logged by the proxy and reported at exit
    assert egress_summary(r.stderr) == f"1 denied: {DENIED}"
    np.assert_clean()  # the sandbox, its policy and its socket are gone
    service = np.service_id()  # the service stays for the next launch
    # a plan with an egress policy is not cached, so a second run attaches a new policy
    plans = np.state / "launch-plans"
    assert not plans.is_dir() or list(plans.iterdir()) == []
    again = np.aishell("exec", "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                       f"https://{ALLOWED}/")
    assert again.stdout == "200", again.stderr
    np.assert_clean()
    assert np.service_id() == service  # served by the same service


def test_an_empty_allow_list_refuses_everything(net_project):
    np = net_project
    np.configure("allowlist", allow=())
    r = np.aishell("exec", "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_connect}",
                   f"https://{ALLOWED}/")
    assert r.stdout == "403", r.stderr
    np.assert_clean()


def test_mode_none_has_no_network_at_all(net_project):
    np = net_project
    np.configure("none")
    r = np.aishell("exec", "--", "sh", "-c",
                   f"ls /sys/class/net; curl -sS -m 5 https://{ALLOWED}/ >/dev/null "
                   "&& echo reached || echo unreachable")
    assert r.stdout.split() == ["lo", "unreachable"], r.stderr
    np.assert_clean()
    assert np.services() == []  # mode none needs no egress service


# --- the engine host ----------------------------------------------------------------------

@dataclass
class Listener:
    port: int
    connections: list[str]  # the peer address of every TCP connection it accepted
    requests: list[str]  # the peer address of every HTTP request it answered


@pytest.fixture
def host_listener() -> Iterator[Listener]:
    """An HTTP server on every address of this machine (0.0.0.0), a free port, for the
    test's duration; it records who connected."""
    listener = Listener(0, [], [])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            listener.requests.append(self.client_address[0])
            body = b"the engine host\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def verify_request(self, request: object, client_address: Any) -> bool:
            listener.connections.append(client_address[0])
            return True

    server = Server(("0.0.0.0", 0), Handler)  # every address of this machine, on purpose
    listener.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield listener
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def interface_addresses() -> set[str]:
    """This machine's own IPv4 addresses (not loopback), from ``ip -o -4 addr``."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                         check=True).stdout
    found = {line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3}
    return {a for a in found if not ipaddress.ip_address(a).is_loopback}


def network_gateways(engine: Engine) -> set[str]:
    """The IPv4 gateway of every network on the engine; where its list leaves it out
    (Docker's default bridge), the first address of the subnet, where the engine puts it."""
    found: set[str] = set()
    for net in engine.list_networks({}):
        for conf in (net.get("IPAM") or {}).get("Config") or []:
            gateway = str(conf.get("Gateway") or "").split("/")[0]
            if not gateway and conf.get("Subnet"):
                gateway = str(next(ipaddress.ip_network(conf["Subnet"], strict=False).hosts()))
            if gateway and ipaddress.ip_address(gateway).version == 4:
                found.add(gateway)
    return found


def default_gateway(engine: Engine, container: str) -> str:
    """The gateway of the engine's default network, as a container on it sees it."""
    networks = engine.container_inspect(container)["NetworkSettings"]["Networks"]
    return str(networks[engine.default_network()]["Gateway"])


# Run inside the sandbox: dial each address at the port with a raw socket, with curl
# ignoring the proxy variables, and with curl through the proxy (when they are set).
HOST_PROBE = r"""
import errno, json, socket, subprocess, sys
port, out = int(sys.argv[1]), {}
for addr in sys.argv[2:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((addr, port))
        raw = "connected"
    except OSError as exc:
        raw = errno.errorcode.get(exc.errno or 0, "timeout")
    finally:
        s.close()
    url = f"http://{addr}:{port}/"
    curl = ["curl", "-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}"]
    direct = subprocess.run([*curl, "--noproxy", "*", url], capture_output=True, text=True)
    proxied = subprocess.run([*curl, url], capture_output=True, text=True)
    out[addr] = [raw, direct.stdout, proxied.stdout]
print(json.dumps(out))
"""


def test_no_address_of_the_engine_host_is_reachable_from_an_allowlist_sandbox(
        net_project, engine, host_listener):
    np = net_project
    np.configure("allowlist", allow=())
    warm = np.aishell("exec", "--", "true")  # the egress service (Podman: its bridge) is up
    assert warm.returncode == 0, warm.stderr
    gateway = default_gateway(engine, np.service_id())
    gateways = network_gateways(engine) | {gateway}
    local = interface_addresses()
    # The engine is local: each network's gateway is an address of this machine (never
    # dial one that is not).
    assert gateways <= local, (gateways, local)
    targets = sorted(gateways | local)
    r = np.aishell("-v", "exec", "--", "python3", "-c", HOST_PROBE, str(host_listener.port),
                   *targets)
    assert r.returncode == 0, r.stderr
    # no route at all (--network none); the proxy refuses the address (403)
    assert json.loads(r.stdout) == {a: ["ENETUNREACH", "000", "403"] for a in targets}, r.stderr
    assert host_listener.connections == []
    assert egress_summary(r.stderr).startswith(f"{len(targets)} denied: ")
    np.assert_clean()

    # control: the same probe in open mode reaches the listener at the bridge's gateway
    np.configure("open")
    opened = np.aishell("exec", "--", "python3", "-c", HOST_PROBE, str(host_listener.port),
                        gateway)
    assert json.loads(opened.stdout) == {gateway: ["connected", "200", "200"]}, opened.stderr
    assert len(host_listener.connections) == 3
    assert len(host_listener.requests) == 2


# --- hosts, ports and wildcards -----------------------------------------------------------

def _curl_lines(*probes: tuple[str, str, str]) -> str:
    """A shell script printing ``<label> <curl -w value>`` for each (label, -w, url); it
    exits 0 (curl's own status for a refused CONNECT is not what is tested)."""
    return "\n".join(f"curl -sS -m 20 -o /dev/null -w {shlex.quote(label + ' ' + w)}'\\n' "
                     f"{shlex.quote(url)}" for label, w, url in probes) + "\ntrue"


def _probe(np: NetProject, *probes: tuple[str, str, str]) -> tuple[dict[str, str], str]:
    """Each probe's value, and the launch's egress summary."""
    r = np.aishell("-v", "exec", "--", "sh", "-c", _curl_lines(*probes))
    assert r.returncode == 0, r.stderr
    values = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert list(values) == [p[0] for p in probes], r.stdout + r.stderr
    return values, egress_summary(r.stderr)


def test_an_entry_without_a_port_admits_80_and_443_and_an_entry_with_one_that_port(net_project):
    np = net_project
    np.configure("allowlist", allow=(ALLOWED,))
    values, summary = _probe(
        np,
        ("https", "%{http_code}", f"https://{ALLOWED}/"),
        ("http", "%{http_code}", f"http://{ALLOWED}/"),
        ("https-8443", "%{http_connect}", f"https://{ALLOWED}:8443/"),
        ("http-8123", "%{http_code}", f"http://{ALLOWED}:8123/"),
        ("denied", "%{http_connect}", f"https://{DENIED}/"),
    )
    assert values["https"] == "200"
    assert values["http"] not in ("000", "403")  # passed the proxy: npm's own answer
    # a CONNECT to a port no entry names: tinyproxy's ConnectPort check refuses it
    assert values["https-8443"] == "403"
    # plain HTTP to another port: refused by the filter (reported with its port)
    assert values["http-8123"] == "403"
    assert values["denied"] == "403"
    assert summary == f"3 denied: {DENIED}, {ALLOWED}:8123, port 8443"
    np.assert_clean()

    np.configure("allowlist", allow=(ALLOWED, f"{ALLOWED}:8443"))
    values, summary = _probe(
        np,
        ("https-8443", "%{http_connect}", f"https://{ALLOWED}:8443/"),
        ("http-8123", "%{http_code}", f"http://{ALLOWED}:8123/"),
    )
    # the proxy let the CONNECT through (whatever npm answers on 8443), and logged no denial
    assert values["https-8443"] not in ("000", "403"), values
    assert values["http-8123"] == "403"
    assert summary == f"1 denied: {ALLOWED}:8123"
    np.assert_clean()


def test_a_wildcard_admits_the_names_below_it_only(net_project):
    np = net_project
    np.configure("allowlist", allow=("*.npmjs.org",))
    values, summary = _probe(
        np,
        ("below", "%{http_code}", f"https://{ALLOWED}/"),
        ("itself", "%{http_connect}", "https://npmjs.org/"),
        ("other", "%{http_connect}", f"https://{DENIED}/"),
    )
    assert values == {"below": "200", "itself": "403", "other": "403"}
    assert summary == f"2 denied: {DENIED}, npmjs.org"
    np.assert_clean()


# --- detached sandboxes, the shared service -----------------------------------------------

def _inspect_sandbox(np: NetProject, name: str) -> dict[str, Any]:
    (box,) = [c for c in np.sandboxes() if (c.get("Labels") or {}).get("dev.aishell.name") == name]
    return np.engine.container_inspect(str(box["Id"]))


def _egress_mounts(info: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The sandbox's mounts of anything under the home's egress directory."""
    return [(m["Source"], m["Destination"], bool(m.get("RW"))) for m in info["Mounts"]
            if "/egress/" in str(m.get("Source"))]


def test_a_detached_sandbox_reports_denials_in_ps_and_stop_removes_its_policy(net_project):
    np = net_project
    np.configure("allowlist")
    started = np.aishell("run", "--detach", "--name", "box")
    assert started.returncode == 0, started.stderr
    try:
        info = _inspect_sandbox(np, "box")
        labels = info["Config"]["Labels"]
        egress_id = labels["dev.aishell.egress"]
        assert re.fullmatch(r"[0-9a-f]{12}", egress_id)
        assert (labels["dev.aishell.kind"], labels["dev.aishell.network"],
                labels["dev.aishell.project"]) == ("sandbox", "allowlist", str(np.path))
        assert info["HostConfig"]["NetworkMode"] == "none"
        # its own socket's directory, read-only; no policy, no log, no other socket
        assert _egress_mounts(info) == [
            (str(np.state / "egress" / "sockets" / egress_id), "/run/aishell-egress", False)]
        assert np.egress_dirs() == [f"policies/{egress_id}", f"sockets/{egress_id}"]
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
    np.assert_clean()
    np.service_id()  # still up


def test_two_sandboxes_share_one_service_each_with_its_own_policy(net_projects):
    npm, pypi = net_projects("npm proj"), net_projects("pypi proj")
    npm.configure("allowlist", allow=(ALLOWED,))
    pypi.configure("allowlist", allow=(DENIED,))
    try:
        for np, name in ((npm, "a"), (pypi, "b")):
            started = np.aishell("run", "--detach", "--name", name)
            assert started.returncode == 0, started.stderr
        npm.service_id()  # exactly one service for the home, running
        ids = {}
        for np, name in ((npm, "a"), (pypi, "b")):
            info = _inspect_sandbox(np, name)
            ids[name] = info["Config"]["Labels"]["dev.aishell.egress"]
            assert _egress_mounts(info) == [(str(np.state / "egress" / "sockets" / ids[name]),
                                             "/run/aishell-egress", False)]
        assert ids["a"] != ids["b"]
        assert npm.egress_dirs() == sorted(f"{sub}/{i}" for sub in ("policies", "sockets")
                                           for i in ids.values())
        code = "-w '%{http_code}\\n' "
        connect = "-w '%{http_connect}\\n' "
        a = npm.aishell("attach", "a", "--", "sh", "-c",
                        f"curl -sS -o /dev/null {code} https://{ALLOWED}/; "
                        f"curl -sS -o /dev/null {connect} https://{DENIED}/")
        assert a.stdout.split() == ["200", "403"], a.stderr
        b = pypi.aishell("attach", "b", "--", "sh", "-c",
                         f"curl -sS -o /dev/null {code} https://{DENIED}/; "
                         f"curl -sS -o /dev/null {connect} https://{ALLOWED}/; "
                         f"curl -sS -o /dev/null {connect} https://{ALLOWED}/")
        assert b.stdout.split() == ["200", "403", "403"], b.stderr
        for np, denied, hosts in ((npm, 1, [DENIED]), (pypi, 2, [ALLOWED])):
            ps = np.aishell("ps", "--json")
            (box,) = json.loads(ps.stdout)["sandboxes"]
            assert (box["denied"], box["denied_hosts"]) == (denied, hosts), ps.stdout
        npm.service_id()
    finally:
        stops = [npm.aishell("stop", "a"), pypi.aishell("stop", "b")]
    assert all(s.returncode == 0 for s in stops), [s.stderr for s in stops]
    npm.assert_clean()
    pypi.assert_clean()
    npm.service_id()  # the service stays


def test_a_terminated_launch_removes_its_policy(net_project):
    np = net_project
    np.configure("allowlist")
    proc = subprocess.Popen([sys.executable, "-m", "aishell", "exec", "--", "sleep", "60"],
                            cwd=np.path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        # the sandbox runs (so the engine CLI passes signals on to it), served by its policy
        (box,) = wait_for(lambda: np.sandboxes(running=True), timeout=120)
        egress_id = box["Labels"]["dev.aishell.egress"]
        assert np.leftovers() == [str(box["Id"]), f"policies/{egress_id}",
                                  f"sockets/{egress_id}"]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0, stderr
    np.assert_clean()
    np.service_id()  # the service is not the launch's to stop


def test_a_network_override_in_docker_args_is_refused(net_project):
    np = net_project
    np.configure("allowlist", extra='[run]\ndocker_args = ["--network", "bridge"]\n'
                 '[security]\nstrict = true\n')
    r = np.aishell("exec", "--", "true")
    assert r.returncode == 1
    assert "--network bridge gives the sandbox a network although" in r.stderr
    np.assert_clean()
    # without strict mode it is a warning, and the sandbox still does not run: Docker and
    # Podman both refuse a second network next to --network none when creating it
    # (had one taken it, aishell's check of the created sandbox would remove it)
    np.configure("allowlist", extra='[run]\ndocker_args = ["--network", "bridge"]\n')
    r = np.aishell("exec", "--", "true")
    assert r.returncode == 1
    assert "warning: " in r.stderr and "--network bridge gives the sandbox a network" in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert errors[0].startswith("error: the engine could not create the sandbox: "), r.stderr
    assert "none" in errors[0], r.stderr  # Docker: "endpoints: none, bridge"; Podman: "mode none"
    np.assert_clean()


# --- the service's lifecycle --------------------------------------------------------------

def test_a_killed_service_is_replaced_by_the_next_launch(net_project, engine):
    np = net_project
    np.configure("allowlist")
    first = np.aishell("exec", "--", "true")
    assert first.returncode == 0, first.stderr
    old = np.service_id()
    subprocess.run([engine.cli, "rm", "-f", np.service_name], capture_output=True, check=True)
    assert np.services() == []
    again = np.aishell("exec", "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                       f"https://{ALLOWED}/")
    assert again.stdout == "200", again.stderr
    assert np.service_id() != old
    np.assert_clean()


def test_a_foreign_container_with_the_services_name_is_left_alone(net_project, engine,
                                                                 foundation_tag):
    np = net_project
    np.configure("allowlist")
    foreign = engine.create_sandbox(ContainerRequest(
        image=foundation_tag, name=np.service_name, command=("sleep", "600"),
        entrypoint=(), interactive=False, remove=False, labels={"someone.else": "1"}), {})
    try:
        engine.start_container(foreign)
        r = np.aishell("exec", "--", "true")
        assert r.returncode == 1
        assert r.stderr.splitlines()[0] == (f"error: a container named {np.service_name} exists "
                                            "that is not this home's egress service; aishell "
                                            "leaves it alone")
        info = engine.container_inspect(np.service_name)
        assert info is not None and info["Id"] == foreign and info["State"]["Running"]
    finally:
        engine.remove_container(foreign, force=True)


def _egress_dir_is_a_file(state: Path) -> Callable[[], None]:
    state.mkdir(parents=True, exist_ok=True)
    (state / "egress").write_text("", encoding="utf-8")
    return (state / "egress").unlink


def _service_marker_is_a_directory(state: Path) -> Callable[[], None]:
    (state / "egress" / "service").mkdir(parents=True)
    return (state / "egress" / "service").rmdir


@pytest.mark.parametrize(("breakage", "message"), [
    (_egress_dir_is_a_file, "error: {state}/egress/policies: Not a directory"),
    # the service starts, cannot write its marker and exits
    (_service_marker_is_a_directory,
     "error: the egress service {service} stopped before it could start"),
], ids=["egress-dir-is-a-file", "service-cannot-start"])
def test_a_launch_refuses_in_one_line_when_the_service_cannot_start(net_project, breakage,
                                                                     message):
    np = net_project
    np.configure("allowlist")
    repair = breakage(np.state)
    r = np.aishell("exec", "--", "true")
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors == [message.format(state=np.state, service=np.service_name)], r.stderr
    assert "Traceback" not in r.stderr
    assert np.sandboxes() == []  # no sandbox was created
    # nor a service left running (one that started and exited may stay, for its logs)
    assert wait_for(lambda: all(c["State"] != "running" for c in np.services()), timeout=30)
    assert np.egress_dirs() == []
    repair()
    fixed = np.aishell("exec", "--", "true")
    assert fixed.returncode == 0, fixed.stderr
    np.service_id()


def test_gc_keeps_the_service_while_a_sandbox_uses_it_and_removes_it_after(net_project):
    np = net_project
    np.configure("allowlist")
    started = np.aishell("run", "--detach", "--name", "box")
    assert started.returncode == 0, started.stderr
    # a grace period no store item is older than: this gc removes only the idle service
    gc_args = ("gc", "--older-than", "520w")
    try:
        service = np.service_id()
        kept = np.aishell(*gc_args)
        assert kept.returncode == 0, kept.stderr
        assert "egress service" not in kept.stdout
        assert np.service_id() == service
    finally:
        stopped = np.aishell("stop", "box")
    assert stopped.returncode == 0, stopped.stderr
    removed = np.aishell(*gc_args)
    assert removed.returncode == 0, removed.stderr
    assert ("removed the egress service of allowlist mode: no sandbox uses it "
            "(1 container(s))") in removed.stdout.splitlines(), removed.stdout
    assert np.services() == []
    np.assert_clean()


def test_gc_keeps_the_proxy_image_a_project_launched_with(net_project, engine, tmp_path,
                                                          monkeypatch):
    from datetime import timedelta

    from aishell.lock.foundation import Foundation
    from aishell.paths import default_paths
    from aishell.store import gc, proxyimage

    np = net_project
    np.configure("allowlist")
    assert np.aishell("exec", "--", "true").returncode == 0
    np.cleanup()  # the egress service: a container of the image would keep it as well
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
    # (unless a container of the engine runs it: the egress service of another home on a
    # shared engine, say, which is a root of its own)
    users = [c["Names"] for c in engine.list_containers({}, all=True)
             if c.get("ImageID") == image_id]
    assert (image_id in {c.id for c in fresh.candidates}) == (not users), users


def test_a_sandbox_with_an_env_volume_runs_behind_its_proxy(lock_env, net_project):
    """The env path: the sandbox is created through the API (so the store lock can be
    released once it exists), then started and attached by aishell, which removes its
    policy when it ends."""
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
        # no TTY: attached over the API, not by an engine CLI child
        assert " start --attach" not in r.stderr
        assert egress_summary(r.stderr) == f"1 denied: {DENIED}"
        np.assert_clean()
    finally:
        for volume in env_volumes(np.path):
            subprocess.run([np.engine.cli, "volume", "rm", "-f", volume], capture_output=True,
                           check=False)


def test_an_upstream_proxy_is_chained_through(net_project, engine):
    """A "corporate" proxy (a standalone tinyproxy from the egress image on the default
    network, admitting npm only) as [network] upstream: the sandbox's request reaches npm
    through both proxies, and the corporate one refuses what its list does not name."""
    from aishell.lock.foundation import Foundation
    from aishell.request import ContainerRequest
    from aishell.run import egress
    from aishell.store import proxyimage

    np = net_project
    np.configure("allowlist", allow=(ALLOWED, DENIED))  # the corporate proxy refuses PyPI
    port = 8888
    conf = (egress.tinyproxy_conf((ALLOWED,), None)
            + f'Port {port}\nListen 0.0.0.0\nLogFile "/tmp/l.log"\nFilter "/tmp/f"\n')
    script = (f"printf '%s' {shlex.quote(conf)} > /tmp/c.conf && "
              f"printf '%s\\n' {shlex.quote(egress.filter_text((ALLOWED,)))} > /tmp/f && "
              "exec tinyproxy -d -c /tmp/c.conf")
    proxy_image = proxyimage.proxy_image(Foundation.from_settings())
    if engine.image_inspect(proxy_image.tag) is None:  # a launch builds it
        assert np.aishell("exec", "--", "true").returncode == 0
    upstream = engine.create_sandbox(ContainerRequest(
        image=proxy_image.tag, entrypoint=("sh", "-c", script), interactive=False,
        remove=False, network=engine.default_network(),
        labels={"dev.aishell.project": str(np.path)}), {})
    try:
        engine.start_container(upstream)
        wait_for(lambda: b"Accepting connections" in (
            engine.read_file(upstream, "/tmp/l.log") or b""))
        networks = engine.container_inspect(upstream)["NetworkSettings"]["Networks"]
        address = networks[engine.default_network()]["IPAddress"]
        with (np.path / "aishell.toml").open("a", encoding="utf-8") as fh:
            fh.write(f'upstream = "{address}:{port}"\n')
        r = np.aishell("exec", "--", "sh", "-c",
                       "curl -sS -o /dev/null -w '%{http_code}\\n' "
                       f"https://{ALLOWED}/; curl -sS -o /dev/null -w '%{{http_connect}}\\n' "
                       f"https://{DENIED}/")
        assert r.stdout.split() == ["200", "403"], r.stderr
        log = (engine.read_file(upstream, "/tmp/l.log") or b"").decode()
        assert f"CONNECT {ALLOWED}:443" in log  # it came through the corporate proxy
        assert egress.denied(log) == [DENIED]  # and the corporate proxy refused PyPI
    finally:
        engine.remove_container(upstream, force=True)
    np.assert_clean()
