"""GC roots kept in the engine itself, visible to every aishell home that shares it.

The engine's volumes and images are shared by every user in the ``docker`` group, but each
aishell home's index (its roots) lives in that user's own state directory. Like Nix, which
keeps its gcroots inside the store, each home publishes what its roots reference as empty
marker volumes on the engine: ``aishell-gcroot-<home>-<hash>``, labelled with the home, the
referenced item (``env:<id>`` or ``image:<id>``) and who owns the home. ``aishell gc`` in any
home treats every other home's markers as roots (kind ``home``), so it only removes an item
that no home on the engine references. A home republishes its set (creating the missing
markers, removing the ones it no longer needs) on every ``sync`` and ``gc``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

from aishell.engine import Engine
from aishell.hashing import plain
from aishell.paths import Paths
from aishell.store.roots import Root

GCROOT = "dev.aishell.gcroot"
HOME = "dev.aishell.gcroot.home"
REF = "dev.aishell.gcroot.ref"
OWNER = "dev.aishell.gcroot.owner"
PREFIX = "aishell-gcroot-"


def home_id(paths: Paths) -> str:
    """This aishell home on this host (its state directory), as 16 hex digits."""
    return plain(f"{socket.gethostname()}\0{paths.state.resolve()}".encode())[:16]


def refs_of(roots: Iterable[Root]) -> set[str]:
    """What this home's own roots reference (containers are roots for everyone anyway)."""
    refs: set[str] = set()
    for root in roots:
        if root.kind in ("container", "home"):
            continue
        refs |= {f"env:{e}" for e in root.env_ids}
        refs |= {f"image:{i}" for i in root.image_ids}
    return refs


def publish(engine: Engine, paths: Paths, refs: set[str]) -> None:
    """Make this home's markers on the engine exactly ``refs``."""
    me = home_id(paths)
    have = {str((v.get("Labels") or {}).get(REF, "")): str(v["Name"])
            for v in engine.list_volumes({GCROOT: "ref", HOME: me})}
    owner = f"uid {os.getuid()} {paths.state}"
    for ref in sorted(refs - set(have)):
        engine.create_volume(f"{PREFIX}{me}-{plain(ref.encode())[:16]}",
                             {GCROOT: "ref", HOME: me, REF: ref, OWNER: owner})
    for ref in sorted(set(have) - refs):
        engine.remove_volume(have[ref], missing_ok=True)


def foreign_roots(engine: Engine, paths: Paths) -> list[Root]:
    """One ``home`` root per other aishell home that published markers on this engine."""
    me = home_id(paths)
    homes: dict[str, tuple[str, set[str], set[str]]] = {}
    for v in engine.list_volumes({GCROOT: "ref"}):
        labels = v.get("Labels") or {}
        home = str(labels.get(HOME, ""))
        if not home or home == me:
            continue
        _owner, envs, images = homes.setdefault(home, (str(labels.get(OWNER, home)), set(), set()))
        kind, _, ident = str(labels.get(REF, "")).partition(":")
        (envs if kind == "env" else images if kind == "image" else set()).add(ident)
    return [Root("home", owner, env_ids=frozenset(envs), image_ids=frozenset(images))
            for _home, (owner, envs, images) in sorted(homes.items())]


def publish_home(engine: Engine, paths: Paths) -> None:
    """Recompute this home's roots from its index and publish them (after a sync)."""
    from aishell.store import index, roots  # noqa: PLC0415

    settings = index.store_settings(paths)
    found = roots.collect(paths, index.load(paths), [], keep_generations=settings.keep_generations)
    publish(engine, paths, refs_of(found.roots))
