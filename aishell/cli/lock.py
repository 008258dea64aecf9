"""Dispatch and rendering for lock, add, remove, init and tree."""

from __future__ import annotations

import argparse
from typing import Any

from aishell import render


def dispatch(ctx: Any, ns: argparse.Namespace, _routed: object) -> int:
    from aishell.lock import locking as cmd  # noqa: PLC0415

    status = _status(ctx)

    def image() -> str:
        from aishell.store.images import ensure_image  # noqa: PLC0415 - only when resolving

        return ensure_image(ctx)

    def capture(*args: Any) -> Any:
        # Imported only when a lock resolves something: `lock --check` and a fresh
        # re-lock never record downloads.
        from aishell.store.fetch import recorder  # noqa: PLC0415

        return recorder(ctx, image)(*args)

    if ns.command == "lock" and ns.check:
        from aishell.run import plancache  # noqa: PLC0415

        with plancache.capturing() as (out, err):
            result = cmd.lock(ctx, check=True, upgrade=ns.upgrade,
                              upgrade_packages=ns.upgrade_package, dry_run=ns.dry_run,
                              on_status=status, image=image, capture=capture)
            print_lock(ctx, result)
        if result.exit_code == 0 and result.status == "fresh":
            # A fresh check is a function of files alone: the next identical one is
            # answered from the plan cache without loading the lock (aishell.run.fast).
            plancache.save_answer(ctx, 0, out.text, err.text)
        return result.exit_code
    if ns.command == "lock":
        before = _env_ids(ctx)
        result = cmd.lock(ctx, check=False, upgrade=ns.upgrade,
                          upgrade_packages=ns.upgrade_package, dry_run=ns.dry_run,
                          on_status=status, image=image, capture=capture)
        _publish_if_moved(ctx, before, result)
        print_lock(ctx, result)
        return result.exit_code
    if ns.command in ("add", "remove"):
        fn = cmd.add if ns.command == "add" else cmd.remove
        before = _env_ids(ctx)
        edit = fn(ctx, ns.specs if ns.command == "add" else ns.names, relock=not ns.no_lock,
                  on_status=status, image=image, capture=capture)
        if edit.lock is not None:
            _publish_if_moved(ctx, before, edit.lock)
        if not ctx.quiet:
            verb = "added" if ns.command == "add" else "removed"
            render.err(f"{verb} {', '.join(edit.names)} in {edit.manifest}")
        if edit.lock is not None:
            print_lock(ctx, edit.lock)
        return 0
    if ns.command == "init":
        edit = cmd.init(ctx, ns.harness)
        if not ctx.quiet:
            render.err(f"wrote {edit.manifest}; next: `aishell lock`")
        return 0
    if ns.command == "tree":
        print_tree(ctx, cmd.tree(ctx))
        return 0
    raise AssertionError(ns.command)  # pragma: no cover


def _env_ids(ctx: Any) -> set[str] | None:
    """The env ids the project's lock names now (None: no readable lock)."""
    from aishell.errors import AishellError  # noqa: PLC0415
    from aishell.lock import refs  # noqa: PLC0415

    try:
        return refs.env_ids_of(ctx.config.lock_path.read_bytes())
    except (OSError, refs.LockUnreadable, AishellError):  # the command itself says what is wrong
        return None


def _publish_if_moved(ctx: Any, before: set[str] | None, result: Any) -> None:
    """A lock naming new env ids changes the gc root of a project this home recorded:
    publish it on the engine (other homes' gc must see it). A lock that wrote nothing, or
    of a project never synced or run here, has nothing to publish (and needs no engine)."""
    if result.status != "written" or set(result.env_ids.values()) == (before or set()):
        return
    from aishell.errors import AishellError  # noqa: PLC0415
    from aishell.store import engineroots, index  # noqa: PLC0415

    try:
        recorded = index.project_key(ctx.project) in index.load(ctx.paths).projects
    except AishellError:  # a damaged index: gc says so; the lock itself is written
        return
    if recorded:
        engineroots.publish_or_warn(ctx.engine, ctx.paths)


def _status(ctx: Any) -> Any:
    if ctx.quiet or ctx.json:
        return lambda _msg: None
    return lambda msg: render.err(f"  {msg}")


def print_lock(ctx: Any, result: Any) -> None:
    if ctx.json:
        render.print_json("lock", {
            "path": str(result.path), "status": result.status, "reasons": list(result.reasons),
            "warnings": list(result.warnings),
            "changes": [{"name": c.name, "old": c.old, "new": c.new} for c in result.changes],
            "env_ids": result.env_ids,
        })
        return
    if result.status in ("stale", "missing"):
        render.err(f"{result.path} is {result.status}:")
        for reason in result.reasons:
            render.err(f"  - {reason}")
        render.err("hint: run `aishell lock`")
        return
    for warning in result.warnings:
        render.warn(warning)
    if ctx.quiet:
        return
    if result.status == "fresh":
        render.err(f"{result.path} is up to date")
        return
    shown = [c for c in result.changes if ": " not in c.name] if not ctx.verbose else list(result.changes)
    for c in shown:
        if c.old is None:
            render.err(f"  + {c.name} {c.new}")
        elif c.new is None:
            render.err(f"  - {c.name} {c.old}")
        else:
            render.err(f"  ~ {c.name} {c.old} -> {c.new}")
    deps = len(result.changes) - len([c for c in result.changes if ": " not in c.name])
    if deps and not ctx.verbose:
        render.err(f"  ({deps} closure package change(s); -v lists them)")
    if result.status == "unchanged":
        render.err(f"{result.path} is up to date (unchanged, {result.seconds:.1f} s)")
        return
    verb = "would write" if result.status == "dry-run" else "wrote"
    render.err(f"{verb} {result.path} ({result.seconds:.1f} s)")


def print_tree(ctx: Any, tree: dict[str, Any]) -> None:
    if ctx.json:
        render.print_json("tree", tree)
        return
    rt = tree["runtime"]
    node = ", ".join(f"{p} {v['version']}" for p, v in rt["node"].items())
    print(f"node {node}; npm {rt['npm']['version']}")
    for platform, eid in tree["env_ids"].items():
        print(f"env {platform}: {eid[:16]}")
    for h in tree["harnesses"]:
        print(f"{h['name']} {h['package']}@{h['version']} (requested {h['requested']!r}, "
              f"bins: {', '.join(h['bins'])})")
        for p in h["packages"]:
            where = "" if len(p["platforms"]) == len(tree["platforms"]) else \
                f"  [{', '.join(p['platforms']) or 'no listed platform'}]"
            depth = p["path"].count("node_modules/") - 1
            name = p["path"].rsplit("node_modules/", 1)[-1]
            print(f"  {'  ' * depth}{name} {p['version']}{where}")
