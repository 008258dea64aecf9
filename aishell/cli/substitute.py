"""`aishell store push` / `aishell store pull` at the edge: parsers, progress, a summary or JSON."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from aishell import render
from aishell.project.context import Context


def add_parsers(store_sub: Any, common: argparse.ArgumentParser) -> None:
    p = store_sub.add_parser("push", parents=[common],
                             help="publish this project's env as an image to a substituter")
    p.add_argument("--to", metavar="REF",
                   help="registry path, e.g. localhost:5000/aishell (default: the first "
                   "[store] substituters entry)")
    p.add_argument("--all", action="store_true",
                   help="every complete env on this machine and the foundation image")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = store_sub.add_parser("pull", parents=[common],
                             help="fetch this project's env from a substituter, digest checked")
    p.add_argument("--from", dest="sources", action="append", default=[], metavar="REF",
                   help="registry path to try first (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def dispatch(ctx: Context, ns: argparse.Namespace) -> int:
    from aishell.store import publish  # noqa: PLC0415

    with render.lazy_progress(ns.store_command + "ing", quiet=ctx.quiet or ctx.json,
                              verbose=ctx.verbose) as on_status:
        if ns.store_command == "push":
            pushed = publish.push(ctx, to=ns.to, all_envs=ns.all, on_status=on_status)
        else:
            pulled = publish.pull(ctx, substituters=ns.sources, on_status=on_status,
                                  on_warn=render.warn)
    if ns.store_command == "push":
        if ctx.json:
            render.print_json("store-push", asdict(pushed))
        elif not ctx.quiet:
            for item in pushed.pushed:
                print(f"pushed {item.kind} {item.id[:12]} to {item.ref} ({item.digest[:19]})")
        return 0
    if ctx.json:
        render.print_json("store-pull", asdict(pulled))
    elif not ctx.quiet:
        if pulled.state == "reused":
            print(f"env {pulled.env_id[:12]} is complete here already: nothing pulled")
        elif pulled.state == "substituted":
            print(f"pulled env {pulled.env_id[:12]} from {pulled.source}: tree digest "
                  f"{pulled.tree_digest[:16]} checked")
        else:
            print(f"no substituter had env {pulled.env_id[:12]}")
    return 0 if pulled.state != "missing" else 1
