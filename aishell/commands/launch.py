"""`aishell` / `aishell shell` and `aishell exec`: start a sandbox container."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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
