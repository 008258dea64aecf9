"""The image sandboxes run (`aishell build`): the foundation, or the project's extension."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from aishell import extension, process, render
from aishell.context import Context
from aishell.errors import AishellError
from aishell.foundation import Foundation, ensure_foundation
from aishell.request import ContainerRequest, cli_args


def foundation_for(ctx: Context) -> Foundation:
    table = ctx.config.table("foundation")
    return Foundation.from_settings(
        base=table.get("base", Foundation.from_settings().base),
        extra_packages=table.get("packages", ()),
        sudo=ctx.config.table("run").get("sudo", False) is True,
    )


@contextmanager
def _building(ctx: Context, title: str) -> Iterator[Callable[[str], None]]:
    """Progress for an image build (a failure's log is printed by the one error handler,
    aishell.errors_report, with the error)."""
    with render.progress(title, quiet=ctx.quiet, verbose=ctx.verbose) as on_line:
        yield on_line


def _record_launch(ctx: Context, images: Sequence[tuple[str, str, str]]) -> None:
    """Tell the store index which images this project uses (gc roots): (role, id, tag)."""
    from aishell import indexfile  # noqa: PLC0415 - only what recording needs

    try:
        indexfile.record_launch(ctx.paths, ctx.project, images)
    except (AishellError, OSError) as exc:
        render.warn(f"could not record this launch in the store index: {exc}")


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
        with _building(ctx, f"building the foundation image {foundation.tag}") as on_line:
            foundation_id = ensure_foundation(ctx.engine, foundation, force=force,
                                              on_line=on_line).image_id
        built.append(foundation.tag)
    used = [("foundation", foundation_id, foundation.tag)]
    tag = foundation.tag
    ext = extension.find(ctx.project, foundation, ctx.config.table("foundation").get("dockerfile"))
    if ext is not None:
        ext_id = "" if force else _image_id(ctx, ext.tag)
        if not ext_id:
            with _building(ctx, f"building the project image {ext.tag}") as on_line:
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


# The launch pipeline lives in aishell.commands.run; these keep the older entry points.
def sandbox_request(ctx: Context, command: Sequence[str], *, tty: bool) -> ContainerRequest:
    """The request of a one-off sandbox running ``command`` (config applied, no name)."""
    from aishell.commands import run  # noqa: PLC0415 - run imports this module

    return run.prepare(ctx, run.RunOptions(), tty=tty, one_shot=True, command=command).request


def launch(ctx: Context, req: ContainerRequest) -> int:
    """Hand the terminal to the engine CLI running ``req``; its exit code is ours."""
    os.environ.update(req.process_env())
    sys.stdout.flush()
    sys.stderr.flush()
    return process.replace_process(cli_args(req, ctx.engine.cli))


def shell(ctx: Context) -> int:
    from aishell.commands import run  # noqa: PLC0415

    result = run.run(ctx, run.RunOptions())
    assert isinstance(result, int)
    return result


def exec_command(ctx: Context, command: Sequence[str]) -> int:
    from aishell.commands import run  # noqa: PLC0415

    return run.exec_command(ctx, command)
