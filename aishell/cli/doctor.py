"""Printing `check` findings and `info` for people or as JSON."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from aishell.project.context import Context
from aishell.render import print_json
from aishell.run.doctor import Finding

MARKS = {"ok": "✓", "fail": "✗", "warn": "!", "info": "·"}
STYLES = {"ok": "green", "fail": "red", "warn": "yellow", "info": "dim"}


def print_findings(ctx: Context, findings: Sequence[Finding]) -> None:
    if ctx.json:
        print_json("check", {"ok": not any(f.status == "fail" for f in findings),
                             "findings": [asdict(f) for f in findings]})
        return
    from rich.console import Console  # noqa: PLC0415

    console = Console(no_color=not ctx.color, highlight=False, soft_wrap=True)
    width = max(len(f.subject) for f in findings)
    for f in findings:
        console.print(f"[{STYLES[f.status]}]{MARKS[f.status]}[/] {f.subject.ljust(width)}  "
                      f"{f.detail}", markup=True)
        if f.hint and f.status in ("fail", "warn"):
            console.print(f"  {' ' * width}  [dim]hint: {f.hint}[/]")


def print_info(ctx: Context, data: dict[str, Any]) -> None:
    if ctx.json:  # `version` is the envelope's: aishell's own is `aishell_version`
        print_json("info", {"aishell_version": data["version"],
                            **{k: v for k, v in data.items() if k != "version"}})
        return
    engine = data.get("engine")
    rows = [
        ("aishell", data["version"]),
        ("python", data["python"]),
        ("platform", data["platform"]),
        ("project", data["project"]),
        ("config", data["config"]),
        ("state", data["state"]),
        ("cache", data["cache"]),
        ("engine", f"{engine['version']} (API {engine['api_version']})" if engine
         else f"unavailable: {data['engine_error']}"),
        ("foundation", f"{data['foundation_tag']} from {data['foundation_base']}"),
        ("CA bundle", data["ca_bundle"] or "none"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")


def dispatch(ctx: Context, ns: argparse.Namespace, _routed: object) -> int:
    """check, info, build."""
    if ns.command == "check":
        from aishell.run import doctor  # noqa: PLC0415

        findings = doctor.check(ctx)
        if ns.network and not any(f.status == "fail" for f in findings):
            from aishell.run import netcheck  # noqa: PLC0415

            findings += netcheck.probe(ctx)
        print_findings(ctx, findings)
        return 1 if any(f.status == "fail" for f in findings) else 0
    if ns.command == "info":
        if ns.foundation:
            from aishell.store.images import foundation_for  # noqa: PLC0415

            print(foundation_for(ctx).dockerfile(), end="")
            return 0
        from aishell.run import doctor  # noqa: PLC0415

        print_info(ctx, asdict(doctor.info(ctx)))
        return 0
    from aishell.store.images import ensure_image  # noqa: PLC0415

    tag = ensure_image(ctx, force=ns.force)
    if not ctx.quiet:
        print(tag)
    return 0
