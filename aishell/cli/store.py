"""Printing gc, `store ls`, pins and rollback for people, or as versioned JSON."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from aishell.render import err, print_json, warn
from aishell.store.engineroots import Home
from aishell.store.gc import Candidate, GcResult
from aishell.store.index import Generation, Pin
from aishell.store.listing import Listing, PinResult, RollbackResult
from aishell.units import format_age, format_size

STATUS_TEXT = {
    "too-young": "kept (grace period)",
    "in-use": "kept (in use)",
    "over-budget": "kept (--max-freed reached)",
    "gone": "already gone",
}


def _age(when: datetime | None, now: datetime) -> str:
    return format_age(now - when) if when else "never"


def _size(n: int) -> str:
    return format_size(n) if n >= 0 else "?"


def _short_name(name: str) -> str:
    """Env volume names and image tags carry long hashes: 12 hex digits identify them."""
    head, sep, digest = name.rpartition(":" if ":" in name else "-")
    return f"{head}{sep}{digest[:12]}" if len(digest) > 12 else name


def _short_id(item_id: str) -> str:
    return item_id.removeprefix("sha256:")[:12]


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


# -- gc --------------------------------------------------------------------------------
def gc_payload(result: GcResult) -> dict[str, Any]:
    doc = asdict(result)
    doc["freed_unique_bytes"] = result.freed_unique_bytes
    doc["measured_freed_bytes"] = result.measured_freed_bytes
    doc["older_than_seconds"] = int(result.older_than.total_seconds())
    doc["home_ttl_seconds"] = int(result.home_ttl.total_seconds())
    del doc["older_than"], doc["home_ttl"]
    return doc


def print_gc(result: GcResult, *, as_json: bool, quiet: bool) -> None:
    if as_json:
        print_json("gc", gc_payload(result))
        return
    for message in result.warnings:
        warn(message)
    now = datetime.now(UTC)
    verb = "would remove" if result.dry_run else "removed"
    done = result.removed
    for d in result.dropped_roots:
        print(f"{'would drop' if result.dry_run else 'dropped'} dangling root {d.path} ({d.reason})")
    if result.dropped_generations:
        print(f"{'would drop' if result.dry_run else 'dropped'} {result.dropped_generations} "
              f"generation(s) beyond the newest {result.keep_generations} per project")
    for h in result.homes:
        if h.expired:
            print(f"{'would remove' if result.dry_run else 'removed'} the gc roots of home "
                  f"{h.owner}: last seen {_age(h.last_seen, now)}, longer than [store] "
                  f"gc_home_ttl {_ttl(result.home_ttl)}; its {h.items} item(s) are no longer "
                  "kept for it")
    if result.dry_run and result.homes and not quiet:
        print(f"other aishell homes on this engine, {len(result.homes)}:")
        print("\n".join("  " + line for line in _homes_table(result.homes, now)))
    if result.captures or result.capture_containers:
        print(f"{verb} {len(result.captures)} capture volume(s) "
              f"({format_size(sum(max(c.size, 0) for c in result.captures))}) and "
              f"{result.capture_containers} container(s) left by interrupted `aishell lock` runs")
    if result.egress_services:
        print(f"{verb} the egress service of allowlist mode: no sandbox uses it "
              f"({result.egress_services} container(s))")
    if done and not quiet:
        print(f"{verb} {len(done)} item(s):")
        print("\n".join("  " + line for line in _table([_gc_row(c, now) for c in done])))
    kept = [c for c in result.candidates if c not in done]
    if kept and not quiet:
        print(f"unreachable but kept, {len(kept)} item(s):")
        print("\n".join("  " + line for line in _table(
            [[*_gc_row(c, now), STATUS_TEXT.get(c.status, c.status)] for c in kept])))
    if result.tarballs:
        print(f"{verb} {result.tarballs} unreferenced download-cache file(s) "
              f"({format_size(result.tarball_bytes)})")
    low, high = result.freed_unique_bytes, result.freed_bytes
    summary = f"{'would free' if result.dry_run else 'freed'} {format_size(high)}"
    if result.measured_freed_bytes is not None:
        summary = f"freed {format_size(result.measured_freed_bytes)} (measured by the engine)"
    elif low < high:
        summary = (f"{'would free' if result.dry_run else 'freed'} between {format_size(low)} and "
                   f"{format_size(high)} (images share layers)")
    if not done and not result.tarballs:
        summary = "nothing to remove"
    if result.stopped_early:
        summary += f"; stopped at --max-freed {format_size(result.max_freed or 0)}"
    print(f"{summary}; {result.reachable} item(s) still reachable ({result.seconds:.1f} s)")


def _ttl(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:g}d" if days >= 1 else format_age(delta)


def _homes_table(homes: Sequence[Home], now: datetime) -> list[str]:
    rows = [["HOME", "LAST SEEN", "ITEMS", ""]]
    rows += [[h.owner, _age(h.last_seen, now) + ("" if h.seen_by == "heartbeat" else " (markers)"),
              f"{len(h.env_ids)} env(s), {len(h.image_ids)} image(s)",
              "expired: keeps nothing" if h.expired else ""] for h in homes]
    return _table(rows)


def _gc_row(c: Candidate, now: datetime) -> list[str]:
    return [c.kind, _short_name(c.name), _size(c.size), f"created {_age(c.created, now)}",
            f"last used {_age(c.last_used, now)}"]


def compact_roots(labels: Sequence[str]) -> str:
    """``project:/src/api``, ``project:/src/web``, ``pin:x`` → ``projects api, web; pin x``."""
    groups: dict[str, list[str]] = {}
    for label in labels:
        kind, _, name = label.partition(":")
        if kind == "project":
            name = name.rstrip("/").rsplit("/", 1)[-1]
        elif kind == "generation":
            path, _, number = name.rpartition("#")
            name = f"{path.rstrip('/').rsplit('/', 1)[-1]}#{number}"
        elif kind == "home":  # "uid 1500 /home/bob/.local/state/aishell": the user says enough
            name = " ".join(name.split()[:2])
        groups.setdefault(kind, []).append(name)
    parts = []
    for kind in ("project", "generation", "pin", "container", "home"):
        names = groups.get(kind, [])
        if names:
            shown = ", ".join(names[:4]) + (f" +{len(names) - 4}" if len(names) > 4 else "")
            parts.append(f"{kind}{'s' if len(names) > 1 else ''} {shown}")
    return "; ".join(parts) or "-- (unreachable)"


# -- store ls --------------------------------------------------------------------------
def print_listing(listing: Listing, *, as_json: bool) -> None:
    if as_json:
        print_json("store", asdict(listing))
        return
    for message in listing.warnings:
        warn(message)
    now = datetime.now(UTC)
    if listing.items:
        rows = [["KIND", "NAME", "SIZE", "UNIQUE", "CREATED", "LAST USED", "KEPT BY"]]
        rows += [[i.kind, _short_name(i.name), _size(i.size),
                  _size(i.unique) if i.type == "image" else "", _age(i.created, now),
                  _age(i.last_used, now), compact_roots(i.roots)]
                 for i in listing.items]
        print("\n".join(_table(rows)))
    print(f"total {format_size(listing.total_bytes)} in {len(listing.items)} item(s) (images count "
          f"the layers they share each time); {format_size(listing.reclaimable_bytes)} in items no "
          "root keeps (`aishell gc` removes them)")
    line = f"sharing: {listing.projects} project(s) → {listing.envs_in_use} env(s)"
    if listing.shared_envs:
        line += "; " + ", ".join(f"{name} shared by {n} projects" for name, n in listing.shared_envs)
    print(line)
    print(f"download cache: {listing.download_cache_files} file(s), "
          f"{format_size(listing.download_cache_bytes)}")
    for d in listing.dangling_roots:
        print(f"dangling root: {d.path} ({d.reason}); the next `aishell gc` drops it")
    if listing.homes:
        print(f"other aishell homes on this engine, {len(listing.homes)} (their roots keep "
              "items here too):")
        print("\n".join("  " + line for line in _homes_table(listing.homes, now)))


# -- pins and rollback ----------------------------------------------------------------
def print_pin(result: PinResult, *, as_json: bool, quiet: bool) -> None:
    if as_json:
        print_json("pin", asdict(result))
        return
    if not quiet:
        what = f"{len(result.pin.env_ids)} env(s), {len(result.pin.images)} image(s)"
        print(f"{'re-pinned' if result.replaced else 'pinned'} {result.pin.name}: {what} "
              f"of {result.pin.project}")


def print_pins(pins: Sequence[Pin], *, as_json: bool) -> None:
    if as_json:
        print_json("pins", {"pins": [asdict(p) for p in pins]})
        return
    if not pins:
        err("no pins (`aishell pin [NAME]` in a project makes one)")
        return
    now = datetime.now(UTC)
    rows = [["NAME", "PROJECT", "ENVS", "IMAGES", "CREATED"]]
    rows += [[p.name, p.project, ", ".join(e[:12] for e in p.env_ids) or "-",
              ", ".join(i.tag or _short_id(i.id) for i in p.images) or "-", _age(p.created, now)]
             for p in pins]
    print("\n".join(_table(rows)))


def print_unpin(pin: Pin, *, quiet: bool) -> None:
    if not quiet:
        print(f"unpinned {pin.name} (what only it kept alive goes at the next `aishell gc`)")


def print_generations(gens: Sequence[Generation], current: int | None, *, as_json: bool) -> None:
    if as_json:
        print_json("generations", {"current": current, "generations": [asdict(g) for g in gens]})
        return
    if not gens:
        err("no generations recorded (`aishell sync` records them)")
        return
    now = datetime.now(UTC)
    rows = [["", "GEN", "ENV IDS", "CREATED", "LAST USED"]]
    rows += [["*" if g.number == current else "", str(g.number),
              ", ".join(e[:12] for e in g.env_ids.values()) or "-", _age(g.created, now),
              _age(g.last_used, now)] for g in gens]
    print("\n".join(_table(rows)))


def print_rollback(result: RollbackResult, *, as_json: bool, quiet: bool) -> None:
    if as_json:
        print_json("rollback", asdict(result))
        return
    if quiet:
        return
    verb = "would restore" if result.dry_run else "restored"
    print(f"{verb} {result.lock_path} from generation {result.to_generation}"
          + (f" (was {result.from_generation})" if result.from_generation is not None else ""))
    if result.env_present is True:
        print("its env is still in the store: `aishell sync` (or the next run) uses it without a rebuild")
    elif result.env_present is False:
        print("its env is no longer in the store: `aishell sync` rebuilds it")


def _engine(ctx: Any) -> Any:
    """The engine, even where the project's config is broken: unpin needs no project."""
    from aishell.errors import AishellError  # noqa: PLC0415

    try:
        return ctx.engine
    except AishellError:
        from aishell.engine import Engine  # noqa: PLC0415

        return Engine()


def dispatch(ctx: Any, ns: argparse.Namespace, _routed: object) -> int:
    """The store commands (gc, store ls, pin, unpin, rollback)."""
    command = ns.command
    from aishell.store import index  # noqa: PLC0415
    from aishell.store import listing as store  # noqa: PLC0415

    if command == "gc":
        from aishell import render  # noqa: PLC0415
        from aishell.store.gc import collect_garbage  # noqa: PLC0415
        from aishell.units import parse_duration, parse_size  # noqa: PLC0415

        result = collect_garbage(
            ctx.paths, ctx.engine, dry_run=ns.dry_run,
            older_than=parse_duration(ns.older_than) if ns.older_than else None,
            keep_generations=ns.keep_generations,
            max_freed=parse_size(ns.max_freed) if ns.max_freed else None,
            on_wait=None if ctx.quiet else render.err,
        )
        print_gc(result, as_json=ctx.json, quiet=ctx.quiet)
    elif command == "store" and ns.store_command in ("push", "pull"):
        from aishell.cli import substitute as cli_substitute  # noqa: PLC0415

        return cli_substitute.dispatch(ctx, ns)
    elif command == "store":
        print_listing(store.list_store(ctx.paths, ctx.engine), as_json=ctx.json)
    elif command == "pin" and ns.list:
        print_pins(index.pins(ctx.paths), as_json=ctx.json)
    elif command == "pin":
        print_pin(store.pin_project(ctx.paths, ctx.project, ns.name, engine=ctx.engine),
                  as_json=ctx.json, quiet=ctx.quiet)
    elif command == "unpin":
        print_unpin(store.unpin(ctx.paths, _engine(ctx), ns.name), quiet=ctx.quiet)
    elif command == "rollback" and ns.list:
        gens, current = index.generations(ctx.paths, ctx.project)
        print_generations(gens, current, as_json=ctx.json)
    elif command == "rollback":
        restored = store.rollback(ctx.paths, ctx.engine, ctx.project, to=ns.to,
                                  dry_run=ns.dry_run, force=ns.force)
        print_rollback(restored, as_json=ctx.json, quiet=ctx.quiet)
    return 0
