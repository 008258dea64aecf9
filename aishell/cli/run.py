"""Printing the results of run, ps and migrate (people and --json)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aishell import render
from aishell.cli.routing import Routed

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


def network_cell(b: Sandbox) -> str:
    """``open``, ``none``, ``allowlist`` or ``allowlist, 3 denied (pypi.org, …)``; with
    ``gateway HOST`` after the mode when the sandbox was pointed at a model gateway."""
    cell = b.network
    if b.gateways:
        cell += f", gateway {', '.join(b.gateways)}"
    if b.credentials:
        cell += f", credentials: brokered ({', '.join(b.credentials)})"
    if b.denied is None or b.denied == 0:
        return cell
    hosts = ", ".join(b.denied_hosts[:3]) + (", …" if len(b.denied_hosts) > 3 else "")
    return f"{cell}, {b.denied} denied ({hosts})"


def print_sandboxes(ctx: Context, boxes: Sequence[Sandbox], *, every_project: bool) -> None:
    if ctx.json:
        render.print_json("ps", {"sandboxes": [asdict(b) for b in boxes]})
        return
    if not boxes:
        if not ctx.quiet:
            where = "" if every_project else f" for {ctx.project}"
            render.err(f"no sandboxes{where}")
        return
    head = ["NAME", "HARNESS", "ENV", "STATUS", "UPTIME", "PRE-START", "NETWORK"]
    if every_project:
        head.append("PROJECT")
    rows = [head]
    for b in boxes:
        row = [b.name, b.harness or "shell", b.env_id or "-", b.status,
               uptime(b.uptime_seconds), b.pre_start or "-", network_cell(b)]
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


def dispatch(ctx: Context, ns: argparse.Namespace, routed: Routed) -> int:
    """shell, run (and the harness shortcut), exec, attach, ps, stop, migrate, gitleaks."""
    command = ns.command or "shell"
    if command == "shell":
        if ns.command is None:  # bare `aishell`
            from aishell.run.plan import RunOptions  # noqa: PLC0415

            return _launch(ctx, RunOptions())
        return _launch(ctx, _run_options_of(ns, Routed([])))
    if command == "run":
        return _launch(ctx, _run_options_of(ns, routed))
    if command == "exec":
        from aishell.run import launch as run  # noqa: PLC0415

        return run.exec_command(ctx, _after_dashes(ns.cmd), locked=ns.locked,
                                frozen=ns.frozen, offline=ns.offline)
    if command == "gitleaks":
        from aishell.run import gitleaks  # noqa: PLC0415

        result = gitleaks.scan(ctx, _after_dashes(ns.gitleaks_args))
        gitleaks.print_result(ctx, result)
        return result.exit_code
    return _dispatch_sandboxes(ns, ctx, command)


def _after_dashes(words: Sequence[str]) -> list[str]:
    words = list(words)
    return words[1:] if words[:1] == ["--"] else words


def _run_options_of(ns: argparse.Namespace, routed: Routed) -> Any:
    from aishell.run.plan import RunOptions  # noqa: PLC0415

    return RunOptions(
        harness=routed.harness, args=tuple(routed.harness_args), name=ns.name,
        detach=ns.detach, env=tuple(ns.env), volumes=tuple(ns.volume),
        ports=tuple(ns.publish), unsafe=ns.unsafe, locked=ns.locked, frozen=ns.frozen,
        offline=ns.offline, substituters=tuple(ns.substituter), no_substitute=ns.no_substitute,
    )


def _launch(ctx: Any, opts: Any) -> int:
    from aishell.cli.run import print_started  # noqa: PLC0415
    from aishell.run import launch as run  # noqa: PLC0415

    result = run.run(ctx, opts)
    if isinstance(result, int):
        return result
    print_started(ctx, result)
    return 0


def _dispatch_sandboxes(ns: argparse.Namespace, ctx: Any, command: str) -> int:
    if command == "attach":
        from aishell.run import sandboxes  # noqa: PLC0415

        return sandboxes.attach(ctx, ns.sandbox, _after_dashes(ns.cmd))
    if command == "ps":
        from aishell.cli.run import print_sandboxes  # noqa: PLC0415
        from aishell.run import sandboxes  # noqa: PLC0415

        print_sandboxes(ctx, sandboxes.ps(ctx, every_project=ns.all), every_project=ns.all)
        return 0
    if command == "stop":
        from aishell.run import sandboxes  # noqa: PLC0415

        container = sandboxes.stop(ctx, ns.sandbox, timeout=ns.time)
        if not ctx.quiet:
            print(f"stopped {ns.sandbox} ({container})")
        return 0
    if command == "migrate":
        from aishell.cli.run import print_migrated  # noqa: PLC0415
        from aishell.project import migrate  # noqa: PLC0415

        print_migrated(ctx, migrate.migrate(ctx, dry_run=ns.dry_run, force=ns.force))
        return 0
    raise AssertionError(command)  # pragma: no cover
