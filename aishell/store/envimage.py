"""An env as an OCI image: exported from a complete volume, restored into a fresh one.

The image has one layer, the canonical tar of the env tree at ``/tools``
(:mod:`aishell.store.layer`), no command, and labels that say what it is:

``dev.aishell.managed=1``, ``dev.aishell.kind=env-image``, ``dev.aishell.env-id``,
``dev.aishell.platform``, ``dev.aishell.tree-digest``, ``dev.aishell.files``,
``dev.aishell.bytes``, ``dev.aishell.version`` (the aishell that exported it).

Locally it is ``aishell-env:<env id>``, the **restore archive**: a store item (gc keeps it
while a root reaches its env id) from which a removed env volume comes back without npm.
In a registry (a *substituter*) it is ``<substituter>/env:<env id>``.

Restoring never trusts the image: the fresh volume is filled from it, then its tree digest
is computed and compared with the label; only a match gets the completion marker, so a mismatched or
half-copied volume is never mounted. A registry that can be written to can still serve
a tree that matches its own label: see docs/security.md for what that trusts.

Filling the volume: when this process can write the volume's directory and read the
image's one layer directory on the same file system (a local rootful engine with the
overlay driver, or a rootless one), the tree is hard-linked from the layer — no byte is
copied, and the env and its archive share their disk space. The files are never written
through either name: images are immutable and env volumes are only ever mounted
read-only (a volume removed later, or the image, only drops its names). Otherwise the
engine copies: a container created from the image with the fresh volume at ``/tools``,
never started, makes the engine copy the image's ``/tools`` into the empty volume.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aishell import __version__
from aishell.engine import Engine
from aishell.errors import AishellError, EngineError, EngineNotFound
from aishell.paths import Paths
from aishell.request import ContainerRequest, Mount
from aishell.store import envs, layer, storelock
from aishell.store.envs import MARKER_NAME, Marker
from aishell.store.tarstream import TarReader
from aishell.store.treedigest import ChunkReader

KIND = "env-image"
LOCAL_REPO = "aishell-env"
L_ENV_ID = "dev.aishell.env-id"
L_PLATFORM = "dev.aishell.platform"
L_DIGEST = "dev.aishell.tree-digest"
L_FILES = "dev.aishell.files"
L_BYTES = "dev.aishell.bytes"
L_VERSION = "dev.aishell.version"


class Refused(AishellError):
    """An image that is not (or does not hold) the env asked for."""


def local_ref(env_id: str) -> str:
    return f"{LOCAL_REPO}:{env_id}"


def remote_ref(substituter: str, env_id: str) -> str:
    """``<substituter>/env:<env id>``; a substituter is ``host[:port][/path]``."""
    return f"{substituter.strip().rstrip('/')}/env:{env_id}"


def image_labels(marker: Marker) -> dict[str, str]:
    return {"dev.aishell.managed": "1", "dev.aishell.kind": KIND, L_ENV_ID: marker.env_id,
            L_PLATFORM: marker.platform, L_DIGEST: marker.tree_digest,
            L_FILES: str(marker.files), L_BYTES: str(marker.bytes), L_VERSION: __version__}


@dataclass(frozen=True)
class Exported:
    ref: str
    image_id: str
    layer: str  # the layer's diff id (sha256 of the canonical tar)
    seconds: float


def _label_change(key: str, value: str) -> str:
    return f'LABEL "{key}"="{value}"'


@contextlib.contextmanager
def _entries(engine: Engine, volume: str, image: str,
             labels: Mapping[str, str]) -> Iterator[Iterator[layer.Entry]]:
    host = engine.volume_host_path(volume)
    if host is not None:
        yield layer.host_entries(host, exclude=(MARKER_NAME,))
        return
    with engine.volume_archive(volume, image=image, labels=labels) as (chunks, root):
        reader = TarReader(io.BufferedReader(ChunkReader(chunks), 1 << 20))
        yield layer.stream_entries(reader, strip=root, exclude=(MARKER_NAME,))


def export(engine: Engine, marker: Marker, *, image: str, ref: str | None = None,
           labels: Mapping[str, str] | None = None) -> Exported:
    """Make the complete env volume of ``marker`` an image (``ref``, default the local one).

    Args:
        engine: the engine.
        marker: the volume's completion marker (checked by the caller).
        image: a local image for helper containers (the foundation).
        ref: the image reference to create.
        labels: extra labels for the image and helper containers (tests mark theirs).
    """
    started = time.monotonic()
    ref = ref or local_ref(marker.env_id)
    extra = dict(labels or {})
    changes = [_label_change(k, v) for k, v in {**image_labels(marker), **extra}.items()]
    with _entries(engine, envs.volume_name(marker.env_id), image, extra) as entries:
        image_id = engine.import_image(layer.canonical_tar(entries), ref=ref, changes=changes,
                                       platform=marker.platform)
    info = engine.image_inspect(image_id) or {}
    layers = (info.get("RootFS") or {}).get("Layers") or [""]
    return Exported(ref, image_id, str(layers[-1]), time.monotonic() - started)


def archive(engine: Engine, marker: Marker, *, image: str,
            labels: Mapping[str, str] | None = None) -> Exported | None:
    """Keep the env as its local restore archive, unless an archive of it is there already."""
    have = engine.image_inspect(local_ref(marker.env_id))
    if have is not None and check_labels(have, marker.env_id, marker.platform) is None:
        return None
    return export(engine, marker, image=image, labels=labels)


def check_labels(info: Mapping[str, Any], env_id: str, platform: str) -> str | None:
    """Why the image ``info`` is not an env image of ``env_id`` for ``platform`` (None: it is)."""
    lab = (info.get("Config") or {}).get("Labels") or {}
    if lab.get("dev.aishell.kind") != KIND:
        return "it is not an aishell env image"
    if lab.get(L_ENV_ID) != env_id:
        return f"it is labelled as env {str(lab.get(L_ENV_ID))[:12]}, not {env_id[:12]}"
    arch = f"{info.get('Os', '?')}/{info.get('Architecture', '?')}"
    if lab.get(L_PLATFORM) != platform or arch != platform:
        return f"it is for {lab.get(L_PLATFORM)} (image {arch}), not {platform}"
    try:
        int(lab[L_FILES]), int(lab[L_BYTES])
    except (KeyError, ValueError):
        return "its labels have no file count and size"
    if len(str(lab.get(L_DIGEST, ""))) != 64:
        return "its labels have no tree digest"
    return None


def restore(engine: Engine, source: str, env_id: str, platform: str, *, paths: Paths,
            image: str, source_name: str = "", labels: Mapping[str, str] | None = None,
            on_wait: Callable[[str], None] | None = None) -> Marker:
    """Fill ``env_id``'s volume from the local image ``source`` and check its tree digest.

    Takes the store lock shared and the per-env lock (as a build does), re-checks, then
    recreates the volume, lets the engine copy the image's ``/tools`` into it, digests it
    and writes the marker only when the digest, file count and size equal the labels.

    Args:
        source: a local image reference (pulled already).
        source_name: where it came from, recorded in the marker's volume label.
        image: a local image for helper containers (the foundation).

    Raises:
        Refused: the image is no env image of ``env_id`` for ``platform``, or what it
            holds does not match its labels (the volume is removed again).
    """
    extra = dict(labels or {})
    info = engine.image_inspect(source)
    if info is None:
        raise Refused(f"image {source} is not on the engine")
    reason = check_labels(info, env_id, platform)
    if reason is not None:
        raise Refused(f"{source} is refused: {reason}")
    lab = info["Config"]["Labels"]
    from aishell.store.envlock import env_lock  # noqa: PLC0415 - filelock: only builds

    name = envs.volume_name(env_id)
    with storelock.shared(paths, on_wait=on_wait), env_lock(paths, env_id, on_wait):
        marker = envs.is_complete(engine, env_id, image=image, labels=extra)
        if marker is not None:
            return marker
        envs._remove_leftovers(engine, env_id)
        envs._remove_volume(engine, name)
        vol_labels = {**envs.env_labels(env_id, platform), **extra}
        if source_name:
            vol_labels["dev.aishell.source"] = source_name
        engine.create_volume(name, vol_labels)
        try:
            _fill(engine, info, source, env_id, extra)
            digest = envs.compute_digest(engine, name, image=image, labels=extra)
            want = (str(lab[L_DIGEST]), int(lab[L_FILES]), int(lab[L_BYTES]))
            if (digest.digest, digest.files, digest.bytes) != want:
                raise Refused(
                    f"{source} is refused: its tree digest is {digest.digest[:16]} "
                    f"({digest.files} files), its label says {want[0][:16]} ({want[1]} files)")
            marker = Marker(env_id=env_id, platform=platform, tree_digest=digest.digest,
                            files=digest.files, bytes=digest.bytes,
                            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            envs.commit_marker(engine, marker, image=image, labels=extra)
        except BaseException:
            with contextlib.suppress(EngineError):
                envs._remove_leftovers(engine, env_id)
                engine.remove_volume(name)
            raise
    return marker


def _fill(engine: Engine, info: Mapping[str, Any], source: str, env_id: str,
          labels: Mapping[str, str]) -> str:
    """Fill the fresh, empty volume of ``env_id`` from the image; "linked" or "copied"."""
    layer_dir = engine.single_layer_dir(info)
    volume_dir = engine.volume_host_path(envs.volume_name(env_id)) if layer_dir else None
    if layer_dir is not None and volume_dir is not None:
        try:
            if (layer_dir.stat().st_dev == volume_dir.stat().st_dev
                    and os.access(volume_dir, os.W_OK)):
                _link_tree(layer_dir / layer.ROOT.decode(), volume_dir)
                return "linked"
        except OSError:
            _empty(volume_dir)  # the engine copies only into an empty volume
    _copy_in(engine, source, env_id, labels)
    return "copied"


def _link_tree(src: Path, dst: Path) -> None:
    """Recreate the tree ``src`` at ``dst``: directories made, symlinks recreated, regular
    files hard-linked. Anything else (a device node, a whiteout) is an OSError: the
    caller falls back to the engine's copy, whose digest then refuses it."""
    with os.scandir(src) as it:
        entries = list(it)
    for entry in entries:
        here, there = Path(entry.path), dst / entry.name
        if entry.is_symlink():
            there.symlink_to(here.readlink())
        elif entry.is_dir(follow_symlinks=False):
            there.mkdir()
            there.chmod(0o755)  # as the layer says, whatever the umask
            _link_tree(here, there)
        elif entry.is_file(follow_symlinks=False):
            there.hardlink_to(here)
        else:
            raise OSError(f"{here}: not a file, directory or symlink")


def _empty(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _copy_in(engine: Engine, source: str, env_id: str, labels: Mapping[str, str]) -> None:
    """The engine copies the image's /tools into the (empty) volume when a container that
    mounts it is created; the container is never started and removed at once."""
    req = ContainerRequest(
        image=source, command=("/nonexistent",),
        name=f"aishell-populate-{env_id[:12]}-{uuid.uuid4().hex[:8]}",
        mounts=(Mount(envs.volume_name(env_id), envs.MOUNT, kind="volume"),),
        labels={"dev.aishell.managed": "1", "dev.aishell.kind": "populate",
                "dev.aishell.env-id": env_id, **labels},
        network="none", interactive=False, init=False, entrypoint=(),
    )
    container = engine.create_container(req)
    with contextlib.suppress(EngineNotFound):
        engine.remove_container(container, force=True)
