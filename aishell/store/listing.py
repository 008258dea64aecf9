"""`aishell store ls`, `aishell pin`/`unpin`, `aishell rollback`: the store seen by people."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aishell.engine import Engine
from aishell.errors import AishellError
from aishell.lock import refs as lockrefs
from aishell.paths import Paths
from aishell.project.config import LOCKFILE
from aishell.store import engineroots, inventory, roots
from aishell.store import index as store_index
from aishell.store.index import ImageRef


@dataclass(frozen=True)
class StoreItem:
    type: str
    kind: str
    id: str
    name: str
    size: int
    unique: int
    created: datetime
    last_used: datetime | None
    roots: tuple[str, ...]  # "project:/path", "pin:name", "generation:/path#2", "container:name",
    # "home:uid 1500 /home/bob/.local/state/aishell" (another aishell home on the engine)


@dataclass(frozen=True)
class Listing:
    items: tuple[StoreItem, ...]
    total_bytes: int
    reclaimable_bytes: int  # what no root keeps (gc removes it once past the grace period)
    projects: int  # live recorded projects
    envs_in_use: int  # env volumes some live project uses
    shared_envs: tuple[tuple[str, int], ...]  # (env volume, number of projects) when > 1
    dangling_roots: tuple[roots.Dangling, ...]
    download_cache_bytes: int
    download_cache_files: int
    warnings: tuple[str, ...]
    homes: tuple[engineroots.Home, ...] = ()  # the other aishell homes on this engine


def list_store(paths: Paths, engine: Engine, *, label_filter: dict[str, str] | None = None) -> Listing:
    """Every store item with its size, age, last use and the roots that keep it."""
    settings = store_index.store_settings(paths)
    idx = store_index.load(paths)
    found = roots.collect(paths, idx, engine.list_containers({}, all=True),
                          keep_generations=settings.keep_generations)
    items = inventory.collect(engine, label_filter=label_filter)
    homes = engineroots.other_homes(engine, paths, ttl=settings.home_ttl)
    marks = roots.mark(items, [*found.roots, *(h.root for h in homes if not h.expired)])
    out = []
    for item in sorted(items, key=lambda i: (i.type, i.kind, i.name)):
        key = store_index.env_key(item.id) if item.type == "volume" else store_index.image_key(item.id)
        out.append(StoreItem(item.type, item.kind, item.id, item.name, item.size, item.unique,
                             item.created, idx.last_used.get(key),
                             tuple(r.label for r in marks[item.key])))
    envs = Counter({i.name: sum(1 for r in i.roots if r.startswith("project:"))
                    for i in out if i.type == "volume" and i.kind == "env"})
    files = [p for p in paths.downloads.rglob("*") if p.is_file()] if paths.downloads.is_dir() else []
    return Listing(
        items=tuple(out),
        total_bytes=sum(max(i.size, 0) for i in out),
        reclaimable_bytes=sum(max(i.size, 0) for i in out if not i.roots),
        projects=sum(1 for r in found.roots if r.kind == "project"),
        envs_in_use=sum(1 for n in envs.values() if n),
        shared_envs=tuple(sorted(((k, n) for k, n in envs.items() if n > 1), key=lambda kv: -kv[1])),
        dangling_roots=found.dangling,
        download_cache_bytes=sum(p.stat().st_size for p in files),
        download_cache_files=len(files),
        warnings=found.warnings,
        homes=tuple(homes),
    )


# -- pins ------------------------------------------------------------------------------
def _project_items(paths: Paths, project: Path) -> tuple[set[str], tuple[ImageRef, ...], bytes | None]:
    """The env ids, images and lock bytes of ``project`` as it is now."""
    record = store_index.load(paths).projects.get(store_index.project_key(project))
    lock = project / LOCKFILE
    try:
        data: bytes | None = lock.read_bytes()
    except FileNotFoundError:
        data = None
    env_ids = set(record.env_ids.values()) if record else set()
    if data is not None:
        try:
            env_ids = lockrefs.env_ids_of(data)
        except lockrefs.LockUnreadable as exc:
            raise AishellError(f"{lock} is not valid TOML: {exc}",
                               hint="fix or regenerate it (`aishell lock`), then pin") from exc
    return env_ids, (record.images if record else ()), data


@dataclass(frozen=True)
class PinResult:
    pin: store_index.Pin
    replaced: bool


def pin_project(paths: Paths, project: Path, name: str | None, *,
                engine: Engine | None = None) -> PinResult:
    """Make ``project``'s env ids and images the named root ``name`` (default: its directory
    name); with ``engine``, publish this home's roots there (other homes' gc sees the pin)."""
    env_ids, images, data = _project_items(paths, project)
    if not env_ids and not images:
        raise AishellError(f"nothing to pin: {project} has no aishell.lock and has not been synced or run",
                           hint="run `aishell sync` (or `aishell lock`) in the project first")
    pin_name = name or project.resolve().name
    pinned, replaced = store_index.pin(paths, pin_name, project, env_ids=env_ids, images=images,
                                       lock_bytes=data)
    if engine is not None:
        engineroots.publish_or_warn(engine, paths)
    return PinResult(pinned, replaced)


def unpin(paths: Paths, engine: Engine | None, name: str) -> store_index.Pin:
    """Drop the pin ``name``; with ``engine``, publish this home's roots without it."""
    dropped = store_index.unpin(paths, name)
    if engine is not None:
        engineroots.publish_or_warn(engine, paths)
    return dropped


# -- rollback --------------------------------------------------------------------------
@dataclass(frozen=True)
class RollbackResult:
    project: str
    lock_path: str
    from_generation: int | None
    to_generation: int
    env_ids: dict[str, str]
    env_present: bool | None  # the env volume is still in the store (None: no env recorded)
    dry_run: bool


def rollback(paths: Paths, engine: Engine, project: Path, *, to: int | None = None,
             dry_run: bool = False, force: bool = False) -> RollbackResult:
    """Restore the project's previous ``aishell.lock`` from its recorded generation.

    Only the lock file changes (atomically); ``aishell sync`` then uses the env the
    generation kept alive, or rebuilds it if gc took it. A lock no generation recorded
    (edited or re-locked since the last sync) is not overwritten unless ``force``.
    """
    gens, current = store_index.generations(paths, project)
    if not gens:
        raise AishellError(f"no generations are recorded for {project}",
                           hint="generations are recorded by `aishell sync` and `aishell run`")
    lock_path = project / LOCKFILE
    try:
        on_disk = store_index.lock_digest(lock_path.read_bytes())
    except FileNotFoundError:
        on_disk = None
    if on_disk is not None and not force and on_disk not in {g.lock_digest for g in gens}:
        raise AishellError(
            f"{lock_path} differs from every recorded generation (changed since the last sync); "
            "a rollback would lose it",
            hint="run `aishell sync` first to record it, or `aishell rollback --force` to discard it",
        )
    by_number = {g.number: g for g in gens}
    if to is not None:
        if to not in by_number:
            raise AishellError(f"generation {to} is not recorded for {project}",
                               hint=f"recorded: {', '.join(str(n) for n in sorted(by_number))} "
                                    "(`aishell rollback --list`)")
        target = by_number[to]
    else:
        earlier = [g for g in gens if current is None or g.number < current]
        if not earlier:
            raise AishellError(
                f"{project} is at its oldest recorded generation ({current})",
                hint="`aishell rollback --list` shows what is recorded; `--to N` picks one",
            )
        target = max(earlier, key=lambda g: g.number)
    data = store_index.read_lock_copy(paths, target.lock_digest)
    present = {str((v.get("Labels") or {}).get(inventory.ENV_ID, ""))
               for v in engine.list_volumes({inventory.KIND: "env"})}
    env_present = all(e in present for e in target.env_ids.values()) if target.env_ids else None
    if not dry_run:
        store_index.write_atomic(lock_path, data)
        store_index.set_current(paths, project, target.number)
        engineroots.publish_or_warn(engine, paths)  # the project root now names its env ids
    return RollbackResult(str(project), str(lock_path), current, target.number, dict(target.env_ids),
                          env_present, dry_run)
