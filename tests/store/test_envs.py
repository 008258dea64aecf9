"""Env volume naming, labels, the completion marker format, and the one-off container API
arguments (pure logic; the engine tests are in test_envstore_engine.py)."""

from __future__ import annotations

import json

import pytest

from aishell.engine import create_params
from aishell.request import ContainerRequest, Mount, cli_args
from aishell.store.envs import ID_PREFIX_LEN, MARKER_FORMAT, Marker, env_labels, volume_name
from aishell.store.treedigest import TreeDigest

ENV_ID = "0123456789abcdef" * 4


def test_volume_name_uses_a_128_bit_prefix_of_the_env_id():
    assert ID_PREFIX_LEN == 32
    assert volume_name(ENV_ID) == "aishell-env-" + ENV_ID[:32]


@pytest.mark.parametrize("bad", ["", "xyz", "ABCDEF" * 8, "ab" * 8, "../" + "a" * 40])
def test_volume_name_rejects_what_is_not_an_env_id(bad):
    with pytest.raises(ValueError, match="not an env id"):
        volume_name(bad)


def test_env_labels():
    assert env_labels(ENV_ID, "linux/arm64") == {
        "dev.aishell.managed": "1",
        "dev.aishell.kind": "env",
        "dev.aishell.env-id": ENV_ID,
        "dev.aishell.platform": "linux/arm64",
    }


def marker(**changes) -> Marker:
    fields = {"env_id": ENV_ID, "platform": "linux/amd64", "tree_digest": "ab" * 32,
              "files": 3, "bytes": 42, "created": "2026-11-23T00:00:00Z"}
    fields.update(changes)
    return Marker(**fields)


def test_marker_round_trips_through_json():
    m = marker()
    text = m.to_json()
    assert json.loads(text)["format"] == MARKER_FORMAT
    assert Marker.parse(text) == m
    assert Marker.parse(text.encode()) == m


@pytest.mark.parametrize("text", [
    "", "{", "[]", "null",
    '{"format": 2, "env_id": "x", "platform": "p", "tree_digest": "' + "a" * 64
    + '", "files": 1, "bytes": 1}',
    '{"format": 1, "platform": "p", "tree_digest": "' + "a" * 64 + '", "files": 1, "bytes": 1}',
    ('{"format": 1, "env_id": "x", "platform": "p", "tree_digest": "short", "files": 1, '
     '"bytes": 1}'),
    '{"format": 1, "env_id": "x", "platform": "p", "tree_digest": "' + "a" * 64
    + '", "files": "many", "bytes": 1}',
])
def test_invalid_markers_are_no_markers(text):
    assert Marker.parse(text) is None


def test_marker_matches_digest_files_and_bytes():
    m = marker()
    assert m.matches(TreeDigest("ab" * 32, 3, 42))
    assert not m.matches(TreeDigest("ab" * 32, 3, 43))
    assert not m.matches(TreeDigest("cd" * 32, 3, 42))


def test_create_params_carry_mounts_env_labels_and_entrypoint():
    req = ContainerRequest(
        image="img",
        command=("sh", "-c", "true"),
        mounts=(Mount("vol", "/tools", kind="volume", no_copy=True),
                Mount("/host/cache", "/cache", read_only=True)),
        env={"A": "1"},
        env_passthrough=("SECRET", "UNSET"),
        labels={"dev.aishell.kind": "populate"},
        network="none",
        entrypoint=(),
        interactive=False,
    )
    params = create_params(req, {"SECRET": "s3cret"})
    assert params["image"] == "img"
    assert params["command"] == ["sh", "-c", "true"]
    assert params["entrypoint"] == []
    assert params["environment"] == ["A=1", "SECRET=s3cret"]
    assert params["labels"] == {"dev.aishell.kind": "populate"}
    assert params["host_config"]["NetworkMode"] == "none"
    assert params["host_config"]["Mounts"] == [
        {"Target": "/tools", "Source": "vol", "Type": "volume", "ReadOnly": False,
         "VolumeOptions": {"NoCopy": True}},
        {"Target": "/cache", "Source": "/host/cache", "Type": "bind", "ReadOnly": True},
    ]
    assert params["use_config_proxy"] is False


def test_create_params_refuse_what_a_one_off_container_cannot_do():
    with pytest.raises(ValueError, match="tty"):
        create_params(ContainerRequest(image="i", tty=True), {})


def test_cli_args_entrypoint():
    argv = cli_args(ContainerRequest(image="i", command=("a",), entrypoint=("sh", "-c")))
    assert argv[argv.index("--entrypoint") + 1] == "sh"
    assert argv[-3:] == ["i", "-c", "a"]
    cleared = cli_args(ContainerRequest(image="i", command=("a",), entrypoint=()))
    assert cleared[cleared.index("--entrypoint") + 1] == ""
    assert "--entrypoint" not in cli_args(ContainerRequest(image="i"))
