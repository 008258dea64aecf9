"""A launch's side effects on the host and its checks of the host: the harness's config
dirs and seed files, its system files in the cache, notices said once, and the project
roots a sandbox refuses; the terminal title, and the name a new sandbox needs free."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from aishell import render
from aishell.errors import AishellError, EngineConflict, EngineNotFound
from aishell.lock.catalog import Harness
from aishell.project.context import Context
from aishell.request import Mount
from aishell.run.plan import Plan


def prepare_host(p: Plan) -> None:
    """Create the harness's config dirs and seed files on the host when missing."""
    for directory in p.prepare_dirs:
        Path(directory).mkdir(parents=True, exist_ok=True)
    for path, content in p.prepare_files.items():
        target = Path(path)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")


def system_file_mounts(ctx: Context, harness: Harness, *, gateway: bool = False) -> list[Mount]:
    """The harness's system files (auto-update and sandbox settings; with ``gateway``,
    its gateway files in place of those of the same path), written to the cache."""
    mounts: list[Mount] = []
    files = dict(harness.system_files)
    if gateway:
        files.update(harness.gateway_files)
    for container_path, content in files.items():
        variant = "gateway" if gateway and container_path in dict(harness.gateway_files) else ""
        host = (ctx.paths.cache / "harness-files" / harness.name / variant /
                container_path.lstrip("/"))
        if not host.is_file() or host.read_text(encoding="utf-8") != content:
            host.parent.mkdir(parents=True, exist_ok=True)
            tmp = host.with_name(host.name + f".{os.getpid()}.tmp")
            tmp.write_text(content, encoding="utf-8")
            tmp.chmod(0o644)
            tmp.replace(host)
        mounts.append(Mount(str(host), container_path, read_only=True))
    return mounts


def say_once(ctx: Context, key: str, message: str) -> None:
    """Print ``message`` the first time ``key`` is seen on this machine."""
    marker = ctx.paths.state / "notices" / key
    if marker.exists():
        return
    if not ctx.quiet:
        render.err(f"note: {message}")
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # an unwritable state dir only means the note comes again


def set_title(project: Path) -> None:
    """``[aishell] <project>`` as the terminal window title (OSC 0), on a terminal only."""
    if sys.stdout.isatty():
        sys.stdout.write(f"\033]0;[aishell] {project.name}\007")
        sys.stdout.flush()


def clear_name(ctx: Context, container: str, name: str) -> None:
    """A running sandbox of that name is an error; a stopped one is removed."""
    for _ in range(50):
        info = ctx.engine.container_inspect(container)
        if info is None:
            return
        labels = (info.get("Config") or {}).get("Labels") or {}
        if labels.get("dev.aishell.kind") != "sandbox":
            raise AishellError(f"a container named {container} exists and is not an aishell sandbox",
                               hint="rename or remove it, or pick another name with --name")
        state = info.get("State") or {}
        if state.get("Running") or state.get("Restarting"):
            raise AishellError(
                f"sandbox `{name}` is already running ({container})",
                hint=f"join it with `aishell attach {name}`, or pick another name with --name",
            )
        try:
            ctx.engine.remove_container(container, force=True)
        except EngineNotFound:
            return
        except EngineConflict:
            # the engine is already removing it (--rm after exit): wait for that
            time.sleep(0.1)
    raise AishellError(f"the stopped sandbox {container} could not be removed",
                       hint=f"remove it by hand: docker rm -f {container}")


def check_project(project: Path, *, unsafe: bool = False) -> None:
    if not project.is_dir():
        raise AishellError(f"project directory does not exist: {project}",
                           hint="pass an existing directory with --project")
    if unsafe:
        return
    reason = refused_root(project, Path(os.environ.get("HOME") or Path.home()))
    if reason:
        raise AishellError(f"{project} is {reason}: the whole of it would be mounted into "
                           "the sandbox (keys, shell history, every token file)",
                           hint="cd into a project directory, or pass --unsafe to mount it anyway")


def refused_root(project: Path, home: Path) -> str | None:
    """Why ``project`` may not be a sandbox's project root: ``/``, the home directory or
    one of its ancestors (pure); None when it may."""
    project, home = project.resolve(), home.resolve()
    if project == Path(project.anchor):
        return "the root directory"
    if project == home:
        return "your home directory"
    if home.is_relative_to(project):
        return f"an ancestor of your home directory ({home})"
    return None


# Login files a harness keeps in a config directory aishell mounts read-write.
LOGIN_FILES = {"claude": "~/.claude/.credentials.json", "codex": "~/.codex/auth.json"}


def login_file(harness: str, home: str) -> Path | None:
    """The harness's login file on the host, when it has one and it exists."""
    name = LOGIN_FILES.get(harness)
    if name is None:
        return None
    path = Path(home) / name.removeprefix("~/")
    return path if path.is_file() else None
