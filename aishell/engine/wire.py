"""The engine's wire: one HTTP/1.0 request over its Unix socket, with nothing else imported.

The launch path's engine reads (does this image still exist? is the env volume complete?)
go through here, so that a launch from a cached plan imports ``socket`` and nothing of
the SDK, ``urllib`` or ``dataclasses``. Engine answers are bytes; callers decide.
"""

from __future__ import annotations

import _socket

TYPE_CHECKING = False  # typing itself costs ~4 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

DEFAULT_SOCKET = "/var/run/docker.sock"


def unix_request(sock_path: str, path: str, timeout: float,
                  method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    """One HTTP/1.0 request over a Unix socket: the server closes when done, so no chunking.

    http.client would do, but it drags in the email package (~10 ms) on the launch path;
    even :mod:`socket` costs ~3 ms over the C module it wraps, which is all this needs.
    """
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(sock_path)
        request = f"{method} {path} HTTP/1.0\r\nHost: docker\r\n"
        if body is not None:
            request += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        sock.sendall((request + "\r\n").encode() + (body or b""))
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        sock.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise OSError(f"malformed engine response: {head[:80]!r}")
    return int(status_line[1]), body


def socket_path(docker_host: str | None) -> str | None:
    """The Unix socket to talk to, or None when DOCKER_HOST is not a Unix socket."""
    if not docker_host:
        return DEFAULT_SOCKET
    if docker_host.startswith("unix://"):
        return docker_host[len("unix://"):]
    return None


def api_env(passthrough: Sequence[str], fixed: Mapping[str, str],
            environ: Mapping[str, str]) -> dict[str, str]:
    """Every variable of a container with its value: names passed through take the
    host's value (when set), fixed values win."""
    env = {n: environ[n] for n in passthrough if n in environ}
    env.update(fixed)
    return env
