"""GC roots kept in the engine itself, visible to every aishell home that shares it.

The engine's volumes and images are shared by every user in the ``docker`` group, but each
aishell home's index (its roots) lives in that user's own state directory. Like Nix, which
keeps its gcroots inside the store, each home publishes what its roots reference as empty
marker volumes on the engine: ``aishell-gcroot-<home>-<hash>``, labelled with the home, the
referenced item (``env:<id>`` or ``image:<id>``) and who owns the home. ``aishell gc`` in any
home treats every other home's markers as roots (kind ``home``), so it only removes an item
that no home on the engine references. A home republishes its set (creating the missing
markers, removing the ones it no longer needs) after every command that changes its roots.

Markers are a lease, not a promise forever: each home also keeps a *heartbeat*, a volume
``aishell-gcroot-<home>-seen-<UTC time>`` whose ``dev.aishell.gcroot.seen`` label says when
the home last published (volume labels cannot change, so a refresh creates the next
heartbeat, then removes the older ones). It is refreshed at most once a day, by whichever
publishing command comes first. gc ignores, and removes, the markers of a home not seen for
``[store] gc_home_ttl`` (30 days); for a home without a heartbeat (an older aishell) the
newest marker's creation time stands in for it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aishell.engine import Engine
from aishell.hashing import plain
from aishell.paths import Paths
from aishell.store import indexfile
from aishell.store.roots import Root

GCROOT = "dev.aishell.gcroot"  # "ref" on a marker, "home" on a heartbeat
HOME = "dev.aishell.gcroot.home"
REF = "dev.aishell.gcroot.ref"
OWNER = "dev.aishell.gcroot.owner"
SEEN = "dev.aishell.gcroot.seen"  # on a heartbeat: when the home published, ISO 8601 UTC
PREFIX = "aishell-gcroot-"
HEARTBEAT_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class Home:
    """Another aishell home on this engine, as its markers and heartbeat describe it."""

    id: str  # the home's hash (dev.aishell.gcroot.home)
    owner: str  # "uid 1500 /home/bob/.local/state/aishell"
    last_seen: datetime
    seen_by: str  # "heartbeat", or "markers" (an older aishell: its newest marker's creation)
    env_ids: tuple[str, ...]
    image_ids: tuple[str, ...]
    volumes: tuple[str, ...]  # its marker and heartbeat volumes
    expired: bool  # not seen for longer than [store] gc_home_ttl: it keeps nothing

    @property
    def items(self) -> int:
        return len(self.env_ids) + len(self.image_ids)

    @property
    def root(self) -> Root:
        return Root("home", self.owner, env_ids=frozenset(self.env_ids),
                    image_ids=frozenset(self.image_ids))


def home_id(paths: Paths) -> str:
    """This aishell home on this host (its state directory), as 16 hex digits."""
    return plain(f"{socket.gethostname()}\0{paths.state.resolve()}".encode())[:16]


def owner_of(paths: Paths) -> str:
    return f"uid {os.getuid()} {paths.state}"


def refs_of(roots: Iterable[Root]) -> set[str]:
    """What this home's own roots reference (containers are roots for everyone anyway)."""
    refs: set[str] = set()
    for root in roots:
        if root.kind in ("container", "home"):
            continue
        refs |= {f"env:{e}" for e in root.env_ids}
        refs |= {f"image:{i}" for i in root.image_ids}
    return refs


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: Any) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(text or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def heartbeat_labels(paths: Paths, when: datetime) -> dict[str, str]:
    return {GCROOT: "home", HOME: home_id(paths), OWNER: owner_of(paths), SEEN: _stamp(when)}


def heartbeat_name(home: str, when: datetime) -> str:
    return f"{PREFIX}{home}-seen-{when.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def _seen(volume: Mapping[str, Any]) -> datetime:
    """When a heartbeat says its home published (its creation time if the label is bad)."""
    labels = volume.get("Labels") or {}
    return _time(labels.get(SEEN)) or _time(volume.get("CreatedAt")) or datetime.now(UTC)


publishing = indexfile.roots_lock  # one publisher per home at a time (re-entrant)


def publish(engine: Engine, paths: Paths, refs: set[str], *, now: datetime | None = None) -> None:
    """Make this home's markers on the engine exactly ``refs``, and keep its heartbeat fresh.

    One listing round trip; creates and removals only for what changed, plus (once a day)
    the next heartbeat. A refresh re-creates every marker (a create of an existing volume
    changes nothing): one another home's gc removed while this home looked gone comes back.
    """
    me = home_id(paths)
    moment = now or datetime.now(UTC)
    have: dict[str, str] = {}
    beats: list[Mapping[str, Any]] = []
    for v in engine.list_volumes({HOME: me}):
        labels = v.get("Labels") or {}
        if labels.get(HOME) != me:
            continue
        if labels.get(GCROOT) == "ref":
            have[str(labels.get(REF, ""))] = str(v["Name"])
        elif labels.get(GCROOT) == "home":
            beats.append(v)
    newest = max((_seen(v) for v in beats), default=None)
    due = newest is None or moment - newest >= HEARTBEAT_EVERY
    name = heartbeat_name(me, moment)
    if due:
        engine.create_volume(name, heartbeat_labels(paths, moment))
    owner = owner_of(paths)
    for ref in sorted(refs if due else refs - set(have)):
        engine.create_volume(f"{PREFIX}{me}-{plain(ref.encode())[:16]}",
                             {GCROOT: "ref", HOME: me, REF: ref, OWNER: owner})
    for ref in sorted(set(have) - refs):
        engine.remove_volume(have[ref], missing_ok=True)
    if due:
        for beat in beats:
            if str(beat["Name"]) != name:
                engine.remove_volume(str(beat["Name"]), missing_ok=True)


def publish_home(engine: Engine, paths: Paths, *, keep_generations: int | None = None,
                 now: datetime | None = None) -> None:
    """Recompute this home's roots from its index and publish them.

    The roots are read under the publishing lock, after any index write of the command
    that publishes: two overlapping publishers never undo each other.
    """
    from aishell.store import index, roots  # noqa: PLC0415

    with publishing(paths):
        keep = index.store_settings(paths).keep_generations if keep_generations is None \
            else keep_generations
        found = roots.collect(paths, index.load(paths), [], keep_generations=keep)
        publish(engine, paths, refs_of(found.roots), now=now)


def publish_or_warn(engine: Engine, paths: Paths) -> None:
    """:func:`publish_home` after a command changed this home's roots; a failure is a warning
    (the command itself succeeded; the next sync or gc publishes again)."""
    from aishell import render  # noqa: PLC0415
    from aishell.errors import AishellError  # noqa: PLC0415

    try:
        publish_home(engine, paths)
    except (AishellError, OSError) as exc:
        render.warn(f"could not publish this home's gc roots on the engine: {exc}")


def other_homes(engine: Engine, paths: Paths, *, ttl: timedelta,
                now: datetime | None = None) -> list[Home]:
    """Every other aishell home that published on this engine (one listing round trip)."""
    me = home_id(paths)
    moment = now or datetime.now(UTC)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for v in engine.list_volumes({GCROOT: ""}):
        home = str((v.get("Labels") or {}).get(HOME, ""))
        if home and home != me:
            groups.setdefault(home, []).append(v)
    homes = []
    for home, volumes in sorted(groups.items()):
        beats = [v for v in volumes if (v.get("Labels") or {}).get(GCROOT) == "home"]
        markers = [v for v in volumes if (v.get("Labels") or {}).get(GCROOT) == "ref"]
        if beats:
            seen, by = max(_seen(v) for v in beats), "heartbeat"
        else:
            seen = max((_time(v.get("CreatedAt")) or moment for v in markers), default=moment)
            by = "markers"
        refs = [str((v.get("Labels") or {}).get(REF, "")).partition(":") for v in markers]
        owner = next((str(v["Labels"][OWNER]) for v in [*beats, *markers]
                      if (v.get("Labels") or {}).get(OWNER)), home)
        homes.append(Home(
            home, owner, seen, by,
            env_ids=tuple(sorted({i for kind, _, i in refs if kind == "env"})),
            image_ids=tuple(sorted({i for kind, _, i in refs if kind == "image"})),
            volumes=tuple(sorted(str(v["Name"]) for v in volumes)),
            expired=moment - seen > ttl,
        ))
    return homes


def foreign_roots(engine: Engine, paths: Paths, *, ttl: timedelta = timedelta(days=30),
                  now: datetime | None = None) -> list[Root]:
    """One ``home`` root per other home on this engine that has not expired."""
    return [h.root for h in other_homes(engine, paths, ttl=ttl, now=now) if not h.expired]


def forget(engine: Engine, home: Home) -> bool:
    """Remove an expired home's markers and heartbeats; False if it came back meanwhile.

    The home's heartbeats are listed again first (a home publishing right now has just
    made a newer one). It may still come back between that check and the removals: its
    next publish re-creates what is missing.
    """
    # One label in the filter: Podman ORs several (then the labels are checked here).
    for v in engine.list_volumes({HOME: home.id}):
        labels = v.get("Labels") or {}
        if labels.get(HOME) != home.id or labels.get(GCROOT) != "home":
            continue
        if _seen(v) > home.last_seen or str(v["Name"]) not in home.volumes:
            return False
    for name in home.volumes:
        engine.remove_volume(name, missing_ok=True)
    return True
