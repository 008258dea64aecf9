"""Roots and marking: what keeps each store item alive (SPEC section 7).

Roots, in the order they are reported:

- ``project``: a recorded project whose directory and ``aishell.lock`` exist; it keeps the
  env ids the lock names *now* (read from the file, not from the index) and the images
  the project last recorded.
- ``generation``: the last N locks a project synced, kept for ``aishell rollback`` (the
  one whose content is the lock on disk is not listed: the project root keeps the same).
- ``pin``: a named root (``aishell pin``).
- ``container``: any container, running or stopped, that mounts the volume or runs the
  image (whoever created it).

A project whose directory is gone, or whose lock was deleted, is a *dangling* root: it
keeps nothing, and gc drops it from the index. A lock that cannot be parsed (say, mid
merge-conflict) keeps what the index last recorded for it, with a warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aishell.errors import AishellError
from aishell.lock import refs as lockrefs
from aishell.paths import Paths
from aishell.store.index import ImageRef, Index, ProjectRecord, lock_digest, read_lock_copy
from aishell.store.inventory import Item


@dataclass(frozen=True)
class Root:
    kind: str  # project | generation | pin | container
    name: str  # the project path, "path#generation", the pin or the container name
    env_ids: frozenset[str] = frozenset()
    image_ids: frozenset[str] = frozenset()
    image_tags: frozenset[str] = frozenset()
    volumes: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class Dangling:
    """A recorded project that no longer keeps anything alive."""

    path: str
    reason: str


@dataclass(frozen=True)
class RootSet:
    roots: tuple[Root, ...]
    dangling: tuple[Dangling, ...]
    lock_bytes: tuple[bytes, ...]  # every live lock (for the download cache's references)
    warnings: tuple[str, ...]


def _image_fields(images: Iterable[ImageRef]) -> dict[str, frozenset[str]]:
    refs = list(images)
    return {"image_ids": frozenset(i.id for i in refs if i.id),
            "image_tags": frozenset(i.tag for i in refs if i.tag)}


def _project_root(record: ProjectRecord) -> tuple[Root | None, Dangling | None, bytes | None, str | None]:
    """The project's root (or why it dangles), its lock bytes, and a warning."""
    if not Path(record.path).is_dir():
        return None, Dangling(record.path, "project directory no longer exists"), None, None
    lock = Path(record.lock_path)
    try:
        data = lock.read_bytes()
    except FileNotFoundError:
        if record.locked:
            return None, Dangling(record.path, "aishell.lock was deleted"), None, None
        # Never had a lock (plain `aishell shell`): it keeps the images it launched.
        return Root("project", record.path, **_image_fields(record.images)), None, None, None
    try:
        env_ids = lockrefs.env_ids_of(data)
        warning = None
    except lockrefs.LockUnreadable as exc:
        env_ids = set(record.env_ids.values())
        warning = f"{lock} is not valid TOML ({exc}); keeping what the project last synced"
    return Root("project", record.path, env_ids=frozenset(env_ids),
                **_image_fields(record.images)), None, data, warning


def is_dangling(record: ProjectRecord) -> bool:
    return _project_root(record)[1] is not None


def collect(paths: Paths, index: Index, containers: Sequence[Mapping[str, Any]],
            *, keep_generations: int) -> RootSet:
    """Every root, from the index, the projects' locks on disk and the engine's containers.

    Args:
        paths: where recorded lock copies live.
        index: the host index.
        containers: every container (``Engine.list_containers({}, all=True)``).
        keep_generations: how many of each project's newest generations are roots.
    """
    roots: list[Root] = []
    dangling: list[Dangling] = []
    locks: list[bytes] = []
    warnings: list[str] = []
    for key in sorted(index.projects):
        record = index.projects[key]
        root, gone, data, warning = _project_root(record)
        if gone is not None:
            dangling.append(gone)
            continue
        if root is not None:
            roots.append(root)
        if data is not None:
            locks.append(data)
        if warning:
            warnings.append(warning)
        newest = sorted(record.generations, key=lambda g: g.number)
        kept = newest[-keep_generations:] if keep_generations > 0 else []
        on_disk = lock_digest(data) if data is not None and warning is None else None
        for gen in kept:
            if gen.lock_digest == on_disk:
                continue  # the lock on disk is this generation: the project root covers it
            roots.append(Root("generation", f"{record.path}#{gen.number}",
                              env_ids=frozenset(gen.env_ids.values()), **_image_fields(gen.images)))
            locks.append(_lock_copy(paths, gen.lock_digest, warnings))
    for pin in sorted(index.pins.values(), key=lambda p: p.name):
        roots.append(Root("pin", pin.name, env_ids=frozenset(pin.env_ids),
                          **_image_fields(pin.images)))
        if pin.lock_digest:
            locks.append(_lock_copy(paths, pin.lock_digest, warnings))
    for c in containers:
        names = [str(n).lstrip("/") for n in c.get("Names") or ()]
        volumes = frozenset(str(m["Name"]) for m in c.get("Mounts") or ()
                            if m.get("Type") == "volume" and m.get("Name"))
        image = str(c.get("ImageID") or "")
        roots.append(Root("container", names[0] if names else str(c.get("Id", ""))[:12],
                          image_ids=frozenset({image} if image else ()), volumes=volumes))
    return RootSet(tuple(roots), tuple(dangling), tuple(b for b in locks if b), tuple(warnings))


def _lock_copy(paths: Paths, digest: str, warnings: list[str]) -> bytes:
    try:
        return read_lock_copy(paths, digest)
    except AishellError as exc:  # a lost copy only weakens the cache's references
        warnings.append(str(exc))
        return b""


def reaches(root: Root, item: Item) -> bool:
    if item.type == "volume":
        if item.key in root.volumes:
            return True
        # A volume is named by a prefix of its env id; the label carries the whole id.
        return item.kind == "env" and any(
            e == item.id or (len(item.id) >= 12 and e.startswith(item.id)) for e in root.env_ids
        )
    if item.kind == "env-image" and item.labels.get("dev.aishell.env-id") in root.env_ids:
        return True  # an env's restore archive lives as long as the env id is a root's
    return item.id in root.image_ids or any(t in root.image_tags for t in item.tags)


def mark(items: Iterable[Item], roots: Iterable[Root]) -> dict[str, tuple[Root, ...]]:
    """item key -> the roots that reach it (an empty tuple: unreachable)."""
    root_list = list(roots)
    return {item.key: tuple(r for r in root_list if reaches(r, item)) for item in items}
