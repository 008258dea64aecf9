"""The shared part of the stub model APIs: a threaded HTTP server that records requests.

A stub listens on the engine host's address on the engine's default network (Docker's
``bridge`` gateway, Podman's ``podman`` one), the way a user's local model gateway is
reached from a sandbox: directly in ``open`` mode, through the egress service in
``allowlist`` mode (with ``host:port`` allowed). Its traffic never leaves this machine.

Each API module (``anthropic``, ``openai``, ``gemini``) subclasses :class:`StubHandler`
and answers from a :class:`Script`: turn 1 a tool call that writes ``content`` to
``path``, turn 2 (once the request carries the tool's result) a text answer that ends
the turn. Every request is recorded (method, path, headers without secrets, body).

With ``tls`` (a server-side :class:`ssl.SSLContext`) the stub speaks HTTPS: each
connection's handshake runs in its own thread and is counted in ``handshakes`` (or, when
it fails, ``handshake_failures``). A client that checks the certificate only once the
handshake is done (nginx) then closes the connection without a request.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET_HEADERS = {"authorization", "x-api-key", "x-goog-api-key", "proxy-authorization"}


@dataclass
class Script:
    """What the model does: write ``content`` to ``path``, then say ``final``."""

    path: str
    content: str
    final: str = "Done: the file is written."


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    secrets: dict[str, str] = field(default_factory=dict)  # the secret headers, for key tests
    peer: str = ""  # the client's address (the egress service's, behind an allowlist proxy)
    at: float = field(default_factory=time.monotonic)  # when it arrived (the bench's clock)

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class StubHandler(BaseHTTPRequestHandler):
    """Records each request into ``server.requests``; subclasses implement :meth:`answer`."""

    protocol_version = "HTTP/1.1"
    server: StubServer

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        del format, args  # quiet: the recorded requests are the log

    def _record(self) -> Recorded:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = Recorded(self.command, self.path,
                       {k: v for k, v in headers.items() if k not in SECRET_HEADERS}, body,
                       {k: v for k, v in headers.items() if k in SECRET_HEADERS},
                       str(self.client_address[0]))
        with self.server.lock:
            self.server.requests.append(rec)
        return rec

    def do_GET(self) -> None:  # stdlib names
        self.answer(self._record())

    def do_POST(self) -> None:
        self.answer(self._record())

    def do_HEAD(self) -> None:
        self.answer(self._record())

    def answer(self, rec: Recorded) -> None:
        raise NotImplementedError

    # -- helpers for subclasses ---------------------------------------------------------
    def send_json(self, status: int, doc: Any) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def sse(self, data: Any, event: str | None = None) -> None:
        """One server-sent event (``event:`` line when named), flushed at once."""
        text = (f"event: {event}\n" if event else "") + f"data: {json.dumps(data)}\n\n"
        self.wfile.write(text.encode())
        self.wfile.flush()


class StubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[StubHandler], script: Script, host: str,
                 tls: ssl.SSLContext | None = None) -> None:
        super().__init__((host, 0), handler)
        self.script = script
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self.tls = tls
        self.handshakes = 0
        self.handshake_failures = 0
        if tls is not None:  # accept() stays quick: the handshake is the handler thread's
            self.socket = tls.wrap_socket(self.socket, server_side=True,
                                          do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is not None:
            try:
                request.settimeout(30)
                request.do_handshake()
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                with self.lock:
                    self.handshake_failures += 1
                return
            with self.lock:
                self.handshakes += 1
        super().finish_request(request, client_address)

    @property
    def host(self) -> str:
        return str(self.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()

    def model_requests(self, marker: str) -> list[Recorded]:
        """The recorded requests whose path contains ``marker`` (``/v1/messages``, …)."""
        with self.lock:
            return [r for r in self.requests if marker in r.path]


def engine_host_address(engine: Any) -> str:
    """The engine host's address on the default network (where sandboxes find it)."""
    import ipaddress

    for net in engine.list_networks({}):
        if net.get("Name") not in ("bridge", "podman", engine.default_network()):
            continue
        for conf in (net.get("IPAM") or {}).get("Config") or []:
            if conf.get("Gateway"):
                return str(conf["Gateway"]).split("/", maxsplit=1)[0]
            if conf.get("Subnet"):  # Docker's list leaves the default bridge's gateway out
                return str(next(ipaddress.ip_network(conf["Subnet"], strict=False).hosts()))
    raise AssertionError("the engine's default network has no gateway address")
