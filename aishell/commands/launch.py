"""`aishell` / `aishell shell` and `aishell exec`: start a sandbox container."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aishell import certs, process, render
from aishell.context import Context
from aishell.errors import AishellError
from aishell.foundation import Foundation, ensure_foundation
from aishell.identity import HostUser, git_identity
from aishell.request import ContainerRequest, cli_args
from aishell.sandbox import SandboxSpec, build_request


def foundation_for(ctx: Context) -> Foundation:
    table = ctx.config.table("foundation")
    return Foundation.from_settings(
        base=table.get("base", Foundation.from_settings().base),
        extra_packages=table.get("packages", ()),
    )


def _record_launch(ctx: Context, tag: str, image_id: str) -> None:
    """Tell the store index this project uses the foundation image (a gc root)."""
    from aishell import index  # noqa: PLC0415

    try:
        index.record_images(ctx.paths, ctx.project, [index.ImageRef("foundation", image_id, tag)])
    except (AishellError, OSError) as exc:
        render.warn(f"could not record this launch in the store index: {exc}")


def ensure_image(ctx: Context, *, force: bool = False) -> str:
    """The tag of the image sandboxes run, built first when missing."""
    foundation = foundation_for(ctx)
    existing = None if force else ctx.engine.image_inspect(foundation.tag)
    if existing is not None:
        _record_launch(ctx, foundation.tag, str(existing["Id"]))
        return foundation.tag
    with render.progress(f"building the foundation image {foundation.tag}",
                         quiet=ctx.quiet, verbose=ctx.verbose) as on_line:
        try:
            state = ensure_foundation(ctx.engine, foundation, force=force, on_line=on_line)
        except AishellError as exc:
            log = getattr(exc, "log", "")
            if log:
                render.err(log.rstrip())
            raise
    _record_launch(ctx, foundation.tag, state.image_id)
    return foundation.tag


def _check_project(project: Path) -> None:
    if not project.is_dir():
        raise AishellError(f"project directory does not exist: {project}",
                           hint="pass an existing directory with --project")


def sandbox_request(ctx: Context, command: Sequence[str], *, tty: bool) -> ContainerRequest:
    _check_project(ctx.project)
    image = ensure_image(ctx)
    settings = ctx.config.table("settings")
    return build_request(
        SandboxSpec(
            image=image,
            project=ctx.project,
            user=HostUser.current(),
            git=git_identity(ctx.project),
            command=command,
            tty=tty,
            ca_bundle=certs.find_bundle(settings.get("ca_bundle")),
            host_env=os.environ,
        )
    )


def launch(ctx: Context, req: ContainerRequest) -> int:
    """Hand the terminal to the engine CLI running ``req``; its exit code is ours."""
    os.environ.update(req.process_env())
    sys.stdout.flush()
    sys.stderr.flush()
    return process.replace_process(cli_args(req, ctx.engine.cli))


def shell(ctx: Context) -> int:
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    req = sandbox_request(ctx, ["bash", "-l"], tty=tty)
    return launch(ctx, req)


def exec_command(ctx: Context, command: Sequence[str]) -> int:
    if not command:
        raise AishellError("nothing to run", hint="aishell exec -- COMMAND [ARGS…]")
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    req = sandbox_request(ctx, list(command), tty=tty)
    return launch(ctx, req)
