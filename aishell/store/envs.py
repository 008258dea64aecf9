"""Env volumes and their completion markers: an env is either complete or never used.

An env volume is named ``aishell-env-<first 32 hex digits of the env id>``. 32 hex digits
are 128 bits: a collision between two envs needs about 2^64 of them (the birthday
bound), so it is not a practical concern, while the name stays readable in
``docker volume ls``. The full env id is in the volume's labels and in its marker, and
both are checked before use, so even a prefix collision could never mount a wrong env.

Labels (set at creation, immutable): ``dev.aishell.managed=1``, ``dev.aishell.kind=env``,
``dev.aishell.env-id=<full env id>``, ``dev.aishell.platform=<os/arch>``.

The **completion marker** is ``/.aishell-env.json`` at the volume root (``/tools/…`` in a
sandbox): JSON with the marker format, env id, platform, tree digest, file count and
bytes. It is written last, after the tree is complete, world-readable and digested, by
writing a temporary file and renaming it (atomic within the volume's filesystem), from
inside a container, so it works on remote engines too. It is itself left out of the
tree digest. A volume without a valid marker for its env id is never mounted:
:func:`populate` removes and rebuilds it.

Population (:func:`populate`) follows the store rule of STYLE.md point 6: look up, take
the lock, look up again, build, commit the marker last.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import errno
import io
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aishell import __version__
from aishell.engine import Engine
from aishell.errors import AishellError, EngineConflict, EngineError, EngineNotFound
from aishell.paths import Paths
from aishell.request import ContainerRequest, Mount
from aishell.store import storelock, tarstream
from aishell.store.tarstream import TarError, TarReader
from aishell.store.treedigest import ChunkReader, TreeDigest, TreeDigestError, digest_directory, digest_tar

if TYPE_CHECKING:
    from aishell.store.envlock import WaitHook

VOLUME_PREFIX = "aishell-env-"
ID_PREFIX_LEN = 32
MOUNT = "/tools"
MARKER_NAME = ".aishell-env.json"
MARKER_FORMAT = 1
LOG_TAIL = 20  # lines of a failed step's output shown with the error
_ENV_ID = re.compile(r"[0-9a-f]{32,128}")


class PopulateFailed(AishellError):
    """An install step failed; the half-built volume was removed."""

    def __init__(self, message: str, *, log: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.log = log


def volume_name(env_id: str) -> str:
    """The env volume of ``env_id`` (see the module docstring for the prefix length)."""
    if not _ENV_ID.fullmatch(env_id):
        raise ValueError(f"not an env id: {env_id!r}")
    return VOLUME_PREFIX + env_id[:ID_PREFIX_LEN]


def env_labels(env_id: str, platform: str) -> dict[str, str]:
    return {
        "dev.aishell.managed": "1",
        "dev.aishell.kind": "env",
        "dev.aishell.env-id": env_id,
        "dev.aishell.platform": platform,
    }


@dataclass(frozen=True)
class Marker:
    """The completion marker of an env volume."""

    env_id: str
    platform: str
    tree_digest: str
    files: int
    bytes: int
    format: int = MARKER_FORMAT
    created: str = ""
    aishell: str = __version__

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=2) + "\n"

    @classmethod
    def parse(cls, text: str | builtins.bytes) -> Marker | None:
        """The marker in ``text``, or None when it is not a valid marker of a known format."""
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("format") != MARKER_FORMAT:
            return None
        try:
            marker = cls(
                env_id=str(data["env_id"]),
                platform=str(data["platform"]),
                tree_digest=str(data["tree_digest"]),
                files=int(data["files"]),
                bytes=int(data["bytes"]),
                format=MARKER_FORMAT,
                created=str(data.get("created", "")),
                aishell=str(data.get("aishell", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None
        if not re.fullmatch(r"[0-9a-f]{64}", marker.tree_digest):
            return None
        return marker

    def matches(self, digest: TreeDigest) -> bool:
        return (self.tree_digest, self.files, self.bytes) == (
            digest.digest, digest.files, digest.bytes)


@dataclass(frozen=True)
class InstallStep:
    """One command run in a container with the env volume mounted read-write at /tools.

    ``mounts`` add what the step needs (the download cache read-only, the CA bundle);
    ``env`` values travel in the API request, never in a command line.
    """

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    network: str | None = "none"
    workdir: str | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class PopulateResult:
    volume: str
    marker: Marker
    built: bool
    seconds: float


def helper_image(engine: Engine) -> str:
    """A local image to run helper containers from: the newest foundation image."""
    images = engine.list_images({"dev.aishell.kind": "foundation"})
    tagged = [i for i in images if [t for t in i.get("RepoTags") or [] if "<none>" not in t]]
    if not tagged:
        raise AishellError("no aishell foundation image is available to read env volumes",
                           hint="run `aishell build` (or `aishell sync`) first")
    newest = max(tagged, key=lambda i: int(i.get("Created", 0)))
    return str(next(t for t in newest["RepoTags"] if "<none>" not in t))


def read_marker(engine: Engine, volume: str, *, image: str,
                labels: Mapping[str, str] | None = None,
                via: Literal["auto", "engine"] = "auto") -> Marker | None:
    """The marker inside ``volume``, or None when it has none (or an invalid one).

    Read from the volume's host directory when it is readable here (a few ms), else
    through a helper container (about 50 ms).
    """
    host = engine.volume_host_path(volume) if via == "auto" else None
    if host is not None:
        readable, marker = _host_marker(host)
        if readable:
            return marker
    try:
        with engine.volume_archive(volume, image=image, labels=labels, path=MARKER_NAME) as (
            chunks, _root
        ):
            reader = TarReader(io.BufferedReader(ChunkReader(chunks)))
            content = bytearray()
            for member in reader:
                if member.kind != tarstream.REGULAR:
                    return None
                reader.stream_content(content.extend)
                break
    except (EngineNotFound, TarError):
        return None
    return Marker.parse(bytes(content))


def _host_marker(host: Path) -> tuple[bool, Marker | None]:
    """(readable here, the marker) from the volume's host directory."""
    try:
        # Never follow a symlink planted in the volume out to a file of this host.
        fd = os.open(host / MARKER_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return True, None
    except OSError as exc:
        return exc.errno == errno.ELOOP, None  # a symlink is no marker
    with os.fdopen(fd, "rb") as f:
        return True, Marker.parse(f.read(1 << 20))


def is_complete(engine: Engine, env_id: str, *, image: str | None = None,
                labels: Mapping[str, str] | None = None) -> Marker | None:
    """The marker of ``env_id``'s volume when the volume may be mounted, else None.

    Complete means: the volume exists, its labels say it is aishell's env volume for
    exactly this env id, and it holds a valid marker for this env id. Costs two volume
    inspects over the socket and, when the engine is not local, one helper container.
    """
    name = volume_name(env_id)
    info = engine.volume_inspect(name)
    if info is None or not _labels_match(info, env_id):
        return None
    marker = read_marker(engine, name, image=image or helper_image(engine), labels=labels)
    if marker is None or marker.env_id != env_id:
        return None
    return marker


def _labels_match(info: Mapping[str, Any], env_id: str) -> bool:
    labels = info.get("Labels") or {}
    return (labels.get("dev.aishell.managed") == "1" and labels.get("dev.aishell.kind") == "env"
            and labels.get("dev.aishell.env-id") == env_id)


def compute_digest(engine: Engine, volume: str, *, image: str,
                   labels: Mapping[str, str] | None = None,
                   via: Literal["auto", "engine", "host"] = "auto") -> TreeDigest:
    """The tree digest of ``volume`` (without its marker).

    ``engine`` reads the volume as a tar stream through a helper container (works
    everywhere, about the speed the engine streams: ~200 MB/s here); ``host`` walks the
    volume's directory when the engine is local and it is readable (about 8x faster);
    ``auto`` tries the host first and falls back to the engine. Both give the same digest.
    """
    if via != "engine":
        host = engine.volume_host_path(volume)
        if host is not None:
            try:
                return digest_directory(host, exclude=(MARKER_NAME,))
            except TreeDigestError:
                if via == "host":
                    raise
        elif via == "host":
            raise AishellError(f"the directory of volume {volume} is not readable here")
    with engine.volume_archive(volume, image=image, labels=labels) as (chunks, root):
        return digest_tar(chunks, strip=root, exclude=(MARKER_NAME,))


def populate(
    engine: Engine,
    env_id: str,
    platform: str,
    steps: Sequence[InstallStep],
    *,
    paths: Paths,
    image: str,
    extra_labels: Mapping[str, str] | None = None,
    force: bool = False,
    on_wait: WaitHook | None = None,
    on_step: Callable[[str], None] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> PopulateResult:
    """Make ``env_id``'s volume complete, building it with ``steps`` unless it already is.

    Takes the store lock shared and the per-env lock, re-checks, then (re)creates the
    volume, runs every step with the volume read-write at /tools, makes the tree
    world-readable, digests it through the engine and writes the marker last.

    Args:
        engine: the engine.
        env_id: the full env id.
        platform: ``os/arch`` the env is for (a label and part of the marker).
        steps: the install steps, run in order, each in a fresh container of ``image``.
        paths: host paths (the locks live under the state directory).
        image: the image every population container runs (the foundation image).
        extra_labels: added to the volume and every container (tests mark theirs).
        force: rebuild even when the volume is complete.
        on_wait: told when another process holds a lock we wait for.
        on_step: told the name of each step as it starts.
        on_line: every output line of the steps.

    Raises:
        PopulateFailed: a step exited non-zero; the half-built volume is removed.
        EngineConflict: ``force`` on a volume a container still uses.
    """
    extra = dict(extra_labels or {})
    started = time.monotonic()
    name = volume_name(env_id)
    from aishell.store.envlock import env_lock  # noqa: PLC0415 - filelock costs ~15 ms; only builds lock

    with storelock.shared(paths, on_wait=on_wait), env_lock(paths, env_id, on_wait):
        marker = None if force else is_complete(engine, env_id, image=image, labels=extra)
        if marker is not None:
            return PopulateResult(name, marker, False, time.monotonic() - started)
        _remove_leftovers(engine, env_id)
        _remove_volume(engine, name)
        engine.create_volume(name, {**env_labels(env_id, platform), **extra})
        try:
            marker = _build(engine, env_id, platform, steps, image=image, labels=extra,
                            on_step=on_step, on_line=on_line)
        except BaseException:
            # This run created the volume and it holds no marker: never leave it behind.
            with contextlib.suppress(EngineError):
                _remove_leftovers(engine, env_id)
                engine.remove_volume(name)
            raise
    return PopulateResult(name, marker, True, time.monotonic() - started)


def _remove_leftovers(engine: Engine, env_id: str) -> None:
    """Remove population and helper containers of ``env_id``'s volume left by a killed
    process: they would keep the volume from being removed.

    Called with the per-env lock held, so no live population of this env owns them.
    """
    leftovers = engine.list_containers({"dev.aishell.kind": "populate",
                                        "dev.aishell.env-id": env_id})
    leftovers += engine.list_containers({"dev.aishell.kind": "helper",
                                         "dev.aishell.volume": volume_name(env_id)})
    for container in leftovers:
        with contextlib.suppress(EngineNotFound):
            engine.remove_container(str(container["Id"]), force=True)


def _remove_volume(engine: Engine, name: str) -> None:
    try:
        engine.remove_volume(name)
    except EngineConflict as exc:
        raise EngineConflict(
            f"cannot rebuild env volume {name}: a container still uses it",
            hint=f"`docker ps -a --filter volume={name}` shows it; stop and remove it, "
            "then run again",
        ) from exc


_FINALIZE = "chmod -R a+rX /tools"
# Flush the tree before the marker exists, then write the marker by rename: a crash
# (even of the machine) leaves either no marker or a complete one over a complete tree.
_WRITE_MARKER = (
    "set -e; sync -f /tools; "
    'printf "%s" "$AISHELL_MARKER" > /tools/.aishell-env.json.tmp; '
    "sync /tools/.aishell-env.json.tmp; "
    "mv -f /tools/.aishell-env.json.tmp /tools/" + MARKER_NAME + "; sync -f /tools"
)


def _build(engine: Engine, env_id: str, platform: str, steps: Sequence[InstallStep], *,
           image: str, labels: Mapping[str, str], on_step: Callable[[str], None] | None,
           on_line: Callable[[str], None] | None) -> Marker:
    name = volume_name(env_id)
    builtin = [InstallStep("make the env world-readable", ("sh", "-c", _FINALIZE))]
    for step in [*steps, *builtin]:
        _run_step(engine, env_id, step, image=image, labels=labels, on_step=on_step,
                  on_line=on_line)
    if on_step is not None:
        on_step("compute the tree digest")
    digest = compute_digest(engine, name, image=image, labels=labels)
    marker = Marker(env_id=env_id, platform=platform, tree_digest=digest.digest,
                    files=digest.files, bytes=digest.bytes,
                    created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    commit_marker(engine, marker, image=image, labels=labels, on_step=on_step, on_line=on_line)
    return marker


def commit_marker(engine: Engine, marker: Marker, *, image: str, labels: Mapping[str, str],
                  on_step: Callable[[str], None] | None = None,
                  on_line: Callable[[str], None] | None = None) -> None:
    """Write ``marker`` into its env volume, last and atomically (the tree is complete)."""
    _run_step(engine, marker.env_id,
              InstallStep("write the completion marker", ("sh", "-c", _WRITE_MARKER),
                          env={"AISHELL_MARKER": marker.to_json()}),
              image=image, labels=labels, on_step=on_step, on_line=on_line)


def _run_step(engine: Engine, env_id: str, step: InstallStep, *, image: str,
              labels: Mapping[str, str], on_step: Callable[[str], None] | None,
              on_line: Callable[[str], None] | None) -> None:
    if on_step is not None:
        on_step(step.name)
    import uuid  # noqa: PLC0415 - only when populating (uuid imports platform, ~2 ms)

    req = ContainerRequest(
        image=image,
        command=step.command,
        name=f"aishell-populate-{env_id[:12]}-{uuid.uuid4().hex[:8]}",
        mounts=(Mount(volume_name(env_id), MOUNT, kind="volume", no_copy=True), *step.mounts),
        env=dict(step.env),
        labels={"dev.aishell.managed": "1", "dev.aishell.kind": "populate",
                "dev.aishell.env-id": env_id, **labels},
        network=step.network,
        workdir=step.workdir,
        interactive=False,
        entrypoint=(),
    )
    code, log = engine.run_to_completion(req, timeout=step.timeout, on_line=on_line)
    if code != 0:
        tail = "\n".join(log.splitlines()[-LOG_TAIL:])
        raise PopulateFailed(
            f"building env {env_id[:12]} failed: step '{step.name}' exited with code {code}",
            log=tail,
            hint=f"the last {LOG_TAIL} lines of the step's output are shown above (`-v` streams "
            "all of it); nothing half-built was kept, so running again starts from scratch",
        )
