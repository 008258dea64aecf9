"""Env images on the real engine: export, a reproducible layer, restore with its digest check."""

from __future__ import annotations

import contextlib
import secrets
import subprocess

import pytest

from aishell.engine import Engine
from aishell.errors import EngineError
from aishell.paths import default_paths
from aishell.store import envimage
from aishell.store.envs import InstallStep, is_complete, populate, volume_name
from tests.fixtures_store import TEST_LABELS

pytestmark = pytest.mark.engine

INSTALL = (
    "mkdir -p /tools/bin /tools/lib/empty && printf '#!/bin/sh\\necho hi\\n' > /tools/bin/hi "
    "&& chmod 700 /tools/bin/hi && ln /tools/bin/hi /tools/bin/hi-too "
    "&& echo data > /tools/lib/data && ln -s bin/hi /tools/hi"
)


def remove_images(engine: Engine, *refs: str) -> None:
    for ref in refs:
        with contextlib.suppress(EngineError):
            engine.remove_image(ref, force=True)


@pytest.fixture
def env_id(engine: Engine):
    value = secrets.token_hex(32)
    yield value
    for c in engine.list_containers({"dev.aishell.env-id": value}):
        engine.remove_container(str(c["Id"]), force=True)
    engine.remove_volume(volume_name(value))
    remove_images(engine, envimage.local_ref(value), f"aishell-test-tampered:{value[:16]}")


def build(engine: Engine, env_id: str, image: str, command: str = INSTALL):
    return populate(engine, env_id, "linux/amd64", [InstallStep("install", ("sh", "-c", command))],
                    paths=default_paths(), image=image, extra_labels=TEST_LABELS).marker


def test_export_labels_the_image_and_two_exports_give_the_same_layer(engine, env_id, foundation_tag):
    marker = build(engine, env_id, foundation_tag)
    first = envimage.export(engine, marker, image=foundation_tag, labels=TEST_LABELS)
    info = engine.image_inspect(first.ref)
    assert info is not None and envimage.check_labels(info, env_id, "linux/amd64") is None
    labels = info["Config"]["Labels"]
    assert labels["dev.aishell.tree-digest"] == marker.tree_digest
    assert labels["dev.aishell.files"] == str(marker.files)
    assert len(info["RootFS"]["Layers"]) == 1
    # A second export through the engine's archive stream (not the host directory) of a
    # rebuilt volume gives the same layer: the layer is a function of the tree.
    engine.remove_volume(volume_name(env_id))
    again = build(engine, env_id, foundation_tag)
    assert again.tree_digest == marker.tree_digest
    engine.remove_image(first.ref)
    original = engine.volume_host_path
    engine.volume_host_path = lambda _name: None  # type: ignore[method-assign]
    try:
        second = envimage.export(engine, again, image=foundation_tag, labels=TEST_LABELS)
    finally:
        engine.volume_host_path = original  # type: ignore[method-assign]
    assert second.layer == first.layer


def test_restore_fills_a_removed_volume_and_checks_the_digest(engine, env_id, foundation_tag):
    marker = build(engine, env_id, foundation_tag)
    envimage.export(engine, marker, image=foundation_tag, labels=TEST_LABELS)
    engine.remove_volume(volume_name(env_id))
    restored = envimage.restore(engine, envimage.local_ref(env_id), env_id, "linux/amd64",
                                paths=default_paths(), image=foundation_tag, labels=TEST_LABELS)
    assert (restored.tree_digest, restored.files, restored.bytes) == (
        marker.tree_digest, marker.files, marker.bytes)
    assert is_complete(engine, env_id, image=foundation_tag) is not None
    r = subprocess.run(["docker", "run", "--rm", "--label", "dev.aishell.test=1", "--network",
                        "none", "--user", "4321", "--entrypoint", "/tools/bin/hi-too", "--mount",
                        f"type=volume,source={volume_name(env_id)},target=/tools,readonly",
                        foundation_tag], capture_output=True, text=True, check=False)
    assert r.stdout.strip() == "hi", r.stderr


def test_a_restore_links_the_layer_and_the_engines_copy_gives_the_same_env(
        engine, env_id, foundation_tag):
    marker = build(engine, env_id, foundation_tag)
    exported = envimage.export(engine, marker, image=foundation_tag, labels=TEST_LABELS)
    layer_dir = engine.single_layer_dir(engine.image_inspect(exported.ref) or {})
    assert layer_dir is not None  # the local engine of the tests: the linked restore
    for fill in ("linked", "copied"):
        engine.remove_volume(volume_name(env_id))
        original = engine.single_layer_dir
        if fill == "copied":  # what a remote engine or another storage driver gets
            engine.single_layer_dir = lambda _info: None  # type: ignore[method-assign]
        try:
            restored = envimage.restore(engine, exported.ref, env_id, "linux/amd64",
                                        paths=default_paths(), image=foundation_tag,
                                        labels=TEST_LABELS)
        finally:
            engine.single_layer_dir = original  # type: ignore[method-assign]
        assert restored.tree_digest == marker.tree_digest
        host = engine.volume_host_path(volume_name(env_id))
        assert host is not None
        shared = (host / "bin" / "hi").stat().st_ino == (layer_dir / "tools/bin/hi").stat().st_ino
        assert shared == (fill == "linked")
        assert oct((host / "lib").stat().st_mode & 0o777) == oct(0o755)


def test_a_tampered_image_is_refused_and_leaves_no_volume(engine, env_id, foundation_tag):
    marker = build(engine, env_id, foundation_tag)
    exported = envimage.export(engine, marker, image=foundation_tag, labels=TEST_LABELS)
    tampered = f"aishell-test-tampered:{env_id[:16]}"
    # Same labels, one file changed: what a writable registry could serve.
    dockerfile = f"FROM {exported.ref}\nCOPY --from={foundation_tag} /etc/hostname /tools/lib/data\n"
    subprocess.run(["docker", "build", "-q", "-t", tampered, "-"], check=True, capture_output=True,
                   input=dockerfile.encode())
    engine.remove_volume(volume_name(env_id))
    with pytest.raises(envimage.Refused, match="tree digest"):
        envimage.restore(engine, tampered, env_id, "linux/amd64", paths=default_paths(),
                         image=foundation_tag, labels=TEST_LABELS)
    assert engine.volume_inspect(volume_name(env_id)) is None


def test_an_image_for_another_env_or_platform_is_refused(engine, env_id, foundation_tag):
    marker = build(engine, env_id, foundation_tag)
    exported = envimage.export(engine, marker, image=foundation_tag, labels=TEST_LABELS)
    with pytest.raises(envimage.Refused, match="not linux/arm64"):
        envimage.restore(engine, exported.ref, env_id, "linux/arm64", paths=default_paths(),
                         image=foundation_tag, labels=TEST_LABELS)
    other = secrets.token_hex(32)
    with pytest.raises(envimage.Refused, match="labelled as env"):
        envimage.restore(engine, exported.ref, other, "linux/amd64", paths=default_paths(),
                         image=foundation_tag, labels=TEST_LABELS)
