"""A real OCI registry for the substituter tests: Debian's docker-registry on loopback."""

from __future__ import annotations

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


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciRegistry]:
    """``docker-registry serve`` on a free loopback port, storing into a temp directory."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail(f"docker-registry is not installed: {PROVISION_HINT}", pytrace=False)
    root = tmp_path_factory.mktemp("oci-registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n", encoding="utf-8")
    log = (root / "registry.log").open("wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v2/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(100):
        try:
            opener.open(url, timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"docker-registry did not answer on {url}", pytrace=False)
    if proc.poll() is not None:
        pytest.fail(f"docker-registry exited: {(root / 'registry.log').read_text()}",
                    pytrace=False)
    try:
        yield OciRegistry(f"127.0.0.1:{port}", root)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
