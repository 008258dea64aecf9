"""`aishell sync` at the edge: progress while it works, a summary or JSON when done."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from aishell import render
from aishell.project.context import Context
from aishell.store.sync import SyncResult, sync


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1000
    return f"{n} B"  # pragma: no cover


def summary(result: SyncResult) -> list[str]:
    lines = []
    if result.lock == "relocked":
        lines.append("locked: aishell.lock updated")
    for tag in result.images_built:
        lines.append(f"built {tag}")
    for tag in result.images_missing:
        lines.append(f"missing {tag}")
    env = result.env
    if env is None:
        lines.append("no harnesses locked: no env to sync")
    elif env.state == "reused":
        lines.append(f"env {env.volume} ({env.platform}) is complete: reused, nothing downloaded")
    elif env.state == "missing":
        lines.append(f"missing env {env.volume} ({env.platform})")
    elif env.state in ("restored", "substituted"):
        where = "its local archive" if env.source == "archive" else env.source
        lines.append(f"{env.state} env {env.volume} ({env.platform}) from {where}: {env.files} "
                     f"files, {_size(env.bytes)} in {env.seconds:.1f} s, tree digest checked")
    else:
        d = result.downloads
        lines.append(f"built env {env.volume} ({env.platform}): {env.files} files, "
                     f"{_size(env.bytes)} in {env.seconds:.1f} s; downloaded {d.fetched} of "
                     f"{d.needed} tarballs ({_size(d.bytes)})")
    check = env.rebuild_check if env is not None else None
    if check is not None and env is not None:
        lines.append(f"rebuild check: the local build's tree digest {check.tree_digest[:16]} "
                     + ("matches" if check.matches else f"DIFFERS from {env.tree_digest[:16]}"))
    return lines


def dispatch(ctx: Context, ns: argparse.Namespace, _routed: object) -> int:
    from aishell.run import plancache  # noqa: PLC0415

    with plancache.capturing() as (out, err):
        with render.lazy_progress("syncing", quiet=ctx.quiet or ctx.json,
                                  verbose=ctx.verbose) as on_status:
            result = sync(ctx, locked=ns.locked, frozen=ns.frozen, offline=ns.offline,
                          check=ns.check, force=ns.force, substituters=ns.substituter,
                          no_substitute=ns.no_substitute, rebuild_check=ns.rebuild_check,
                          on_status=on_status,
                          on_line=on_status if ctx.verbose else lambda _l: None)
        if ctx.json:
            data = {**asdict(result), "complete": result.complete}
            del data["images_used"]
            render.print_json("sync", data)
        elif not ctx.quiet:
            for line in summary(result):
                print(line)
    code = 0 if result.ok else 1
    if (code == 0 and not ctx.json and not (ns.check or ns.force or ns.rebuild_check)
            and result.lock == "fresh" and not result.images_built and result.env is not None
            and result.env.state == "reused"
            and all(line.startswith("warning: ") for line in err.text.splitlines())):
        # A no-op: the next identical sync is answered from the plan cache while every
        # input, image id and the env are as they are now (aishell.run.fast).
        plancache.save_sync(ctx, result, out.text, err.text)
    return code
