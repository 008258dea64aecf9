"""Rows: tree digest throughput against sha256sum over the same bytes."""

from __future__ import annotations

from pathlib import Path

from bench.bench_treedigest import LABELS, build_tree, sh, volume_copy
from bench.context import BenchContext
from bench.timing import Row, alternate, time_call


def _tree(ctx: BenchContext) -> Path:
    tree = ctx.workdir / "digest-tree"
    if not tree.exists():
        build_tree(tree)
    sh(f"tar -C '{tree}' -cf - . | cat > /dev/null")  # warm the page cache
    return tree


def _note(mb: float, files: int, aishell: float, baseline: float) -> str:
    return (f"{files} files, {mb:.0f} MB: {mb / aishell:.0f} MB/s vs {mb / baseline:.0f} MB/s")


def digest_directory_row(ctx: BenchContext) -> Row:
    from aishell.store.treedigest import digest_directory

    tree = _tree(ctx)
    result = digest_directory(tree)
    a, b = alternate(
        lambda: time_call(lambda: digest_directory(tree)),
        lambda: time_call(lambda: sh(f"find '{tree}' -type f -print0 | xargs -0 sha256sum")),
        ctx.repeat,
    )
    mb = result.bytes / 1e6
    return Row("tree digest of a directory vs sha256sum of every file (find, xargs)", a, b,
               "faster than sha256sum", a.median < b.median,
               note=_note(mb, result.files, a.median, b.median),
               extra={"mb_per_s": mb / a.median, "baseline_mb_per_s": mb / b.median})


def digest_volume_row(ctx: BenchContext) -> Row:
    from aishell.store.envs import compute_digest

    with volume_copy(_tree(ctx)) as (engine, image, volume, helper):
        result = compute_digest(engine, volume, image=image, labels=LABELS, via="engine")
        a, b = alternate(
            lambda: time_call(lambda: compute_digest(engine, volume, image=image, labels=LABELS,
                                                     via="engine")),
            lambda: time_call(lambda: sh(f"{engine.cli} cp {helper}:/v - | sha256sum")),
            ctx.repeat,
        )
    mb = result.bytes / 1e6
    return Row("tree digest of an env volume via the engine's tar stream vs "
               "`docker cp` into sha256sum", a, b, "faster than sha256sum", a.median < b.median,
               note=_note(mb, result.files, a.median, b.median),
               extra={"mb_per_s": mb / a.median, "baseline_mb_per_s": mb / b.median})
