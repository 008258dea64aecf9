"""A real OCI registry for the substituter tests: Debian's docker-registry on loopback."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROVISION_HINT = "install it with `sudo scripts/provision.sh` (Debian package docker-registry)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class OciRegistry:
    host: str  # 127.0.0.1:PORT — the engine treats 127.0.0.0/8 as insecure by default
    root: Path

    def path(self, name: str = "aishell") -> str:
        return f"{self.host}/{name}"


class RegistryError(RuntimeError):
    """docker-registry is missing or did not come up."""


@contextlib.contextmanager
def serve_registry(root: Path) -> Iterator[OciRegistry]:
    """``docker-registry serve`` on a free loopback port, storing into ``root``.

    Used by the tests' fixture and by the bench's substituter rows.
    """
    binary = shutil.which("docker-registry")
    if binary is None:
        raise RegistryError(f"docker-registry is not installed: {PROVISION_HINT}")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n", encoding="utf-8")
    log = (root / "registry.log").open("wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(proc, f"http://127.0.0.1:{port}/v2/", root / "registry.log")
        yield OciRegistry(f"127.0.0.1:{port}", root)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _wait_for(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(100):
        try:
            opener.open(url, timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RegistryError(f"docker-registry exited: {log.read_text()}") from None
            time.sleep(0.1)
    raise RegistryError(f"docker-registry did not answer on {url}")


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciRegistry]:
    """A real registry for the session (see :func:`serve_registry`)."""
    try:
        with serve_registry(tmp_path_factory.mktemp("oci-registry")) as registry:
            yield registry
    except RegistryError as exc:
        pytest.fail(str(exc), pytrace=False)
