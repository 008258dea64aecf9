"""Shared test setup: private state, the real engine, the foundation image, a non-root user."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from aishell.engine import Engine
from aishell.errors import AishellError

# Fixture modules shared by several test files (the fixture registry, gc stores).
pytest_plugins = ["tests.fixtures_lock", "tests.fixtures_gc", "tests.fixtures_oci"]

# Property-based tests (tests/cli/test_bad_input.py): a fixed, bounded profile by default and
# in CI (the same cases every run, a few seconds per test); HYPOTHESIS_PROFILE=deep for more.
settings.register_profile("ci", max_examples=150, derandomize=True, deadline=None,
                          database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# AISHELL_TEST_ENGINE=podman runs the engine tier against Podman's Docker-compatible API
# (started by scripts/provision.sh): everything, the `docker` CLI calls of the tests too,
# follows DOCKER_HOST.
TEST_ENGINE = os.environ.get("AISHELL_TEST_ENGINE", "docker")
if TEST_ENGINE == "podman":
    os.environ["DOCKER_HOST"] = os.environ.get("AISHELL_PODMAN_HOST",
                                               "unix:///run/podman/podman.sock")

PROVISION_HINT = (
    "the integration tests need a running container engine with the local base image: "
    "run `bash scripts/provision.sh` as root or a sudoer (or `bash .ci/run`), then try again"
)


@pytest.fixture(autouse=True)
def private_state(tmp_path_factory: pytest.TempPathFactory,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own AISHELL_HOME; the real config, state and cache are never used."""
    home = tmp_path_factory.mktemp("aishell-home")
    monkeypatch.setenv("AISHELL_HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(home / "xdg-must-not-be-used"))
    yield home
    if (home / "state" / "egress").is_dir():
        stop_egress_service(home)
    if (home / "state").is_dir() and any((home / "state").glob("*")):
        forget_home(home)


def stop_egress_service(aishell_home: Path) -> None:
    """Remove the egress service an allowlist launch of this home started (it would
    otherwise wait out its idle timeout)."""
    from aishell.paths import default_paths
    from aishell.store import egressservice

    paths = default_paths({"AISHELL_HOME": str(aishell_home)})
    with contextlib.suppress(AishellError):
        engine = Engine()
        for c in engine.list_containers({egressservice.HOME_LABEL: str(paths.state)}, all=True):
            with contextlib.suppress(AishellError):
                engine.remove_container(str(c["Id"]), force=True)
        engine.close()


def forget_home(aishell_home: Path) -> None:
    """Remove the gc roots the aishell home ``AISHELL_HOME=aishell_home`` published on the
    engine (sync, gc, pin and launches do); a test that made the home calls it."""
    from aishell.paths import default_paths
    from aishell.store import engineroots

    paths = default_paths({"AISHELL_HOME": str(aishell_home)})
    # a launch's detached recording child may still be publishing: wait for it
    with contextlib.suppress(AishellError, OSError), engineroots.publishing(paths):
        engine = Engine()
        for v in engine.list_volumes({engineroots.HOME: engineroots.home_id(paths)}):
            engine.remove_volume(str(v["Name"]))
        engine.close()


@pytest.fixture(autouse=True)
def _never_touch_real_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if code under test falls back to the real per-user directories."""

    def forbidden(_env: object) -> None:
        raise AssertionError("a test reached the real XDG config/state/cache directories")

    monkeypatch.setattr("aishell.paths.xdg_paths", forbidden)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """The real engine; fails (never skips) when it is not provisioned."""
    eng = Engine()
    try:
        found = eng.info()
    except AishellError as exc:
        pytest.fail(f"{exc.message}\n{PROVISION_HINT}", pytrace=False)
    if found.podman != (TEST_ENGINE == "podman"):
        pytest.fail(f"AISHELL_TEST_ENGINE={TEST_ENGINE} but the engine at "
                    f"{eng.docker_host or 'the default socket'} is not that", pytrace=False)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def foundation_tag(engine: Engine) -> str:
    from aishell.lock.foundation import Foundation
    from aishell.store.images import ensure_foundation

    foundation = Foundation.from_settings()
    if engine.image_inspect(foundation.base) is None:
        pytest.fail(f"base image {foundation.base} missing\n{PROVISION_HINT}", pytrace=False)
    return ensure_foundation(engine, foundation).tag


def run_aishell(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
                input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "aishell", *args],
        cwd=cwd, env={**os.environ, **(env or {})}, input=input, text=True,
        capture_output=True, timeout=timeout, check=False,
    )


@pytest.fixture
def git_project(tmp_path: Path) -> Path:
    """A git repository with its own identity, at a path with a space and unicode."""
    project = tmp_path / "my project ü"
    project.mkdir()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    subprocess.run(["git", "-C", str(project), "config", "user.name", "Ada Lovelace"], check=True)
    subprocess.run(["git", "-C", str(project), "config", "user.email", "ada@example.org"],
                   check=True)
    return project
