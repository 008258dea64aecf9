"""The image every sandbox runs on (`aishell build`), shared by the launch commands."""

from __future__ import annotations

from aishell import render
from aishell.context import Context
from aishell.errors import AishellError
from aishell.foundation import Foundation, ensure_foundation


def foundation_for(ctx: Context) -> Foundation:
    table = ctx.config.table("foundation")
    return Foundation.from_settings(
        base=table.get("base", Foundation.from_settings().base),
        extra_packages=table.get("packages", ()),
    )


def ensure_image(ctx: Context, *, force: bool = False) -> str:
    """The tag of the image sandboxes run, built first when missing."""
    foundation = foundation_for(ctx)
    if not force and ctx.engine.image_exists(foundation.tag):
        return foundation.tag
    with render.progress(f"building the foundation image {foundation.tag}",
                         quiet=ctx.quiet, verbose=ctx.verbose) as on_line:
        try:
            ensure_foundation(ctx.engine, foundation, force=force, on_line=on_line)
        except AishellError as exc:
            log = getattr(exc, "log", "")
            if log:
                render.err(log.rstrip())
            raise
    return foundation.tag
