"""aishell's egress service: one per aishell home, shared by that home's allowlist sandboxes.

Runs as the container's only program (under the engine's init), as the host user, with
the home's egress directory mounted at /egress (docs/security.md, "Network modes"):

    /egress/policies/<id>/policy.json      a sandbox's policy, written by aishell (atomic:
    /egress/policies/<id>/tinyproxy.conf   the directory is renamed into place whole):
    /egress/policies/<id>/filter           its proxy (allowlist mode) and its brokers
    /egress/policies/<id>/proxy.log        what its proxy admitted and refused
    /egress/policies/<id>/ready            this service's instance token, once it serves
    /egress/sockets/<id>/proxy.sock        the one path into the proxy: only this
                                           directory is mounted into that sandbox
    /egress/sockets/<id>/<broker>.sock     a credential broker's socket (nginx)
    /egress/control.sock                   where aishell hands over a sandbox's keys (the
                                           host user's own; never mounted in a sandbox)
    /egress/service                        the running instance's token, once it listens
                                           for SIGUSR1

For each policy the service runs one Debian tinyproxy on a loopback port of its own
network namespace, with that policy's filter, and one Debian socat that carries the
sandbox's Unix socket to it. A sandbox's socket therefore reaches only its own policy.
A policy with brokers also gets one Debian nginx, listening on one socket per broker,
that forwards to that API and sets the user's key on every request; the keys arrive over
the control socket and live only on this container's tmpfs (/run/aishell-keys).
A policy directory that goes away takes its two processes with it; a process that dies
is started again. SIGUSR1 (sent by each launch) rescans at once, otherwise every second.
With no policy for AISHELL_EGRESS_IDLE seconds the service exits; the next launch of its
home or `aishell gc` removes the container.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path("/egress")
POLICIES = ROOT / "policies"
SOCKETS = ROOT / "sockets"
KEYS = Path("/run/aishell-keys") / "k"  # a tmpfs: the keys never touch a disk
TOKEN = os.environ.get("AISHELL_EGRESS_INSTANCE", "")
IDLE = float(os.environ.get("AISHELL_EGRESS_IDLE", "900"))
READY_TIMEOUT = 10.0
ID = re.compile(r"^[0-9a-f]{12}$")
NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
HEADER = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
# A key nginx can carry in a quoted string: no quote, backslash, `$` (a variable) or
# space, after an optional "Bearer ".
VALUE = re.compile(r"^(Bearer )?[A-Za-z0-9._~+/=:-]{1,4096}$")

served: dict[str, list[subprocess.Popen[bytes]]] = {}


def log(message: str) -> None:
    sys.stdout.write(f"aishell-egress: {message}\n")
    sys.stdout.flush()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    tmp.replace(path)


def stop(egress_id: str) -> None:
    for proc in served.pop(egress_id, ()):
        if proc.poll() is None:
            proc.terminate()
    with contextlib.suppress(OSError):
        for sock in (SOCKETS / egress_id).glob("*.sock"):
            sock.unlink(missing_ok=True)
    shutil.rmtree(KEYS / egress_id, ignore_errors=True)


def _wait_for(path: Path, proc: subprocess.Popen[bytes], deadline: float) -> bool:
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def start_proxy(egress_id: str, deadline: float) -> bool:
    """tinyproxy with the policy's filter on a loopback port, socat from proxy.sock."""
    policy = POLICIES / egress_id
    sock = SOCKETS / egress_id / "proxy.sock"
    base = (policy / "tinyproxy.conf").read_text(encoding="utf-8")
    port = free_port()
    conf = Path("/tmp") / f"tinyproxy-{egress_id}.conf"  # noqa: S108 - our own /tmp
    write_atomic(conf, base + f"Port {port}\nListen 127.0.0.1\n"
                 f'LogFile "{policy / "proxy.log"}"\nFilter "{policy / "filter"}"\n')
    proxy = subprocess.Popen(["tinyproxy", "-d", "-c", str(conf)], stdin=subprocess.DEVNULL)
    served[egress_id].append(proxy)
    while not listening(port):
        if proxy.poll() is not None or time.monotonic() > deadline:
            fail(egress_id, "tinyproxy did not start")
            return False
        time.sleep(0.005)
    sock.unlink(missing_ok=True)
    bridge = subprocess.Popen(
        ["socat", f"UNIX-LISTEN:{sock},fork,mode=600,unlink-early", f"TCP:127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL)
    served[egress_id].append(bridge)
    if not _wait_for(sock, bridge, deadline):
        fail(egress_id, f"socat did not open {sock.name}")
        return False
    return True


def nginx_conf(egress_id: str, brokers: list[dict[str, str]]) -> str:
    """One nginx, in one process, a server per broker listening on its socket."""
    keys = KEYS / egress_id
    log_file = POLICIES / egress_id / "broker.log"
    lines = ["user root root;" if os.getuid() == 0 else "",
             "daemon off;", "master_process off;", f"pid {keys}/nginx.pid;",
             f"error_log {log_file} warn;", "events { worker_connections 512; }", "http {",
             # method, path (never the query: a key may ride in it) and status
             "  log_format aishell '$time_iso8601 $request_method $uri $status';",
             f"  access_log {log_file} aishell;",
             *(f"  {kind}_temp_path {keys}/{kind};"
               for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
             "  client_max_body_size 256m;", "  server_tokens off;"]
    # Names are resolved per request (a variable in proxy_pass), not once at start: an
    # API's addresses change, and an unresolvable one must fail its requests, not nginx.
    lines.append(f"  resolver {' '.join(nameservers())} valid=60s;")
    for b in brokers:
        upstream, host = b["upstream"], b["host"]
        lines += [
            "  server {",
            f"    listen unix:{SOCKETS / egress_id / (b['name'] + '.sock')};",
            "    location / {",
            f"      set $aishell_upstream {upstream};",
            "      proxy_pass $aishell_upstream;",
            "      proxy_http_version 1.1;",
            f"      proxy_set_header Host {host};",
            '      proxy_set_header Connection "";',
            *(f'      proxy_set_header {h} "";' for h in b["clear"].split(",") if h),
            f"      include {keys}/{b['name']}.conf;",
            "      proxy_buffering off;", "      proxy_request_buffering off;",
            "      proxy_read_timeout 900s;", "      proxy_send_timeout 900s;",
        ]
        if upstream.startswith("https://"):
            lines += ["      proxy_ssl_server_name on;", f"      proxy_ssl_name {b['sni']};",
                      "      proxy_ssl_verify on;", "      proxy_ssl_verify_depth 5;",
                      "      proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;"]
        lines += ["    }", "  }"]
    return "\n".join([*lines, "}"]) + "\n"


def nameservers() -> list[str]:
    """The container's resolvers (/etc/resolv.conf), as nginx's resolver wants them."""
    found: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/etc/resolv.conf").read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                found.append(f"[{parts[1]}]" if ":" in parts[1] else parts[1])
    return found or ["127.0.0.11"]


def start_brokers(egress_id: str, brokers: list[dict[str, str]], deadline: float) -> bool:
    keys = KEYS / egress_id
    missing = [b["name"] for b in brokers if not (keys / f"{b['name']}.conf").is_file()]
    if missing:
        fail(egress_id, f"no key was handed over for {', '.join(missing)}")
        return False
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (keys / kind).mkdir(mode=0o700, exist_ok=True)
    conf = keys / "nginx.conf"
    write_atomic(conf, nginx_conf(egress_id, brokers), 0o600)
    for b in brokers:
        (SOCKETS / egress_id / f"{b['name']}.sock").unlink(missing_ok=True)
    nginx = subprocess.Popen(["nginx", "-q", "-c", str(conf), "-e", "stderr"],
                             stdin=subprocess.DEVNULL)
    served[egress_id].append(nginx)
    for b in brokers:
        sock = SOCKETS / egress_id / f"{b['name']}.sock"
        if not _wait_for(sock, nginx, deadline):
            tail = ""
            with contextlib.suppress(OSError):
                tail = (POLICIES / egress_id / "broker.log").read_text(
                    encoding="utf-8", errors="replace").strip().splitlines()[-1]
            fail(egress_id, f"the broker (nginx) did not start: {tail or 'no log'}")
            return False
        sock.chmod(0o600)
    return True


def fail(egress_id: str, reason: str) -> None:
    """Say why a policy is not served (the launch waiting for it shows this and stops)."""
    log(f"{egress_id}: {reason}")
    with contextlib.suppress(OSError):
        write_atomic(POLICIES / egress_id / "failed", reason + "\n")


def serve(egress_id: str) -> None:
    """Start what one policy asks for (its proxy, its brokers); write its ready marker."""
    policy = POLICIES / egress_id
    (policy / "ready").unlink(missing_ok=True)
    doc = json.loads((policy / "policy.json").read_text(encoding="utf-8"))
    (SOCKETS / egress_id).mkdir(mode=0o700, exist_ok=True)
    served[egress_id] = []
    deadline = time.monotonic() + READY_TIMEOUT
    if doc.get("proxy") and not start_proxy(egress_id, deadline):
        return
    if doc.get("brokers") and not start_brokers(egress_id, doc["brokers"], deadline):
        return
    write_atomic(policy / "ready", TOKEN)


def scan() -> int:
    """Serve every complete policy, stop what lost its policy; how many are served."""
    wanted: set[str] = set()
    with contextlib.suppress(FileNotFoundError):
        wanted = {e.name for e in POLICIES.iterdir()
                  if not e.name.startswith(".") and (e / "policy.json").is_file()}
    for egress_id in list(served):
        procs = served[egress_id]
        if egress_id not in wanted or any(p.poll() is not None for p in procs):
            stop(egress_id)
    for egress_id in sorted(wanted - set(served)):
        try:
            serve(egress_id)
        except (OSError, ValueError, KeyError) as exc:  # its policy went away or is broken
            fail(egress_id, f"{type(exc).__name__}: {exc}")
            stop(egress_id)
    return len(wanted)


def take_keys(line: bytes) -> str:
    """A sandbox's keys from the control socket: {"id", "keys": {broker: [[header, value]]}}
    written as nginx includes on the tmpfs; the answer line."""
    doc = json.loads(line)
    egress_id = str(doc.get("id", ""))
    if not ID.match(egress_id):
        return "error: bad id"
    keys = KEYS / egress_id
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name, headers in (doc.get("keys") or {}).items():
        if not NAME.match(name) or not all(
                HEADER.match(h) and VALUE.match(v) for h, v in headers):
            return f"error: {name}: a header or key the broker cannot carry"
        text = "".join(f'proxy_set_header {h} "{v}";\n' for h, v in headers)
        write_atomic(keys / f"{name}.conf", text, 0o600)
    return "ok"


def control_socket() -> socket.socket:
    """The control socket, bound (mode 0600) before the service says it is up."""
    path = ROOT / "control.sock"
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(str(path))
    finally:
        os.umask(old)
    server.listen(16)
    return server


def control(server: socket.socket) -> None:
    """Serve the control socket (one JSON line in, one line out, per connection)."""
    while True:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(10)
            data = b""
            with contextlib.suppress(OSError):
                while not data.endswith(b"\n") and len(data) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            try:
                answer = take_keys(data)
            except (ValueError, OSError, TypeError, AttributeError) as exc:
                answer = f"error: {type(exc).__name__}"
            with contextlib.suppress(OSError):
                conn.sendall(answer.encode() + b"\n")


def on_term(_sig: int, _frame: object) -> None:
    for egress_id in list(served):
        stop(egress_id)
    sys.exit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, on_term)
    # Woken by a launch (SIGUSR1) or by a proxy that died (SIGCHLD), else once a second.
    wakers = {signal.SIGUSR1, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, wakers)
    POLICIES.mkdir(parents=True, exist_ok=True)
    SOCKETS.mkdir(parents=True, exist_ok=True)
    KEYS.mkdir(mode=0o700, parents=True, exist_ok=True)
    threading.Thread(target=control, args=(control_socket(),), daemon=True).start()
    # Launches signal only an instance that says it is up: a SIGUSR1 before the mask above
    # would end this process.
    write_atomic(ROOT / "service", TOKEN)
    log(f"serving {ROOT} (instance {TOKEN}, idle timeout {IDLE:.0f} s)")
    idle_since = time.monotonic()
    while True:
        if scan():
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > IDLE:
            log("idle: exiting")
            return
        signal.sigtimedwait(wakers, 1.0)


if __name__ == "__main__":
    main()
