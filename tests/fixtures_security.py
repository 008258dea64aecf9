"""Helpers for the security tests: project trees, git repos, contexts, labelled containers.

AISHELL_HOME isolation and the foundation image come from tests/conftest.py."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path

from aishell.paths import default_paths
from aishell.project.context import Context

TEST_LABEL = "dev.aishell.test"


def make_tree(root: Path, paths: Iterable[str], content: str = "") -> Path:
    for rel in paths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout


def init_repo(repo: Path) -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "Test")
    git(repo, "config", "user.email", "test@example.invalid")
    return repo


def context(project: Path, toml: str | None = None) -> Context:
    project.mkdir(parents=True, exist_ok=True)
    if toml is not None:
        (project / "aishell.toml").write_text(toml, encoding="utf-8")
    return Context(project=project.resolve(), paths=default_paths(), quiet=True)


def remove_containers(labels: dict[str, str]) -> None:
    """Remove the containers carrying ``labels`` (only those a test created)."""
    from aishell.engine import Engine

    engine = Engine()
    for c in engine.list_containers(labels):
        engine.remove_container(str(c["Id"]))


def new_label() -> str:
    return uuid.uuid4().hex[:12]
