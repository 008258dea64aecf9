"""The image sandboxes run (`aishell build`): the foundation, or the project's extension."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

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
    )


@contextmanager
def _building(ctx: Context, title: str) -> Iterator[Callable[[str], None]]:
    """Progress for an image build; a failed build prints its failing step's log."""
    with render.progress(title, quiet=ctx.quiet, verbose=ctx.verbose) as on_line:
        try:
            yield on_line
        except AishellError as exc:
            log = getattr(exc, "log", "")
            if log:
                render.err(log.rstrip())
            raise


def ensure_image(ctx: Context, *, force: bool = False) -> str:
    """The tag of the image sandboxes run (the extension's, else the foundation's),
    built first when missing."""
    foundation = foundation_for(ctx)
    if force or not ctx.engine.image_exists(foundation.tag):
        with _building(ctx, f"building the foundation image {foundation.tag}") as on_line:
            ensure_foundation(ctx.engine, foundation, force=force, on_line=on_line)
    ext = extension.find(ctx.project, foundation, ctx.config.table("foundation").get("dockerfile"))
    if ext is None:
        return foundation.tag
    if force or not ctx.engine.image_exists(ext.tag):
        with _building(ctx, f"building the project image {ext.tag}") as on_line:
            extension.ensure_extension(ctx.engine, ext, foundation.tag, ctx.project, force=True,
                                       on_line=on_line)
    return ext.tag


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
