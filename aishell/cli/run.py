"""Printing the results of run, ps and migrate (people and --json)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

from aishell import render

if TYPE_CHECKING:
    from aishell.project.context import Context
    from aishell.project.migrate import Migrated
    from aishell.run.launch import Started
    from aishell.run.sandboxes import Sandbox


def print_started(ctx: Context, started: Started) -> None:
    if ctx.quiet:
        return
    print(f"started {started.name} ({started.container}) in the background")
    print(f"  join it:  aishell attach {started.name}    (leave again: Ctrl-B D)")
    print(f"  stop it:  aishell stop {started.name}")


def uptime(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def print_sandboxes(ctx: Context, boxes: Sequence[Sandbox], *, every_project: bool) -> None:
    if ctx.json:
        render.print_json("ps", {"sandboxes": [asdict(b) for b in boxes]})
        return
    if not boxes:
        if not ctx.quiet:
            where = "" if every_project else f" for {ctx.project}"
            render.err(f"no sandboxes{where}")
        return
    head = ["NAME", "HARNESS", "ENV", "STATUS", "UPTIME", "PRE-START"]
    if every_project:
        head.append("PROJECT")
    rows = [head]
    for b in boxes:
        row = [b.name, b.harness or "shell", b.env_id or "-", b.status,
               uptime(b.uptime_seconds), b.pre_start or "-"]
        if every_project:
            row.append(b.project)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


def print_migrated(ctx: Context, done: Sequence[Migrated]) -> None:
    for m in done:
        if not m.written:
            print(f"# {m.target} (from {m.source}), not written (--dry-run)")
            print(m.text, end="")
        elif not ctx.quiet:
            print(f"wrote {m.target} from {m.source} (the original is left in place)")
