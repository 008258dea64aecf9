"""aishell's egress service: one per aishell home, shared by that home's allowlist sandboxes.

Runs as the container's only program (under the engine's init), as the host user, with
the home's egress directory mounted at /egress (docs/security.md, "Network modes"):

    /egress/policies/<id>/tinyproxy.conf   a sandbox's policy, written by aishell (atomic:
    /egress/policies/<id>/filter           the directory is renamed into place whole)
    /egress/policies/<id>/proxy.log        what its proxy admitted and refused
    /egress/policies/<id>/ready            this service's instance token, once it serves
    /egress/sockets/<id>/proxy.sock        the one path into the proxy: only this
                                           directory is mounted into that sandbox
    /egress/service                        the running instance's token, once it listens
                                           for SIGUSR1

For each policy the service runs one Debian tinyproxy on a loopback port of its own
network namespace, with that policy's filter, and one Debian socat that carries the
sandbox's Unix socket to it. A sandbox's socket therefore reaches only its own policy.
A policy directory that goes away takes its two processes with it; a process that dies
is started again. SIGUSR1 (sent by each launch) rescans at once, otherwise every second.
With no policy for AISHELL_EGRESS_IDLE seconds the service exits; the next launch of its
home or `aishell gc` removes the container.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path("/egress")
POLICIES = ROOT / "policies"
SOCKETS = ROOT / "sockets"
TOKEN = os.environ.get("AISHELL_EGRESS_INSTANCE", "")
IDLE = float(os.environ.get("AISHELL_EGRESS_IDLE", "900"))
READY_TIMEOUT = 10.0

served: dict[str, tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]] = {}


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


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def stop(egress_id: str) -> None:
    for proc in served.pop(egress_id, ()):
        if proc.poll() is None:
            proc.terminate()
    (SOCKETS / egress_id / "proxy.sock").unlink(missing_ok=True)


def serve(egress_id: str) -> None:
    """Start the proxy and the socket of one policy; write its ready marker."""
    policy = POLICIES / egress_id
    sock = SOCKETS / egress_id / "proxy.sock"
    (policy / "ready").unlink(missing_ok=True)
    base = (policy / "tinyproxy.conf").read_text(encoding="utf-8")
    port = free_port()
    conf = Path("/tmp") / f"tinyproxy-{egress_id}.conf"  # noqa: S108 - our own /tmp
    write_atomic(conf, base + f"Port {port}\nListen 127.0.0.1\n"
                 f'LogFile "{policy / "proxy.log"}"\nFilter "{policy / "filter"}"\n')
    proxy = subprocess.Popen(["tinyproxy", "-d", "-c", str(conf)], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + READY_TIMEOUT
    while not listening(port):
        if proxy.poll() is not None or time.monotonic() > deadline:
            proxy.kill()
            log(f"{egress_id}: tinyproxy did not start")
            return
        time.sleep(0.005)
    sock.parent.mkdir(mode=0o700, exist_ok=True)
    sock.unlink(missing_ok=True)
    bridge = subprocess.Popen(
        ["socat", f"UNIX-LISTEN:{sock},fork,mode=600,unlink-early", f"TCP:127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL)
    served[egress_id] = (proxy, bridge)
    while not sock.exists():
        if bridge.poll() is not None or time.monotonic() > deadline:
            log(f"{egress_id}: socat did not open {sock}")
            stop(egress_id)
            return
        time.sleep(0.002)
    write_atomic(policy / "ready", TOKEN)


def scan() -> int:
    """Serve every complete policy, stop what lost its policy; how many are served."""
    wanted: set[str] = set()
    with contextlib.suppress(FileNotFoundError):
        wanted = {e.name for e in POLICIES.iterdir()
                  if not e.name.startswith(".") and (e / "filter").is_file()}
    for egress_id in list(served):
        procs = served[egress_id]
        if egress_id not in wanted or any(p.poll() is not None for p in procs):
            stop(egress_id)
    for egress_id in sorted(wanted - set(served)):
        try:
            serve(egress_id)
        except OSError as exc:  # its policy went away while we read it
            log(f"{egress_id}: {exc}")
            stop(egress_id)
    return len(wanted)


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
