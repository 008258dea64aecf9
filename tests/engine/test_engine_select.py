"""Which engine address aishell talks to: DOCKER_HOST, podman's socket, Docker contexts."""

from __future__ import annotations

import hashlib
import json

import pytest

from aishell.engine.client import PODMAN_ROOTFUL_SOCKET, resolve_host
from aishell.errors import EngineUnavailable


def write_context(config, name: str, host: str) -> None:
    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps(
        {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}}}))


def test_docker_host_wins_over_everything(tmp_path):
    write_context(tmp_path, "remote", "tcp://127.0.0.1:2999")
    env = {"DOCKER_HOST": "unix:///x.sock", "DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "remote"}
    assert resolve_host(None, env) == "unix:///x.sock"
    assert resolve_host("podman", env) == "unix:///x.sock"


def test_podman_setting_uses_container_host_or_its_socket(tmp_path):
    assert resolve_host("podman", {"CONTAINER_HOST": "unix:///p.sock"}) == "unix:///p.sock"
    assert resolve_host("podman", {"XDG_RUNTIME_DIR": str(tmp_path / "none")}) == \
        f"unix://{PODMAN_ROOTFUL_SOCKET}"


def test_the_current_docker_context_is_followed(tmp_path):
    write_context(tmp_path, "remote", "tcp://127.0.0.1:2999")
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "remote"}))
    assert resolve_host(None, {"DOCKER_CONFIG": str(tmp_path)}) == "tcp://127.0.0.1:2999"
    write_context(tmp_path, "other", "unix:///other.sock")
    assert resolve_host(None, {"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "other"}) == \
        "unix:///other.sock"
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "default"}))
    assert resolve_host(None, {"DOCKER_CONFIG": str(tmp_path)}) in (None, f"unix://{PODMAN_ROOTFUL_SOCKET}")


def test_a_missing_context_is_one_clear_error(tmp_path):
    with pytest.raises(EngineUnavailable, match="the Docker context `gone` has no readable endpoint"):
        resolve_host(None, {"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "gone"})
