"""The image sandboxes run (`aishell build`): the foundation, or the project's extension."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aishell import render
from aishell.engine import Engine
from aishell.errors import AishellError
from aishell.lock.foundation import PROXY_VARS, Foundation
from aishell.lock.foundation import foundation_for as _foundation_of
from aishell.project.context import Context
from aishell.store import extension


def foundation_for(ctx: Context) -> Foundation:
    return _foundation_of(ctx.config)


@dataclass(frozen=True)
class FoundationState:
    tag: str
    id: str
    present: bool
    built: bool
    image_id: str


def ensure_foundation(
    engine: Engine,
    foundation: Foundation,
    *,
    force: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> FoundationState:
    """Build the foundation image unless its tag exists (or ``force``)."""
    existing = engine.image_inspect(foundation.tag)
    if existing is not None and not force:
        return FoundationState(foundation.tag, foundation.id, True, False, str(existing["Id"]))
    base = engine.image_inspect(foundation.base)
    if base is None:
        raise AishellError(
            f"the base image {foundation.base} is not available to the engine",
            hint=f"`docker pull {foundation.base}`, or create it locally with scripts/provision.sh",
        )
    import tempfile  # noqa: PLC0415 - only when building (keeps a no-op sync lean)

    with tempfile.TemporaryDirectory(prefix="aishell-foundation-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(foundation.dockerfile(), encoding="utf-8")
        (ctx / "entrypoint.sh").write_bytes(foundation.entrypoint)
        buildargs = {k: v for k, v in os.environ.items() if k in PROXY_VARS}
        image_id = engine.build_image(
            ctx,
            tag=foundation.tag,
            labels=foundation.labels(str(base["Id"])),
            buildargs=buildargs,
            on_line=on_line,
        )
    return FoundationState(foundation.tag, foundation.id, True, True, image_id)


@contextmanager
def building(ctx: Context, title: str) -> Iterator[Callable[[str], None]]:
    """Progress for an image build (a failure's log is printed by the one error handler,
    aishell.cli.crash, with the error)."""
    with render.progress(title, quiet=ctx.quiet, verbose=ctx.verbose) as on_line:
        yield on_line


def _record_launch(ctx: Context, images: Sequence[tuple[str, str, str]]) -> None:
    """Tell the store index which images this project uses (gc roots): (role, id, tag)."""
    from aishell.store import indexfile  # noqa: PLC0415 - only what recording needs

    try:
        indexfile.record_launch(ctx.paths, ctx.project, images)
    except (AishellError, OSError) as exc:
        render.warn(f"could not record this launch in the store index: {exc}")
        return
    from aishell.store import engineroots  # noqa: PLC0415

    engineroots.publish_or_warn(ctx.engine, ctx.paths)  # the project's images are roots now


def _image_id(ctx: Context, tag: str) -> str:
    data = ctx.engine.image_inspect(tag)
    return str(data["Id"]) if data else ""


@dataclass(frozen=True)
class Images:
    """The image a sandbox runs, and every image it rests on: (role, id, tag)."""

    tag: str
    used: tuple[tuple[str, str, str], ...]
    built: tuple[str, ...]


def ensure_images(ctx: Context, *, force: bool = False, record: bool = True) -> Images:
    """The foundation and (when the project has one) extension image, built when missing."""
    foundation = foundation_for(ctx)
    built: list[str] = []
    foundation_id = "" if force else _image_id(ctx, foundation.tag)
    if not foundation_id:
        with building(ctx, f"building the foundation image {foundation.tag}") as on_line:
            foundation_id = ensure_foundation(ctx.engine, foundation, force=force,
                                              on_line=on_line).image_id
        built.append(foundation.tag)
    used = [("foundation", foundation_id, foundation.tag)]
    tag = foundation.tag
    ext = extension.find(ctx.project, foundation, ctx.config.table("foundation").get("dockerfile"))
    if ext is not None:
        ext_id = "" if force else _image_id(ctx, ext.tag)
        if not ext_id:
            with building(ctx, f"building the project image {ext.tag}") as on_line:
                extension.ensure_extension(ctx.engine, ext, foundation.tag, ctx.project,
                                           force=True, on_line=on_line)
            ext_id = _image_id(ctx, ext.tag)
            built.append(ext.tag)
        used.append(("extension", ext_id, ext.tag))
        tag = ext.tag
    if record:
        _record_launch(ctx, used)
    return Images(tag, tuple(used), tuple(built))


def ensure_image(ctx: Context, *, force: bool = False) -> str:
    """The tag of the image sandboxes run (the extension's, else the foundation's),
    built first when missing."""
    return ensure_images(ctx, force=force).tag
