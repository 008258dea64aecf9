"""Fixtures for the store tests: a local HTTP server, test labels, engine clean-up."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

TEST_LABELS = {"dev.aishell.test": "1"}


@dataclass
class Served:
    """What the local server serves and what it was asked for."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    delay: float = 0.0
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> int:
        return sum(1 for p in self.requests if p.endswith(path))


def _handler(served: Served) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append(self.path)
            body = served.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            if served.delay:
                threading.Event().wait(served.delay)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    return Handler


@pytest.fixture
def http_server() -> Iterator[Served]:
    """A threaded HTTP server on 127.0.0.1 serving ``Served.files`` by path.

    A proxy request (``GET http://host/path``) arrives with the absolute URL as its path,
    so the same server doubles as an HTTP proxy: ``requests`` then records full URLs.
    """
    served = Served()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    served.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests talk to 127.0.0.1 directly, whatever proxy the machine configures."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY",
                "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)


# Run populate() in a separate process, as a concurrent or killed `aishell sync` would.
# argv: env_id image shell-command [count-dir or ""] [step name at whose start to kill -9 itself]
POPULATE_SCRIPT = """
import json, os, signal, sys
from aishell.engine import Engine
from aishell.store.envs import InstallStep, populate
from aishell.paths import default_paths
from aishell.request import Mount
env_id, image, command = sys.argv[1:4]
count = sys.argv[4] if len(sys.argv) > 4 else ""
kill_at = sys.argv[5] if len(sys.argv) > 5 else ""
mounts = (Mount(count, "/count"),) if count else ()
step = InstallStep("install", ("sh", "-c", command), mounts=mounts)

def on_step(name):
    print("step", name, flush=True)
    if name == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

result = populate(Engine(), env_id, "linux/amd64", [step], paths=default_paths(), image=image,
                  extra_labels={"dev.aishell.test": "1"}, on_step=on_step,
                  on_wait=lambda m: print("wait", m, flush=True))
print("result", json.dumps({"built": result.built, "digest": result.marker.tree_digest}),
      flush=True)
"""
