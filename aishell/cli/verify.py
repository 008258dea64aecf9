"""Printing `verify` results for people or as JSON."""

from __future__ import annotations

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
