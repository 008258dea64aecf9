"""Credentials never enter the sandbox, end to end: the real, locked Claude Code (and
Codex) run against stub APIs on the engine host while their key is held by the broker in
the home's egress service (live tier: the env comes from npm).

The key is a random test value (never a real one; nothing leaves the machine). The host
holds it in ``ANTHROPIC_API_KEY`` and points ``ANTHROPIC_BASE_URL`` at the stub, as a user
with a gateway does: the sandbox gets the placeholder and ``http://127.0.0.1:3130``, the
broker forwards to the stub and sets ``x-api-key`` itself. What is checked:

* over HTTPS, with a test CA in the ``[settings] ca_bundle`` the service is given, the
  agent loop completes and every request the stub got carried the real key; without that
  CA the broker refuses the upstream (TLS is verified) and the stub gets no request;
* a key (or ``Authorization``) sent from inside the sandbox is replaced;
* no 16-byte piece of the key is anywhere a process in the sandbox can read (its
  environment, every process's environ and cmdline, every file of its root filesystem and
  tmpfs mounts, its config mounts on the host), nor in ``inspect`` of the sandbox and the
  service, the service's log or any file of the aishell home;
* it fails closed: a key command that fails, a service that cannot start: one error line,
  no sandbox; ``[credentials] mode = "env"`` passes the key in as before;
* the real Codex gets ``Authorization: Bearer <key>`` set on its requests the same way.
"""

from __future__ import annotations

import binascii
import json
import os
import re
import secrets
import shutil
import ssl
import string
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aishell.engine import Engine
from aishell.paths import default_paths
from aishell.run import credentials
from aishell.store.engineroots import home_id
from tests.conftest import forget_home, run_aishell, stop_egress_service
from tests.lock.test_locking_live import MANIFEST
from tests.run.test_agent_claude_live import (
    CLAUDE_PROMPT,
    CONTENT,
    FINAL,
    QUIET,
    assert_tool_loop,
    assert_written,
)
from tests.stubs.anthropic import AnthropicStub
from tests.stubs.base import Recorded, Script, StubServer, engine_host_address
from tests.stubs.openai import OpenAIStub, tool_output

pytestmark = [pytest.mark.live, pytest.mark.engine]

REPO = Path(__file__).resolve().parents[2]
HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_ALNUM = string.ascii_letters + string.digits
# A random test key, well-formed; its first random character is a digit, so no piece of
# it can be a piece of the placeholder (sk-ant-api03-aishellbrokerplaceholder-…).
REAL = "sk-ant-api03-" + secrets.choice(string.digits) + "".join(
    secrets.choice(_ALNUM) for _ in range(39))
PLACEHOLDER = credentials.PROVIDERS["anthropic"].keys[0].placeholder
# What the leak scan looks for: the key and each 16-character piece of it (the last one
# overlapping its neighbour), so a truncated or split copy is found too.
PIECES = sorted({REAL, *(REAL[i:i + 16] for i in range(0, len(REAL) - 15, 16)), REAL[-16:]})
NAME = "claude"  # the detached sandbox's name
FAST_FAIL = ("-e", "CLAUDE_CODE_MAX_RETRIES=0")  # a refused upstream ends the run at once


# -- fixtures -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def broker_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project locking the real harnesses (the live lock), its env synced once.

    The env volume is content-addressed and shared with the other live modules: it stays.
    """
    root = tmp_path_factory.mktemp("broker live")
    project = root / "broker project"
    project.mkdir()
    (project / "aishell.toml").write_text(MANIFEST, encoding="utf-8")
    shutil.copy(REPO / "aishell.lock.example", project / "aishell.lock")
    home = root / "aishell home"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("npm_config_registry", raising=False)
        synced = run_aishell("sync", "--locked", cwd=project, env={"AISHELL_HOME": str(home)},
                             timeout=1800)
    assert synced.returncode == 0, synced.stderr
    yield project
    forget_home(home)


def project_copy(synced: Path, where: Path, manifest_extra: str = "") -> Path:
    """The synced project's two files in a fresh git repository (same lock, same env)."""
    project = where / "broker project"
    project.mkdir(parents=True)
    (project / "aishell.toml").write_text(MANIFEST + manifest_extra, encoding="utf-8")
    shutil.copy(synced / "aishell.lock", project / "aishell.lock")
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    return project


@dataclass(frozen=True)
class Pki:
    """A test CA and two server certificates it signed for the engine host's address:
    ``server`` names it in its subject's CN and as an IP SAN, ``ip-only`` only as an IP
    SAN (its CN is a host name), as most certificates for an address do today."""

    where: Path
    bundle: Path  # the host's bundle plus the test CA

    def server_context(self, name: str = "server") -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.where / f"{name}.pem", self.where / f"{name}.key")
        return context


@pytest.fixture(scope="module")
def pki(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    where = tmp_path_factory.mktemp("broker pki")
    address = engine_host_address(engine)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=where, check=True, capture_output=True)

    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *curve, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=aishell broker test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    (where / "server.ext").write_text(
        f"subjectAltName=IP:{address}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n", encoding="utf-8")
    for name, subject in (("server", f"/CN={address}"), ("ip-only", "/CN=gateway.test")):
        openssl("req", *curve, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", subject)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "server.ext",
                "-out", f"{name}.pem")
    bundle = where / "bundle with the test CA.crt"
    bundle.write_bytes(HOST_BUNDLE.read_bytes() + b"\n" + (where / "ca.pem").read_bytes())
    return Pki(where, bundle)


def global_config(text: str, aishell_home: Path | None = None) -> Path:
    """Write the global config of the aishell home (this test's, by default)."""
    env = {"AISHELL_HOME": str(aishell_home)} if aishell_home else dict(os.environ)
    path = default_paths(env).global_config
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def user_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return home


def onboarded(home: Path) -> Path:
    """``home`` with a ``~/.claude.json`` that says onboarding is done: else an interactive
    (detached) claude checks api.anthropic.com first, finds no name for it here and
    exits; this way it waits at its folder-trust question."""
    (home / ".claude.json").write_text('{"hasCompletedOnboarding": true}\n', encoding="utf-8")
    return home


def anthropic_stub(engine: Engine, target: Path, tls: ssl.SSLContext | None = None
                   ) -> StubServer:
    return StubServer(AnthropicStub, Script(str(target), CONTENT, FINAL),
                      engine_host_address(engine), tls)


def claude(project: Path, home: Path, base_url: str, *options: str,
           ) -> subprocess.CompletedProcess[str]:
    """``aishell claude -p …`` headless, the real key and the stub's URL on the host."""
    env = {"HOME": str(home), "ANTHROPIC_API_KEY": REAL, "ANTHROPIC_BASE_URL": base_url}
    return run_aishell(*QUIET, *options, "claude", *CLAUDE_PROMPT, cwd=project, env=env,
                       input="", timeout=600)


def assert_every_request_carried_only_the_real_key(requests: list[Recorded], header: str,
                                                   value: str) -> None:
    """Each request had ``header: value`` and no other credential header, and the
    placeholder appears in none of its headers or its body."""
    assert requests
    for rec in requests:
        assert rec.secrets == {header: value}, (rec.method, rec.path, rec.secrets)
        seen = json.dumps(rec.headers) + rec.body.decode("utf-8", "replace")
        assert "aishellbrokerplaceholder" not in seen.lower(), (rec.method, rec.path)


def sandboxes(engine: Engine, project: Path) -> list[dict[str, Any]]:
    return engine.list_containers({"dev.aishell.project": str(project)}, all=True)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# -- 1. TLS to the upstream, checked against the configured bundle ----------------------

def test_claude_loop_over_https_carries_the_real_key_on_every_request(
        broker_project, engine, pki, tmp_path):
    global_config(f'[settings]\nca_bundle = "{pki.bundle}"\n')
    project = project_copy(broker_project, tmp_path)
    target = project / "written by claude.txt"
    with anthropic_stub(engine, target, pki.server_context()) as stub:
        assert stub.base_url.startswith("https://")
        r = claude(project, user_home(tmp_path), stub.base_url)
    assert r.returncode == 0, r.stdout + r.stderr
    assert FINAL in r.stdout
    assert_written(target, os.getuid())
    assert_tool_loop(stub, "Write", "file_path", target)  # >= 2 model requests
    assert_every_request_carried_only_the_real_key(stub.requests, "x-api-key", REAL)
    assert stub.handshakes >= 1 and stub.handshake_failures == 0  # TLS, and it verified
    assert REAL not in r.stdout + r.stderr


def test_without_the_test_ca_the_broker_refuses_the_upstream(
        broker_project, engine, pki, tmp_path):
    """The host's bundle alone does not trust the stub's certificate: the broker's TLS
    check fails, claude gets the broker's error, the stub never sees a request."""
    global_config(f'[settings]\nca_bundle = "{HOST_BUNDLE}"\n')
    project = project_copy(broker_project, tmp_path)
    target = project / "written by claude.txt"
    with anthropic_stub(engine, target, pki.server_context()) as stub:
        r = claude(project, user_home(tmp_path), stub.base_url, *FAST_FAIL)
        handshakes = stub.handshakes + stub.handshake_failures
    assert r.returncode != 0, r.stdout + r.stderr
    assert "API Error: 502" in r.stdout + r.stderr, r.stdout + r.stderr  # nginx: Bad Gateway
    # The broker reached the stub and shook hands; nginx checks the certificate chain
    # after the handshake ("upstream SSL certificate verify error" in its log) and closed
    # the connection: not one request was sent.
    assert handshakes >= 1
    assert stub.requests == []
    assert not target.exists()
    assert REAL not in r.stdout + r.stderr


def test_an_https_gateway_at_an_ip_address_with_an_ip_san_only_is_refused(
        broker_project, engine, pki, tmp_path):
    """A documented limit (docs/security.md, Credentials): the broker's nginx 1.26 checks
    an upstream certificate against the name it dials with X509_check_host only, so an IP
    address matches a DNS SAN or the CN, never an IP SAN. The request fails closed."""
    global_config(f'[settings]\nca_bundle = "{pki.bundle}"\n')
    project = project_copy(broker_project, tmp_path)
    target = project / "written by claude.txt"
    with anthropic_stub(engine, target, pki.server_context("ip-only")) as stub:
        r = claude(project, user_home(tmp_path), stub.base_url, *FAST_FAIL)
        assert r.returncode != 0, r.stdout + r.stderr
        assert not stub.requests  # nothing reached the gateway
    assert not target.exists()
    assert REAL not in r.stdout + r.stderr


# -- 2, 3. A detached sandbox: another key from inside, the leak scan -------------------

@dataclass
class Box:
    """A detached claude sandbox in an aishell home of its own, brokered to ``stub``."""

    project: Path
    home: Path
    aishell_home: Path
    stub: StubServer
    engine: Engine

    @property
    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "AISHELL_HOME": str(self.aishell_home)}

    def aishell(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return run_aishell(*args, cwd=self.project, timeout=timeout, env=self.env)

    def inspect(self) -> dict[str, Any]:
        found = [c for c in sandboxes(self.engine, self.project)
                 if (c.get("Labels") or {}).get("dev.aishell.name") == NAME]
        assert len(found) == 1, found
        info = self.engine.container_inspect(str(found[0]["Id"]))
        assert info is not None
        return info

    @property
    def service(self) -> str:
        return f"aishell-egress-{home_id(default_paths({'AISHELL_HOME': str(self.aishell_home)}))}"


@pytest.fixture(scope="module")
def box(broker_project: Path, engine: Engine, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Box]:
    root = tmp_path_factory.mktemp("broker box")
    project = project_copy(broker_project, root)
    home = onboarded(user_home(root))
    aishell_home = root / "aishell home"
    with anthropic_stub(engine, project / "unused.txt") as stub:
        started = run_aishell(*QUIET, "run", "--detach", "claude", cwd=project, timeout=300,
                              env={"HOME": str(home), "AISHELL_HOME": str(aishell_home),
                                   "ANTHROPIC_API_KEY": REAL,
                                   "ANTHROPIC_BASE_URL": stub.base_url})
        assert started.returncode == 0, started.stdout + started.stderr
        made = Box(project, home, aishell_home, stub, engine)
        try:
            yield made
        finally:
            if any(c.get("State") == "running" for c in sandboxes(engine, project)):
                made.aishell("stop", NAME)
            for c in sandboxes(engine, project):
                engine.remove_container(str(c["Id"]), force=True)
            stop_egress_service(aishell_home)
            forget_home(aishell_home)


def test_a_key_sent_from_inside_the_sandbox_is_replaced_by_the_real_one(box):
    probe = "inside-probe-" + secrets.token_hex(4)
    r = box.aishell("attach", NAME, "--", "curl", "-sS", "--fail-with-body",
                    "-H", "x-api-key: attacker-key", "-H", "X-Api-Key: attacker-key-2",
                    "-H", "authorization: Bearer attacker",
                    "-H", "x-goog-api-key: attacker-goog",
                    "-H", "content-type: application/json", "-H", f"x-probe: {probe}",
                    "http://127.0.0.1:3130/v1/messages", "-d", '{"messages": []}')
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["type"] == "message"  # the stub's answer, through the broker
    got = [rec for rec in box.stub.requests if rec.headers.get("x-probe") == probe]
    assert len(got) == 1, [(rec.method, rec.path) for rec in box.stub.requests]
    assert got[0].secrets == {"x-api-key": REAL}
    assert "attacker" not in json.dumps(got[0].headers)


def test_ps_json_says_which_keys_the_brokers_carry(box):
    r = box.aishell("ps", "--json")
    assert r.returncode == 0, r.stderr
    (found,) = [b for b in json.loads(r.stdout)["sandboxes"] if b["name"] == NAME]
    assert found["credentials"] == ["anthropic"]
    assert found["status"] == "running"


# Run in the sandbox (python3, as its user): the pieces come hex-encoded in argv, so the
# scanner's own command line holds none of them; argv[1] "files" scans the file systems
# too. Prints one JSON line: where a piece was found, and what was scanned.
SCAN = r"""
import binascii, json, os, subprocess, sys
pieces = [binascii.unhexlify(h) for h in sys.argv[2:]]
hits, counts = [], {}
def look(where, data):
    if any(p in data for p in pieces):
        hits.append(where)
def count(what, n=1):
    counts[what] = counts.get(what, 0) + n
look("env", subprocess.run(["env"], capture_output=True, check=True).stdout)
look("os.environ", b"\0".join(k.encode() + b"=" + v.encode() for k, v in os.environ.items()))
me = str(os.getpid())
for pid in os.listdir("/proc"):
    if not pid.isdigit() or pid == me:
        continue
    count("processes")
    try:
        with open(f"/proc/{pid}/comm") as fh:
            counts.setdefault("commands", []).append(fh.read().strip())
    except OSError:
        pass
    for part in ("environ", "cmdline"):
        try:
            with open(f"/proc/{pid}/{part}", "rb") as fh:
                look(f"/proc/{pid}/{part}", fh.read())
            count(f"proc {part} read")
        except OSError:
            count(f"proc {part} unreadable")
# The root filesystem (the writable layer over the image) and every other file system of
# the sandbox that lives in memory (tmpfs: /dev, /dev/shm, …); not /proc, /sys, the read-only
# env volume (/tools) or the config mounts (scanned on the host).
roots = ["/"]
with open("/proc/self/mountinfo") as fh:
    for line in fh:
        fields = line.split()
        point, fstype = fields[4], fields[fields.index("-") + 1]
        if fstype in ("tmpfs", "shm") and not point.startswith(("/sys", "/proc")):
            roots.append(point)
counts["file systems"] = roots
for root in roots if sys.argv[1] == "files" else ():
    listed = subprocess.run(["find", root, "-xdev", "-type", "f", "-print0"],
                            capture_output=True, check=False).stdout
    for path in filter(None, listed.split(b"\0")):
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            count("files unreadable")
            continue
        count("files")
        count("bytes", len(data))
        look(os.fsdecode(path), data)
print(json.dumps({"hits": hits, "counts": counts}))
"""


def scan_inside(project: Path, env: dict[str, str], *, files: bool) -> dict[str, Any]:
    """Run :data:`SCAN` in sandbox ``claude`` of ``project`` (``aishell attach``)."""
    pieces = [binascii.hexlify(p.encode()).decode() for p in PIECES]
    r = run_aishell("attach", NAME, "--", "python3", "-c", SCAN,
                    "files" if files else "processes", *pieces,
                    cwd=project, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    found: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return found


def _leaks(data: bytes) -> bool:
    return any(p.encode() in data for p in PIECES)


def _scan_tree(root: Path) -> tuple[int, int, list[str]]:
    """(files read, bytes read, files holding a piece) under ``root``: regular files
    only (sockets and fifos are no files), symlinks not followed."""
    files = size = 0
    hits: list[str] = []
    paths = [root] if not root.is_dir() or root.is_symlink() else [
        Path(d) / f for d, _, names in os.walk(root) for f in names]
    for path in paths:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        files += 1
        size += len(data)
        if _leaks(data):
            hits.append(str(path))
    return files, size, hits


def _cli(*args: str) -> bytes:
    """The engine CLI (``docker``; it follows DOCKER_HOST, so Podman's socket too)."""
    r = subprocess.run(["docker", *args], capture_output=True, check=True, timeout=120)
    return r.stdout + r.stderr


def test_no_piece_of_the_key_is_anywhere_the_sandbox_or_the_host_keeps_it(box, capsys):
    """Only the service's memory-backed directory holds the key: nothing the sandbox can
    read, nothing the engine shows of either container, nothing aishell wrote."""
    inside = scan_inside(box.project, box.env, files=True)
    counts = inside["counts"]
    assert inside["hits"] == [], inside
    assert counts["processes"] >= 3  # the entrypoint's socat, tmux, claude at least
    assert counts.get("proc environ unreadable", 0) == 0, counts  # it saw every process
    assert counts["files"] > 1000, counts
    # The sandbox holds the placeholder in the key's variable and the forwarder's URL.
    printed = box.aishell("attach", NAME, "--", "printenv", "ANTHROPIC_API_KEY",
                          "ANTHROPIC_BASE_URL")
    assert printed.stdout.split() == [PLACEHOLDER, "http://127.0.0.1:3130"], printed.stderr

    # On the host: what the engine shows of the sandbox and the service, the service's
    # log, every file of the aishell home and of the sandbox's bind mounts.
    info = box.inspect()
    shown = {"inspect sandbox": _cli("inspect", str(info["Id"])),
             "logs sandbox": _cli("logs", str(info["Id"])),
             "inspect service": _cli("inspect", box.service),
             "logs service": _cli("logs", box.service)}
    assert [what for what, text in shown.items() if _leaks(text)] == []
    home_files, home_bytes, home_hits = _scan_tree(box.aishell_home)
    assert home_hits == []
    assert home_files > 0
    binds = [m for m in info.get("Mounts") or [] if m.get("Type") == "bind"]
    volumes = [m for m in info.get("Mounts") or [] if m.get("Type") == "volume"]
    config = {m["Destination"] for m in binds} & {f"{box.home}/.claude", f"{box.home}/.claude.json"}
    assert config == {f"{box.home}/.claude", f"{box.home}/.claude.json"}, binds
    bind_files = bind_bytes = 0
    for mount in binds:
        files, size, hits = _scan_tree(Path(mount["Source"]))
        assert hits == [], mount
        bind_files, bind_bytes = bind_files + files, bind_bytes + size
    # Only the env volume is left unscanned: read-only, content-addressed, made by sync.
    assert [(m["Destination"], m.get("RW")) for m in volumes] == [("/tools", False)], volumes
    with capsys.disabled():
        print(f"\nleak scan: inside {counts['processes']} processes "
              f"{sorted(counts.get('commands', []))} (environ read "
              f"{counts.get('proc environ read', 0)}, cmdline read "
              f"{counts.get('proc cmdline read', 0)}), {counts['files']} files "
              f"({counts['bytes'] / 1e6:.0f} MB, {counts.get('files unreadable', 0)} unreadable) "
              f"on {counts['file systems']}; host: {home_files} files ({home_bytes} B) of the "
              f"aishell home, {bind_files} files ({bind_bytes / 1e6:.1f} MB) of "
              f"{len(binds)} bind mounts {sorted(m['Destination'] for m in binds)}, "
              f"{', '.join(shown)}; {len(PIECES)} needles")


# Run in the egress service: which of its files hold the key (hex in argv), and the file
# system type of the keys' directory.
HELD = r"""
import binascii, json, os, sys
key = binascii.unhexlify(sys.argv[1])
held = []
for d, _, names in os.walk("/"):
    if d.startswith(("/proc", "/sys")):
        continue
    for n in names:
        path = os.path.join(d, n)
        try:
            if os.path.isfile(path) and not os.path.islink(path) and key in open(path, "rb").read():
                held.append(path)
        except OSError:
            pass
kinds = {line.split()[4]: line.split()[line.split().index("-") + 1]
         for line in open("/proc/self/mountinfo")}
print(json.dumps({"held": held, "keys fs": kinds.get("/run/aishell-keys")}))
"""


def held_by_service(box: Box) -> dict[str, Any]:
    out = _cli("exec", box.service, "python3", "-c", HELD,
               binascii.hexlify(REAL.encode()).decode())
    found: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return found


def test_the_key_is_only_in_the_services_tmpfs_until_the_sandbox_stops(box):
    egress_id = box.inspect()["Config"]["Labels"]["dev.aishell.egress"]
    before = held_by_service(box)
    assert before == {"held": [f"/run/aishell-keys/k/{egress_id}/anthropic.conf"],
                      "keys fs": "tmpfs"}, before
    r = box.aishell("stop", NAME)
    assert r.returncode == 0, r.stderr
    assert not any(c.get("State") == "running" for c in sandboxes(box.engine, box.project))
    deadline = time.monotonic() + 10  # the service stops a policy's broker within a scan
    while (after := held_by_service(box))["held"]:
        assert time.monotonic() < deadline, after
        time.sleep(0.2)


# -- 4. Fail closed -------------------------------------------------------------------

def test_a_failing_key_command_starts_nothing(broker_project, engine, tmp_path):
    global_config('[credentials]\nanthropic = { command = "exit 3" }\n')
    project = project_copy(broker_project, tmp_path)
    r = run_aishell("claude", "-p", "hi", cwd=project, input="", timeout=300,
                    env={"HOME": str(user_home(tmp_path))})
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = error_lines(r.stderr)
    assert line == ("error: [credentials] anthropic: the key command exited 3; "
                    "the sandbox was not started"), r.stderr
    assert "hint: run it yourself: exit 3" in r.stderr.splitlines()
    assert sandboxes(engine, project) == []
    # Every key is read before anything starts: not even the egress service was.
    assert engine.list_containers({"dev.aishell.home": str(default_paths().state)},
                                  all=True) == []


def test_an_egress_service_that_cannot_start_starts_no_sandbox(broker_project, engine, tmp_path):
    (default_paths().state / "egress" / "service").mkdir(parents=True)
    project = project_copy(broker_project, tmp_path)
    r = run_aishell("claude", "-p", "hi", cwd=project, input="", timeout=300,
                    env={"HOME": str(user_home(tmp_path)), "ANTHROPIC_API_KEY": REAL})
    assert r.returncode == 1, r.stdout + r.stderr
    (line,) = error_lines(r.stderr)
    assert re.fullmatch(r"error: the egress service aishell-egress-\w+ stopped before it "
                        r"could start", line), r.stderr
    assert sandboxes(engine, project) == []
    assert REAL not in r.stdout + r.stderr


def test_mode_env_passes_the_key_in_as_before_and_the_scan_finds_it(
        broker_project, engine, tmp_path):
    """``[credentials] mode = "env"`` in the project: the key itself in the sandbox, no
    broker. The leak scan's control: there it finds the key (env, /proc, inspect)."""
    project = project_copy(broker_project, tmp_path, '\n[credentials]\nmode = "env"\n')
    env = {"HOME": str(onboarded(user_home(tmp_path)))}
    with anthropic_stub(engine, project / "unused.txt") as stub:
        r = run_aishell(*QUIET, "run", "--detach", "claude", cwd=project, timeout=300,
                        env={**env, "ANTHROPIC_API_KEY": REAL,
                             "ANTHROPIC_BASE_URL": stub.base_url})
        assert r.returncode == 0, r.stdout + r.stderr
        try:
            printed = run_aishell("attach", NAME, "--", "printenv", "ANTHROPIC_API_KEY",
                                  "ANTHROPIC_BASE_URL", cwd=project, env=env)
            assert printed.stdout.split() == [REAL, stub.base_url], printed.stderr
            (box,) = sandboxes(engine, project)
            labels = box.get("Labels") or {}
            assert "dev.aishell.credentials" not in labels and "dev.aishell.egress" not in labels
            found = scan_inside(project, env, files=False)
            assert {"env", "os.environ"} <= set(found["hits"]), found
            assert any(h.endswith("/environ") for h in found["hits"]), found
            assert _leaks(_cli("inspect", str(box["Id"])))
        finally:
            run_aishell("stop", NAME, cwd=project, env=env)


# -- 5. The real codex, its Bearer key set by the broker ---------------------------------

CODEX = Script("written by codex.txt", "codex was here through the broker\n",
               final="The file is written.")


def test_codex_loop_through_the_broker_carries_the_real_bearer_key(
        broker_project, engine, tmp_path):
    project = project_copy(broker_project, tmp_path)
    with StubServer(OpenAIStub, CODEX, engine_host_address(engine)) as stub:
        r = run_aishell("codex", "exec", f"Write the file {CODEX.path!r}.", cwd=project,
                        input="", timeout=600,
                        env={"HOME": str(user_home(tmp_path)), "CODEX_API_KEY": REAL,
                             "OPENAI_BASE_URL": f"{stub.base_url}/v1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert (project / CODEX.path).read_text(encoding="utf-8") == CODEX.content
    turns = [rec for rec in stub.model_requests("/v1/responses") if rec.method == "POST"]
    assert len(turns) >= 2, [(rec.method, rec.path) for rec in stub.requests]
    assert tool_output(turns[0].json()) is None
    assert tool_output(turns[1].json()) is not None
    assert_every_request_carried_only_the_real_key(stub.requests, "authorization",
                                                    f"Bearer {REAL}")
    assert not re.search(re.escape(REAL), r.stdout + r.stderr)
