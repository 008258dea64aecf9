from __future__ import annotations

import pytest

from aishell.engine import create_body
from aishell.request import ContainerRequest, Mount, Port


def test_create_body_matches_the_request():
    req = ContainerRequest(
        image="img", command=("claude", "--version"), name="aishell-x-claude", workdir="/p",
        mounts=(Mount("/p", "/p"), Mount("env", "/tools", read_only=True, kind="volume",
                                          no_copy=True)),
        env={"A": "1"}, env_passthrough=("API_KEY", "UNSET_KEY"), labels={"l": "v"},
        ports=(Port("8080", "80", "127.0.0.1"),), tty=True, hostname="aishell",
        security_opts=("no-new-privileges",),
    )
    body = create_body(req, {"API_KEY": "secret"})
    assert body["Env"] == ["A=1", "API_KEY=secret"]  # unset names are left out, like -e NAME
    assert body["Cmd"] == ["claude", "--version"]
    assert body["Tty"] and body["OpenStdin"] and body["AttachStdin"] and body["StdinOnce"]
    host = body["HostConfig"]
    assert host["AutoRemove"] and host["Init"]
    assert host["Mounts"][1] == {"Type": "volume", "Source": "env", "Target": "/tools",
                                 "ReadOnly": True, "VolumeOptions": {"NoCopy": True}}
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
    assert body["ExposedPorts"] == {"80/tcp": {}}
    assert host["SecurityOpt"] == ["no-new-privileges"]


def test_detached_bodies_attach_nothing():
    body = create_body(ContainerRequest(image="i", detach=True), {})
    assert not body["AttachStdin"] and not body["AttachStdout"] and not body["StdinOnce"]


def test_engine_cli_arguments_need_the_cli():
    with pytest.raises(ValueError, match="docker_args"):
        create_body(ContainerRequest(image="i", extra_args=("--memory=1g",)), {})
