"""`aishell` / `aishell shell` and `aishell exec`: start a sandbox container."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from aishell import certs, extension, process, render, security
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
        sudo=ctx.config.table("run").get("sudo", False) is True,
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
            sudo=ctx.config.table("run").get("sudo", False) is True,
        )
    )


def launch(ctx: Context, req: ContainerRequest) -> int:
    """Hand the terminal to the engine CLI running ``req``; its exit code is ours."""
    os.environ.update(req.process_env())
    sys.stdout.flush()
    sys.stderr.flush()
    return process.replace_process(cli_args(req, ctx.engine.cli))


def shell(ctx: Context, *, unsafe: bool = False) -> int:
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    for warning in security.preflight(ctx, interactive=True, unsafe=unsafe):
        if not ctx.quiet:
            render.warn(warning)
    req = sandbox_request(ctx, ["bash", "-l"], tty=tty)
    return launch(ctx, req)


def exec_command(ctx: Context, command: Sequence[str]) -> int:
    if not command:
        raise AishellError("nothing to run", hint="aishell exec -- COMMAND [ARGS…]")
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    req = sandbox_request(ctx, list(command), tty=tty)
    return launch(ctx, req)
