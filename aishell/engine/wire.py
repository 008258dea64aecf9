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
    from typing import Any

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


def exec_attached(sock_path: str, container: str, config: bytes) -> int:
    """Run an exec in ``container`` with stdin, stdout and stderr attached, without a TTY,
    as ``docker exec --interactive`` does; the exec's exit code.

    ``config`` is the JSON body of ``POST /containers/{id}/exec`` (AttachStdin, -Stdout,
    -Stderr true, Tty false). The start request is hijacked (``Upgrade: tcp``): this
    process copies its stdin into the stream and half-closes it at end of input, and
    writes the multiplexed output frames to its own stdout and stderr until the engine
    closes the stream. About 10 ms less than the engine CLI's own start-up.

    Raises:
        OSError: the engine refused the exec or the stream broke before it started
            (nothing ran; callers fall back to the engine CLI).
    """
    import os  # noqa: PLC0415 - only an attach pays for these
    import select  # noqa: PLC0415

    status, body = unix_request(sock_path, f"/containers/{container}/exec", 10.0,
                                method="POST", body=config)
    if status != 201 or not body.startswith(b'{"Id":"'):
        raise OSError(f"the engine refused the exec ({status}): {body[:200]!r}")
    exec_id = body[7:body.find(b'"', 7)].decode()
    sock, pending = _hijack(sock_path, f"/exec/{exec_id}/start", b'{"Detach":false,"Tty":false}')
    try:
        try:
            _pump(sock, pending, os, select)
        except OSError as exc:  # it ran: no fallback now, say what broke
            os.write(2, f"error: the exec's stream broke: {exc}\n".encode())
            return 255
    finally:
        sock.close()
    return _exit_code(sock_path, exec_id)


def _hijack(sock_path: str, path: str, body: bytes) -> tuple[_socket.socket, bytes]:
    """POST ``path`` asking the engine to switch the connection to a raw stream; the
    connected socket and the stream bytes that came with the answer."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(sock_path)
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\n"
                     "Upgrade: tcp\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise OSError("the engine closed the stream before it started")
            head += chunk
        head, _, pending = head.partition(b"\r\n\r\n")
        if head.split(b"\r\n", 1)[0].split()[1:2] not in ([b"101"], [b"200"]):
            raise OSError(f"the engine refused the stream: {head[:200]!r}")
    except BaseException:
        sock.close()
        raise
    return sock, pending


def run_attached(sock_path: str, container_id: str) -> int | None:
    """Start a created container with stdin, stdout and stderr attached and no TTY, as
    ``docker start --attach --interactive`` does: signals this process gets are passed to
    the container, and its exit code is returned. None when it could not be started
    (it is then still created, not started: the caller removes it).
    """
    import os  # noqa: PLC0415
    import select  # noqa: PLC0415
    import signal  # noqa: PLC0415

    base = f"/containers/{container_id}"
    try:
        sock, pending = _hijack(sock_path, f"{base}/attach?stream=1&stdin=1&stdout=1&stderr=1",
                                b"")
    except OSError:
        return None
    waiter = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        # Asked before the start, as the engine CLI does, so an exit (and --rm's removal)
        # cannot happen unseen.
        waiter.connect(sock_path)
        waiter.sendall(f"POST {base}/wait?condition=next-exit HTTP/1.0\r\nHost: docker\r\n"
                       "Content-Length: 0\r\n\r\n".encode())
        status, _ = unix_request(sock_path, f"{base}/start", 30.0, method="POST", body=b"")
        if status not in (204, 304):
            return None
        forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)

        def forward(signum: int, _frame: object) -> None:
            unix_request(sock_path, f"{base}/kill?signal={signum}", 10.0, method="POST",
                         body=b"")

        previous = {s: signal.signal(s, forward) for s in forwarded}
        try:
            _pump(sock, pending, os, select)
        except OSError as exc:
            os.write(2, f"error: the container's stream broke: {exc}\n".encode())
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        answer = b""
        while True:
            chunk = waiter.recv(65536)
            if not chunk:
                break
            answer += chunk
    finally:
        sock.close()
        waiter.close()
    marker = answer.find(b'"StatusCode":')
    digits = answer[marker + 13:].split(b",", 1)[0].split(b"}", 1)[0].strip()
    return int(digits) if marker >= 0 and digits.isdigit() else 255


def _exit_code(sock_path: str, exec_id: str) -> int:
    """The exec's exit code; the engine records it a moment after the stream closes."""
    import time  # noqa: PLC0415

    for _ in range(200):
        status, body = unix_request(sock_path, f"/exec/{exec_id}/json", 10.0)
        marker = body.find(b'"ExitCode":')
        digits = body[marker + 11:].split(b",", 1)[0].split(b"}", 1)[0].strip()
        if status != 200 or marker < 0:
            return 255
        if digits.lstrip(b"-").isdigit() and b'"Running":true' not in body:
            return int(digits)
        time.sleep(0.01)
    return 255


def _pump(sock: _socket.socket, pending: bytes, os: Any, select: Any) -> None:
    """Copy stdin into ``sock`` and its output frames to stdout/stderr until it closes."""
    outputs = {1: 1, 2: 2}  # stream type -> file descriptor (0 would be stdin: never sent)
    buffer = pending
    try:
        os.fstat(0)
        stdin_open = True
    except OSError:  # no stdin at all: the process gets end of input at once
        stdin_open = False
        sock.shutdown(_socket.SHUT_WR)
    while True:
        while len(buffer) >= 8:  # frames: type, 3 zero bytes, big-endian length, payload
            size = int.from_bytes(buffer[4:8], "big")
            if len(buffer) < 8 + size:
                break
            fd = outputs.get(buffer[0])
            if fd is not None:
                view = memoryview(buffer)[8:8 + size]
                while view:
                    view = view[os.write(fd, view):]
            buffer = buffer[8 + size:]
        watched = [sock, 0] if stdin_open else [sock]
        ready, _, _ = select.select(watched, [], [])
        if 0 in ready:
            data = os.read(0, 65536)
            if data:
                sock.sendall(data)
            else:
                stdin_open = False
                sock.shutdown(_socket.SHUT_WR)  # end of input: the process sees EOF
        if sock in ready:
            chunk = sock.recv(65536)
            if not chunk:
                return
            buffer += chunk
