"""The host index: which projects use the store, their generations, and the pins.

It is what the garbage collector marks from (SPEC section 7). One JSON document,
``<state>/index.json``, rewritten atomically (temp file, fsync, ``os.replace``) under a
file lock, so a crash mid-write leaves the previous version and two aishells never lose
each other's records. Lock contents of generations and pins live beside it in
``<state>/lock-copies/<blake3>.lock`` (content-addressed, written before the index row that
names them — the index is committed last).

Callers (``sync``, ``run``, ``lock``) record every use with :func:`record_use`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aishell.errors import AishellError
from aishell.hashing import derive
from aishell.paths import Paths
from aishell.store import indexfile

# Re-exported: callers use the model and the file through this module.
IndexCorrupt = indexfile.IndexCorrupt
index_path = indexfile.index_path
project_key = indexfile.project_key
write_atomic = indexfile.write_atomic

LOCK_COPIES_DIR = "lock-copies"  # not "locks": that directory holds the store's lock files
DEFAULT_KEEP_GENERATIONS = 3
DEFAULT_GRACE = "1h"
DEFAULT_HOME_TTL = "30d"
# Homes refresh their heartbeat once a day (aishell.store.engineroots): a shorter TTL would
# let a home in daily use look gone between two refreshes.
MIN_HOME_TTL = timedelta(days=2)
LOCK_DIGEST_CONTEXT = "aishell 2026-11 generation lock copy v1"


@dataclass(frozen=True)
class ImageRef:
    """An image a project uses: ``role`` is ``foundation`` or ``extension``."""

    role: str
    id: str
    tag: str


@dataclass(frozen=True)
class Generation:
    """One lock a project synced: its content (by digest), env ids and images."""

    number: int
    lock_digest: str
    env_ids: Mapping[str, str]
    images: tuple[ImageRef, ...]
    created: datetime
    last_used: datetime


@dataclass(frozen=True)
class ProjectRecord:
    path: str
    lock_path: str
    locked: bool  # a lock existed when the project was last recorded
    env_ids: Mapping[str, str]  # platform -> env id, as last recorded
    images: tuple[ImageRef, ...]
    first_seen: datetime
    last_used: datetime
    generations: tuple[Generation, ...] = ()
    current: int | None = None  # the generation the project's lock is at

    def generation(self, number: int | None) -> Generation | None:
        return next((g for g in self.generations if g.number == number), None)


@dataclass(frozen=True)
class Pin:
    name: str
    project: str
    created: datetime
    env_ids: tuple[str, ...]
    images: tuple[ImageRef, ...]
    lock_digest: str | None


@dataclass(frozen=True)
class Index:
    projects: Mapping[str, ProjectRecord] = field(default_factory=dict)
    pins: Mapping[str, Pin] = field(default_factory=dict)
    last_used: Mapping[str, datetime] = field(default_factory=dict)  # item key -> time


def env_key(env_id: str) -> str:
    return f"env:{env_id}"


def image_key(image_id: str) -> str:
    return f"image:{image_id}"


def now_utc() -> datetime:
    return datetime.now(UTC)


# -- (de)serialization ------------------------------------------------------------------
def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def _images_from(raw: Any) -> tuple[ImageRef, ...]:
    return tuple(ImageRef(str(i["role"]), str(i["id"]), str(i.get("tag", ""))) for i in raw or ())


def _images_to(images: Iterable[ImageRef]) -> list[dict[str, str]]:
    return [{"role": i.role, "id": i.id, "tag": i.tag} for i in images]


def _from_json(doc: dict[str, Any]) -> Index:
    projects = {}
    for key, p in doc.get("projects", {}).items():
        gens = tuple(
            Generation(int(g["number"]), str(g["lock_digest"]), dict(g.get("env_ids", {})),
                       _images_from(g.get("images")), _time(g["created"]), _time(g["last_used"]))
            for g in p.get("generations", ())
        )
        projects[key] = ProjectRecord(
            path=str(p["path"]), lock_path=str(p["lock_path"]), locked=bool(p.get("locked")),
            env_ids=dict(p.get("env_ids", {})), images=_images_from(p.get("images")),
            first_seen=_time(p["first_seen"]), last_used=_time(p["last_used"]),
            generations=gens, current=p.get("current"),
        )
    pins = {
        name: Pin(name, str(p["project"]), _time(p["created"]), tuple(p.get("env_ids", ())),
                  _images_from(p.get("images")), p.get("lock_digest"))
        for name, p in doc.get("pins", {}).items()
    }
    last_used = {k: _time(v) for k, v in doc.get("last_used", {}).items()}
    return Index(projects, pins, last_used)


def _to_json(index: Index) -> dict[str, Any]:
    return {
        "version": indexfile.VERSION,
        "projects": {
            key: {
                "path": p.path, "lock_path": p.lock_path, "locked": p.locked,
                "env_ids": dict(p.env_ids), "images": _images_to(p.images),
                "first_seen": p.first_seen.isoformat(), "last_used": p.last_used.isoformat(),
                "current": p.current,
                "generations": [
                    {"number": g.number, "lock_digest": g.lock_digest, "env_ids": dict(g.env_ids),
                     "images": _images_to(g.images), "created": g.created.isoformat(),
                     "last_used": g.last_used.isoformat()}
                    for g in p.generations
                ],
            }
            for key, p in sorted(index.projects.items())
        },
        "pins": {
            name: {"project": p.project, "created": p.created.isoformat(),
                   "env_ids": list(p.env_ids), "images": _images_to(p.images),
                   "lock_digest": p.lock_digest}
            for name, p in sorted(index.pins.items())
        },
        "last_used": {k: v.isoformat() for k, v in sorted(index.last_used.items())},
    }


# -- reading and writing ---------------------------------------------------------------
def load(paths: Paths) -> Index:
    """The index as last committed (an empty one when there is none yet).

    Raises:
        IndexCorrupt: the file is not an index this aishell can read.
    """
    doc = indexfile.read_doc(paths)
    try:
        return _from_json(doc)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise indexfile.corrupt(indexfile.index_path(paths), exc) from exc


def update(paths: Paths, change: Callable[[Index], Index]) -> Index:
    """Read, change and commit the index under its file lock; returns the new index."""
    result: list[Index] = []

    def on_doc(doc: dict[str, Any]) -> dict[str, Any]:
        try:
            old = _from_json(doc)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise indexfile.corrupt(indexfile.index_path(paths), exc) from exc
        result.append(change(old))
        return _to_json(result[0])

    indexfile.update_doc(paths, on_doc)
    return result[0]


# -- lock copies -----------------------------------------------------------------------
def lock_digest(lock_bytes: bytes) -> str:
    return derive(LOCK_DIGEST_CONTEXT, lock_bytes)


def locks_dir(paths: Paths) -> Path:
    """Where copies of generations' and pins' lock files live (``<blake3 hex>.lock``)."""
    return paths.state / LOCK_COPIES_DIR


def save_lock_copy(paths: Paths, lock_bytes: bytes) -> str:
    """Keep a copy of a lock's bytes (for rollback and pins); returns its digest."""
    digest = lock_digest(lock_bytes)
    path = locks_dir(paths) / f"{digest}.lock"
    if not path.is_file():
        write_atomic(path, lock_bytes)
    return digest


def read_lock_copy(paths: Paths, digest: str) -> bytes:
    """The bytes of a recorded lock. Raises AishellError when the copy is gone."""
    try:
        return (locks_dir(paths) / f"{digest}.lock").read_bytes()
    except FileNotFoundError as exc:
        raise AishellError(f"the recorded lock {digest[:12]} is missing from {locks_dir(paths)}",
                           hint="it cannot be restored; run `aishell lock` instead") from exc


def referenced_lock_digests(index: Index) -> set[str]:
    digests = {g.lock_digest for p in index.projects.values() for g in p.generations}
    return digests | {p.lock_digest for p in index.pins.values() if p.lock_digest}


@dataclass(frozen=True)
class StoreSettings:
    keep_generations: int = DEFAULT_KEEP_GENERATIONS
    grace: timedelta = timedelta(hours=1)
    home_ttl: timedelta = timedelta(days=30)  # other homes' roots expire this long after last seen


def store_settings(paths: Paths) -> StoreSettings:
    """``[store]`` of the global config: ``keep_generations``, ``gc_grace``, ``gc_home_ttl``."""
    from aishell.project import config  # noqa: PLC0415 - only gc and record_use need it
    from aishell.units import parse_duration  # noqa: PLC0415

    path = paths.global_config
    if not path.is_file():
        return StoreSettings()
    source = config.read_toml(path)
    config.validate(source, config.GLOBAL_TABLES)
    table = source.data.get("store", {})
    keep = table.get("keep_generations", DEFAULT_KEEP_GENERATIONS)
    if keep < 0:
        raise source.error("[store] keep_generations must be 0 or more", "store", "keep_generations")
    try:
        grace = parse_duration(table.get("gc_grace", DEFAULT_GRACE))
    except AishellError as exc:
        raise source.error(f"[store] gc_grace: {exc.message}", "store", "gc_grace",
                           hint=exc.hint) from exc
    try:
        ttl = parse_duration(table.get("gc_home_ttl", DEFAULT_HOME_TTL))
    except AishellError as exc:
        raise source.error(f"[store] gc_home_ttl: {exc.message}", "store", "gc_home_ttl",
                           hint=exc.hint) from exc
    if ttl < MIN_HOME_TTL:
        raise source.error(f"[store] gc_home_ttl must be at least 2d, not {table['gc_home_ttl']!r}",
                           "store", "gc_home_ttl",
                           hint="homes refresh their heartbeat once a day; a shorter TTL would "
                                "expire homes in daily use")
    return StoreSettings(keep, grace, ttl)


# -- recording use ---------------------------------------------------------------------
def _trim(generations: Sequence[Generation], keep: int, current: int | None) -> tuple[Generation, ...]:
    """The ``keep`` newest generations, plus the current one wherever it is."""
    newest = sorted(generations, key=lambda g: g.number)[-keep:] if keep > 0 else []
    kept = {g.number for g in newest} | ({current} if current is not None else set())
    return tuple(g for g in sorted(generations, key=lambda g: g.number) if g.number in kept)


def record_use(
    paths: Paths,
    project: Path,
    *,
    lock_path: Path,
    env_ids: Mapping[str, str],
    images: Sequence[ImageRef],
    lock_bytes: bytes | None,
    keep: int | None = None,
    now: datetime | None = None,
) -> ProjectRecord:
    """Record that ``project`` uses these store items (call on every lock, sync and run).

    Args:
        paths: aishell's directories.
        project: the project directory.
        lock_path: its ``aishell.lock`` (which need not exist: a launch without a lock).
        env_ids: platform -> env id the project uses now.
        images: the foundation (and extension) images it uses now.
        lock_bytes: the lock's bytes, or None without a lock. New contents make a new
            generation; contents seen before make that generation current again.
        keep: how many generations to keep (default: ``[store] keep_generations``).
        now: the time to record (tests).
    """
    # Uses are recorded to the minute (see indexfile.iso_now): a re-launch within the
    # minute changes nothing, so it writes nothing.
    when = now or now_utc().replace(second=0, microsecond=0)
    keep = store_settings(paths).keep_generations if keep is None else keep
    digest = save_lock_copy(paths, lock_bytes) if lock_bytes is not None else None
    key = indexfile.project_key(project)

    def change(index: Index) -> Index:
        old = index.projects.get(key)
        gens = list(old.generations) if old else []
        current = old.current if old else None
        if digest is not None:
            same = next((g for g in gens if g.lock_digest == digest), None)
            fresh = Generation(same.number if same else max((g.number for g in gens), default=0) + 1,
                               digest, dict(env_ids), tuple(images),
                               same.created if same else when, when)
            gens = [g for g in gens if g.lock_digest != digest] + [fresh]
            current = fresh.number
        record = ProjectRecord(
            path=key, lock_path=str(lock_path), locked=lock_bytes is not None,
            env_ids=dict(env_ids), images=tuple(images),
            first_seen=old.first_seen if old else when, last_used=when,
            generations=_trim(gens, keep, current), current=current,
        )
        used = dict(index.last_used)
        used.update({env_key(e): when for e in env_ids.values()})
        used.update({image_key(i.id): when for i in images if i.id})
        return replace(index, projects={**index.projects, key: record}, last_used=used)

    return update(paths, change).projects[key]


def record_images(paths: Paths, project: Path, images: Sequence[ImageRef]) -> None:
    """Record a launch that knows only its images (no env): keeps env ids and generations."""
    indexfile.record_launch(paths, project, [(i.role, i.id, i.tag) for i in images])


def set_current(paths: Paths, project: Path, number: int) -> None:
    """Make generation ``number`` the project's current one (after a rollback)."""
    key = indexfile.project_key(project)

    def change(index: Index) -> Index:
        record = index.projects[key]
        gen = record.generation(number)
        assert gen is not None
        record = replace(record, current=number, env_ids=dict(gen.env_ids), images=gen.images)
        return replace(index, projects={**index.projects, key: record})

    update(paths, change)


# -- pins ------------------------------------------------------------------------------
def pin(paths: Paths, name: str, project: Path, *, env_ids: Iterable[str],
        images: Sequence[ImageRef], lock_bytes: bytes | None,
        now: datetime | None = None) -> tuple[Pin, bool]:
    """Make these items the named root ``name``; returns the pin and whether it replaced one."""
    digest = save_lock_copy(paths, lock_bytes) if lock_bytes is not None else None
    new = Pin(name, indexfile.project_key(project), now or now_utc(), tuple(sorted(set(env_ids))),
              tuple(images), digest)
    replaced = False

    def change(index: Index) -> Index:
        nonlocal replaced
        replaced = name in index.pins
        return replace(index, pins={**index.pins, name: new})

    update(paths, change)
    return new, replaced


def unpin(paths: Paths, name: str) -> Pin:
    """Drop the pin ``name``. Raises AishellError when there is none."""
    dropped: list[Pin] = []

    def change(index: Index) -> Index:
        if name not in index.pins:
            known = ", ".join(sorted(index.pins)) or "none"
            raise AishellError(f"no pin named {name!r}", hint=f"pins: {known} (`aishell pin --list`)")
        dropped.append(index.pins[name])
        return replace(index, pins={k: v for k, v in index.pins.items() if k != name})

    update(paths, change)
    return dropped[0]


def pins(paths: Paths) -> list[Pin]:
    return sorted(load(paths).pins.values(), key=lambda p: p.name)


def generations(paths: Paths, project: Path) -> tuple[tuple[Generation, ...], int | None]:
    """The recorded generations of ``project`` (oldest first) and the current number."""
    record = load(paths).projects.get(indexfile.project_key(project))
    return (record.generations, record.current) if record else ((), None)
