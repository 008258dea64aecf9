from __future__ import annotations

from pathlib import Path

import pytest

from aishell.errors import ConfigError
from aishell.lock.foundation import Foundation
from aishell.store import extension


@pytest.fixture
def project(tmp_path: Path) -> Path:
    d = tmp_path / ".aishell"
    d.mkdir()
    (d / "Dockerfile").write_text("ARG AISHELL_FOUNDATION\nFROM ${AISHELL_FOUNDATION}\n"
                                  "COPY motd /etc/motd\n")
    (d / "motd").write_text("hello\n")
    (d / "notes.txt").write_text("not copied\n")
    (d / ".dockerignore").write_text("notes.txt\n")
    return tmp_path


def ext_id(project: Path) -> str:
    ext = extension.find(project, Foundation.from_settings())
    assert ext is not None
    return ext.id


def test_no_dockerfile_means_no_extension(tmp_path):
    assert extension.find(tmp_path, Foundation.from_settings()) is None


def test_configured_but_missing_dockerfile_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        extension.find(tmp_path, Foundation.from_settings(), "docker/Dockerfile")


def test_id_is_stable_and_tagged(project):
    ext = extension.find(project, Foundation.from_settings())
    assert ext is not None
    assert ext.id == ext_id(project)
    assert ext.tag == f"aishell-ext:{ext.id[:32]}"


def test_a_copied_file_changes_the_id(project):
    before = ext_id(project)
    (project / ".aishell" / "motd").write_text("changed\n")
    assert ext_id(project) != before


def test_an_ignored_file_does_not(project):
    before = ext_id(project)
    (project / ".aishell" / "notes.txt").write_text("changed\n")
    assert ext_id(project) == before


def test_the_executable_bit_and_the_foundation_count(project):
    before = ext_id(project)
    (project / ".aishell" / "motd").chmod(0o755)
    assert ext_id(project) != before
    other = extension.find(project, Foundation.from_settings(extra_packages=["jq2"]))
    assert other is not None and other.id != ext_id(project)


def test_files_outside_the_context_do_not_count(project):
    before = ext_id(project)
    (project / "src.py").write_text("print(1)\n")
    assert ext_id(project) == before


@pytest.mark.engine
def test_extension_image_is_built_once_and_used(foundation_tag, project):
    import subprocess
    import uuid

    from tests.conftest import run_aishell

    hello = f"hello {uuid.uuid4()}\n"  # a fresh image for this run
    (project / ".aishell" / "motd").write_text(hello)
    tags = [extension.find(project, Foundation.from_settings()).tag]
    r = run_aishell("exec", "--", "cat", "/etc/motd", cwd=project)
    assert r.returncode == 0, r.stderr
    assert r.stdout == hello
    assert "building the project image" in r.stderr
    again = run_aishell("exec", "--", "cat", "/etc/motd", cwd=project)
    assert again.stdout == hello
    assert "building" not in again.stderr
    (project / ".aishell" / "motd").write_text(f"changed {hello}")
    tags.append(extension.find(project, Foundation.from_settings()).tag)
    changed = run_aishell("exec", "--", "cat", "/etc/motd", cwd=project)
    assert changed.stdout == f"changed {hello}"
    subprocess.run(["docker", "rmi", "-f", *tags], capture_output=True, check=False)
