"""Fixtures for `aishell run` integration tests: a fake harness and exact cleanup.

The fake harness is a shell script mounted at ``/tools/bin`` (where the env volume's
bins go) under two catalog names, ``claude`` and ``pi``, so the catalog's defaults
(flags, config mounts, API keys) apply to it. The project declares no ``[harnesses]``,
so no lock or sync is involved. Every container the
tests start carries ``dev.aishell.test=1`` (through ``[run] docker_args``) and the
test's own project path; cleanup removes exactly the containers with both.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_aishell

FAKE_HARNESS = r"""#!/bin/bash
# A stand-in harness: prints what it was given, then echoes stdin until `quit`.
if [ "${1:-}" = --version ]; then echo "fake-harness 1.2.3"; exit 0; fi
echo "fake-harness args: $*"
[ -n "${FAKE_REPORT:-}" ] && {
  echo "key=${ANTHROPIC_API_KEY:-unset} auto=${DISABLE_AUTOUPDATER:-} sandbox=${IS_SANDBOX:-}" \
    > "$FAKE_REPORT"
}
while IFS= read -r line; do
  echo "got: $line"
  [ "$line" = quit ] && exit 3
done
exit 0
"""


@dataclass
class RunProject:
    path: Path
    home: Path
    bin_dir: Path

    def write_config(self, run_extra: str = "", harnesses: str = "") -> None:
        text = (
            (f"[harnesses]\n{harnesses}" if harnesses else "")
            + "[run]\n"
            f'mounts = ["{self.bin_dir}:/tools/bin:ro"]\n'
            'docker_args = ["--label", "dev.aishell.test=1"]\n'
            f"{run_extra}"
        )
        (self.path / "aishell.toml").write_text(text, encoding="utf-8")

    def env(self, **extra: str) -> dict[str, str]:
        return {"HOME": str(self.home), "TERM": "xterm-256color", **extra}

    def aishell(self, *args: str, timeout: float = 120, **env: str
                ) -> subprocess.CompletedProcess[str]:
        return run_aishell(*args, cwd=self.path, env=self.env(**env), timeout=timeout)

    def containers(self) -> list[dict[str, object]]:
        out = subprocess.run(
            ["docker", "ps", "-a", "--no-trunc", "--format", "{{json .}}",
             "--filter", "label=dev.aishell.test=1",
             "--filter", f"label=dev.aishell.project={self.path}"],
            capture_output=True, text=True, check=True,
        ).stdout
        return [json.loads(line) for line in out.splitlines()]

    def cleanup(self) -> None:
        ids = [str(c["ID"]) for c in self.containers()]
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)


@pytest.fixture(name="run_project")
def run_project_fixture(tmp_path: Path, foundation_tag: str) -> Iterator[RunProject]:
    """A project with a fake harness; its sandboxes are removed afterwards."""
    del foundation_tag  # built once per session; the CLI finds it by tag
    project = tmp_path / "run proj"
    project.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name in ("fake-harness", "claude", "pi"):
        script = bin_dir / name
        script.write_text(FAKE_HARNESS, encoding="utf-8")
        script.chmod(0o755)
    bin_dir.chmod(0o755)
    tmp_path.chmod(0o755)
    rp = RunProject(project, home, bin_dir)
    rp.write_config()
    yield rp
    rp.cleanup()


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, every: float = 0.1
             ) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(every)


def tmux(container: str, *args: str) -> str:
    return subprocess.run(["docker", "exec", container, "tmux", *args],
                          capture_output=True, text=True, check=False).stdout


def all_cmdlines() -> list[str]:
    """Every process's command line on the host (containers' processes included)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            out.append(raw.replace(b"\0", b" ").decode("utf-8", "replace"))
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int) -> str | None:
    import urllib.parse
    import urllib.request

    try:
        url = urllib.parse.urlunparse(("http", f"127.0.0.1:{port}", "/", "", "", ""))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=2) as resp:
            return resp.read().decode()
    except OSError:
        return None
