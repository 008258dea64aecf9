"""`aishell gc`: mark from the roots, sweep what no root reaches (SPEC section 7).

The counting core (:func:`collect_garbage`) returns data; the CLI renders it. It holds
the store lock exclusively (shared for ``--dry-run``), so no sync or launch is between
deciding an item exists and using it; the grace period additionally protects anything
created in the last hour (an item a sync is still populating, or one made by an aishell
that does not know the lock). The engine itself refuses to remove a volume or image a
container uses; that is reported, not fatal.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from aishell.engine import Engine
from aishell.errors import EngineConflict, EngineNotFound, UsageError
from aishell.lock import refs as lockrefs
from aishell.paths import Paths
from aishell.store import captures, egressservice, engineroots, inventory, roots, storelock
from aishell.store import index as store_index
from aishell.store.inventory import Item


@dataclass(frozen=True)
class Candidate:
    """An unreachable item and what happened to it."""

    type: str
    kind: str
    id: str
    name: str
    size: int
    unique: int  # bytes only this item holds (an image's layers no other image shares)
    created: datetime
    last_used: datetime | None
    status: str  # removed | would-remove | too-young | in-use | over-budget | gone
    detail: str = ""


@dataclass(frozen=True)
class GcResult:
    dry_run: bool
    older_than: timedelta
    keep_generations: int
    max_freed: int | None
    candidates: tuple[Candidate, ...]  # every unreachable item, whatever happened to it
    reachable: int  # items some root keeps
    dropped_roots: tuple[roots.Dangling, ...]
    dropped_generations: int
    tarballs: int  # unreferenced download-cache files removed (or that would be)
    tarball_bytes: int
    lock_copies: int  # recorded lock copies no generation or pin needs any more
    freed_bytes: int  # sum of the sizes of what was removed (or would be)
    layers_freed: int | None  # image layer bytes measured before/after (real runs only)
    stopped_early: bool
    warnings: tuple[str, ...]
    seconds: float
    home_ttl: timedelta = timedelta(days=30)
    homes: tuple[engineroots.Home, ...] = ()  # the other homes on the engine; expired ones removed
    capture_containers: int = 0  # containers of interrupted `aishell lock`s removed (would be)
    egress_services: int = 0  # idle egress services removed (would be)

    @property
    def removed(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.status in ("removed", "would-remove"))

    @property
    def captures(self) -> tuple[Candidate, ...]:
        """Scratch volumes of interrupted `aishell lock` recordings removed (would be)."""
        return tuple(c for c in self.removed if c.kind == captures.KIND)

    @property
    def freed_unique_bytes(self) -> int:
        """A lower bound of what was (would be) freed: images may share layers."""
        return sum(max(c.unique, 0) for c in self.removed) + self.tarball_bytes

    @property
    def measured_freed_bytes(self) -> int | None:
        """Volumes and tarballs removed plus the image layer bytes the engine released."""
        if self.layers_freed is None:
            return None
        volumes = sum(max(c.size, 0) for c in self.removed if c.type == "volume")
        return volumes + self.layers_freed + self.tarball_bytes


def _candidate(item: Item, last_used: datetime | None, status: str, detail: str = "") -> Candidate:
    return Candidate(item.type, item.kind, item.id, item.name, item.size, item.unique, item.created,
                     last_used, status, detail)


def _remove(engine: Engine, item: Item) -> None:
    """Remove one item; raises EngineConflict when something still uses it."""
    if item.type == "volume":
        engine.remove_volume(item.key, missing_ok=True)
        return
    if not item.tags:
        engine.remove_image(item.key)
        return
    # Untag one by one: removing an id that several tags name needs force, which would
    # also take an image a container still uses. The last untag deletes the image.
    for tag in item.tags:
        engine.remove_image(tag)


def unreferenced_tarballs(cache_root: Path, live_locks: tuple[bytes, ...], cutoff: datetime) -> list[Path]:
    """Files of the download cache that no live lock's integrity names, older than ``cutoff``.

    The layout is :mod:`aishell.lock.cache`'s (``tarballs/<alg>/<hex[:2]>/<hex>``); anything
    else under ``cache_root`` (an interrupted download's temp file) is unreferenced too.
    """
    if not cache_root.is_dir():
        return []
    keys: set[str] = set()
    for data in live_locks:
        with contextlib.suppress(lockrefs.LockUnreadable):
            for sri in lockrefs.lock_integrities(data):
                keys |= lockrefs.tarball_keys(sri)
    found = []
    limit = cutoff.timestamp()
    for path in sorted(p for p in cache_root.rglob("*") if p.is_file()):
        if lockrefs.tarball_key_of(path, cache_root) in keys:
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < limit:
                found.append(path)
    return found


def _drop_from_index(paths: Paths, dangling: tuple[roots.Dangling, ...], keep: int) -> int:
    """Drop dangling projects and generations beyond ``keep``; returns generations dropped."""
    gone = {d.path for d in dangling}
    dropped = 0

    def change(idx: store_index.Index) -> store_index.Index:
        nonlocal dropped
        dropped = 0
        projects = {}
        for key, record in idx.projects.items():
            # Check again under the index lock: the project may have come back meanwhile.
            if key in gone and roots.is_dangling(record):
                continue
            newest = sorted(record.generations, key=lambda g: g.number)
            kept = tuple(newest[-keep:]) if keep > 0 else ()
            dropped += len(newest) - len(kept)
            current = record.current if any(g.number == record.current for g in kept) else None
            projects[key] = replace(record, generations=kept, current=current)
        return replace(idx, projects=projects)

    store_index.update(paths, change)
    return dropped


def _sweep_lock_copies(paths: Paths, cutoff: datetime, *, dry_run: bool) -> int:
    needed = store_index.referenced_lock_digests(store_index.load(paths))
    count = 0
    directory = store_index.locks_dir(paths)
    for path in sorted(directory.glob("*.lock")) if directory.is_dir() else []:
        if not _is_digest(path.stem) or path.stem in needed:
            continue  # only ever content-addressed copies; never anything else in there
        if path.stat().st_mtime >= cutoff.timestamp():
            continue
        count += 1
        if not dry_run:
            path.unlink(missing_ok=True)
    return count


def _is_digest(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def collect_garbage(
    paths: Paths,
    engine: Engine,
    *,
    dry_run: bool = False,
    older_than: timedelta | None = None,
    keep_generations: int | None = None,
    max_freed: int | None = None,
    label_filter: Mapping[str, str] | None = None,
    on_wait: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> GcResult:
    """Mark from the roots and sweep every unreachable aishell item older than the grace.

    Args:
        paths: aishell's directories (the index and the download cache).
        engine: the engine.
        dry_run: report what would go; change nothing (not even the index).
        older_than: the grace period (default ``[store] gc_grace``, 1 hour).
        keep_generations: generations per project that stay roots (default
            ``[store] keep_generations``, 3); older ones are dropped from the index.
        max_freed: stop once this many bytes are freed (least recently used first).
        label_filter: only consider engine items carrying these labels as well (tests).
        on_wait: told once when a sync holds the store lock and gc waits for it.
        now: the current time (tests).
    """
    started = time.monotonic()
    settings = store_index.store_settings(paths)
    grace = settings.grace if older_than is None else older_than
    keep = settings.keep_generations if keep_generations is None else keep_generations
    if keep < 0:
        raise UsageError(f"--keep-generations must be 0 or more, not {keep}")
    lock = storelock.shared if dry_run else storelock.exclusive
    with lock(paths, on_wait=on_wait):
        moment = now or store_index.now_utc()
        cutoff = moment - grace
        idx = store_index.load(paths)
        containers = engine.list_containers({}, all=True)
        leftovers = captures.leftover_containers(containers, cutoff=cutoff, now=moment,
                                                 label_filter=label_filter)
        gone = {str(c["Id"]) for c in leftovers} if dry_run else \
            set(captures.remove_containers(engine, leftovers))
        containers = [c for c in containers if str(c["Id"]) not in gone]
        idle = egressservice.collect(paths, engine, containers, dry_run=dry_run)
        containers = [c for c in containers if dry_run or str(c["Id"]) not in idle]
        found = roots.collect(paths, idx, containers, keep_generations=keep)
        if not dry_run:  # other homes on this engine must see what this one still needs
            engineroots.publish_home(engine, paths, keep_generations=keep, now=moment)
        homes = _other_homes(engine, paths, settings.home_ttl, moment, dry_run=dry_run)
        all_roots = (*found.roots, *(h.root for h in homes if not h.expired))
        items = inventory.collect(engine, label_filter=label_filter)
        marks = roots.mark(items, all_roots)
        layers_before = inventory.layers_size(engine) if not dry_run else 0

        def last_used(item: Item) -> datetime | None:
            key = store_index.env_key(item.id) if item.type == "volume" else store_index.image_key(item.id)
            return idx.last_used.get(key)

        unreachable = [i for i in items if not marks[i.key]]
        # Least recently used first, volumes before the images they may be built from.
        unreachable.sort(key=lambda i: (last_used(i) or i.created, i.type != "volume", i.name))
        dropped_generations = 0
        if not dry_run:
            dropped_generations = _drop_from_index(paths, found.dangling, keep)
        else:
            dropped_generations = sum(max(0, len(p.generations) - keep) for p in idx.projects.values()
                                      if p.path not in {d.path for d in found.dangling})

        results, freed, stopped = _sweep(engine, unreachable, cutoff=cutoff, grace=grace,
                                         max_freed=max_freed, dry_run=dry_run, last_used=last_used)
        tarballs = unreferenced_tarballs(paths.downloads, found.lock_bytes, cutoff)
        tarball_bytes = 0
        for path in tarballs:
            with contextlib.suppress(FileNotFoundError):
                tarball_bytes += path.stat().st_size
                if not dry_run:
                    path.unlink()
        lock_copies = _sweep_lock_copies(paths, cutoff, dry_run=dry_run)
        if not dry_run and label_filter is None:
            gone = {c.id for c in results if c.status in ("removed", "gone")}
            _forget_missing(paths, [i for i in items if i.id not in gone])
        layers_freed = None
        if not dry_run and any(c.status == "removed" and c.type == "image" for c in results):
            layers_freed = max(0, layers_before - inventory.layers_size(engine))
    return GcResult(
        dry_run=dry_run, older_than=grace, keep_generations=keep, max_freed=max_freed,
        candidates=tuple(results), reachable=sum(1 for i in items if marks[i.key]),
        dropped_roots=found.dangling, dropped_generations=dropped_generations,
        tarballs=len(tarballs), tarball_bytes=tarball_bytes, lock_copies=lock_copies,
        freed_bytes=freed + tarball_bytes, layers_freed=layers_freed, stopped_early=stopped,
        warnings=found.warnings, seconds=time.monotonic() - started,
        home_ttl=settings.home_ttl, homes=tuple(homes), capture_containers=len(gone),
        egress_services=len(idle),
    )


def _other_homes(engine: Engine, paths: Paths, ttl: timedelta, now: datetime, *,
                 dry_run: bool) -> list[engineroots.Home]:
    """The other homes on this engine; a real run removes the markers of expired ones
    (one that came back meanwhile is kept, and keeps its items)."""
    homes = engineroots.other_homes(engine, paths, ttl=ttl, now=now)
    if dry_run:
        return homes
    return [h if not h.expired or engineroots.forget(engine, h) else replace(h, expired=False)
            for h in homes]


def _sweep(
    engine: Engine,
    unreachable: list[Item],
    *,
    cutoff: datetime,
    grace: timedelta,
    max_freed: int | None,
    dry_run: bool,
    last_used: Callable[[Item], datetime | None],
) -> tuple[list[Candidate], int, bool]:
    """Remove (or list) the unreachable items in order; returns results, bytes, stopped early."""
    results: list[Candidate] = []
    freed = 0
    stopped = False
    retry: list[Item] = []
    for item in unreachable:
        if item.created > cutoff:
            results.append(_candidate(item, last_used(item), "too-young",
                                      f"created less than {_short(grace)} ago"))
            continue
        if max_freed is not None and freed >= max_freed:
            stopped = True
            results.append(_candidate(item, last_used(item), "over-budget"))
            continue
        if dry_run:
            results.append(_candidate(item, last_used(item), "would-remove"))
            freed += max(item.size, 0)
            continue
        status, detail = _try_remove(engine, item)
        if status == "in-use" and item.type == "image":
            retry.append(item)  # an image built on it may go later in this sweep
            continue
        results.append(_candidate(item, last_used(item), status, detail))
        freed += max(item.size, 0) if status == "removed" else 0
    for item in retry:
        status, detail = _try_remove(engine, item)
        results.append(_candidate(item, last_used(item), status, detail))
        freed += max(item.size, 0) if status == "removed" else 0
    return results, freed, stopped


def _try_remove(engine: Engine, item: Item) -> tuple[str, str]:
    try:
        _remove(engine, item)
    except EngineConflict as exc:
        return "in-use", exc.message
    except EngineNotFound:
        return "gone", "already removed"
    return "removed", ""


def _forget_missing(paths: Paths, items: list[Item]) -> None:
    """Drop last-use entries of items the engine no longer has (after the sweep)."""
    present = {store_index.env_key(i.id) for i in items if i.type == "volume"}
    present |= {store_index.image_key(i.id) for i in items if i.type == "image"}

    def change(idx: store_index.Index) -> store_index.Index:
        return replace(idx, last_used={k: v for k, v in idx.last_used.items() if k in present})

    store_index.update(paths, change)


def _short(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length and seconds % length == 0:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"
