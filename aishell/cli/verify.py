"""Printing `verify` results for people or as JSON."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from aishell.project.context import Context
from aishell.render import err, print_json
from aishell.store.verify import VerifyReport


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def print_report(ctx: Context, report: VerifyReport) -> None:
    if ctx.json:
        print_json("verify", {"ok": report.ok, "envs": [asdict(e) for e in report.envs]})
        return
    if not report.envs:
        if not ctx.quiet:
            print("no env volumes to verify")
        return
    for e in report.envs:
        short = e.env_id[:12] or e.volume
        if e.status == "ok":
            if not ctx.quiet:
                rate = e.bytes / e.seconds / 1e6 if e.seconds > 0 else 0.0
                print(f"✓ env {short} ({e.platform}): {e.files} files, {_size(e.bytes)}, "
                      f"{e.seconds:.1f} s ({rate:.0f} MB/s)")
        elif e.status == "incomplete":
            if not ctx.quiet:
                print(f"! env {short} ({e.platform}): incomplete — never mounted; "
                      "`aishell sync` rebuilds it")
        else:
            err(f"✗ env {short} ({e.platform}): tree digest mismatch in volume {e.volume}: "
                f"recorded {e.recorded}, now {e.actual}")
    if not report.ok:
        err("hint: the volume was changed after it was built; `aishell sync --force` "
            "rebuilds it")


def dispatch(ctx: Context, ns: argparse.Namespace, _routed: object) -> int:
    from aishell import render  # noqa: PLC0415
    from aishell.errors import UsageError  # noqa: PLC0415
    from aishell.store import verify  # noqa: PLC0415

    if ns.all and ns.env:
        raise UsageError("pass env ids or --all, not both")
    wanted = list(ns.env)
    if not ns.all and not wanted:  # this project's env on this machine
        from aishell.store.sync import project_env_id  # noqa: PLC0415

        wanted = [project_env_id(ctx, what="verify",
                                 hint="`aishell verify --all` checks every env volume")]
    on_env = None if ctx.quiet or ctx.json else (lambda v: render.err(f"verifying {v}…"))
    report = verify.verify(ctx.engine, ctx.paths, wanted=None if ns.all else wanted,
                           on_wait=render.err, on_env=on_env)
    print_report(ctx, report)
    return 0 if report.ok else 1
