"""`aishell run` (and `aishell HARNESS`, `aishell shell`, `aishell exec`): the launch pipeline.

Order (SPEC 6), under the store lock held shared until the container exists: config →
harness → name check → env volume (lock/sync) → security preflight → image → container
request → host preparation → create; then, lock released, attach through the engine CLI.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from aishell import certs, process, render
from aishell.errors import AishellError, EngineConflict, EngineNotFound, UsageError
from aishell.lock import catalog
from aishell.lock.catalog import Harness
from aishell.project.context import Context
from aishell.request import ContainerRequest, Mount, Port, cli_args
from aishell.run import config as runconfig
from aishell.run.config import RunConfig, SpecError
from aishell.run.env import resolve_env
from aishell.run.gitdirs import external_git_dirs
from aishell.run.identity import HostUser, git_identity
from aishell.run.sandbox import (
    SandboxSpec,
    build_request,
    container_name,
    expand_home,
    harness_command,
    harness_mounts,
)
from aishell.store.images import ensure_images

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class RunOptions:
    """What the command line asked for; config supplies the rest."""

    harness: str | None = None  # None: a login shell
    args: tuple[str, ...] = ()  # passed to the harness untouched
    name: str | None = None
    detach: bool = False
    env: tuple[str, ...] = ()  # -e NAME or NAME=VALUE
    volumes: tuple[str, ...] = ()  # --volume SRC[:DST][:ro]
    ports: tuple[str, ...] = ()  # -p [IP:]HOST:CONT[/proto]
    unsafe: bool = False
    locked: bool = False  # the lock must be fresh (no implicit re-lock)
    frozen: bool = False  # use the lock as it is
    offline: bool = False  # install only from the download cache
    substituters: tuple[str, ...] = ()  # --substituter REF, tried before the configured ones
    no_substitute: bool = False  # --no-substitute


@dataclass(frozen=True)
class Started:
    """A detached sandbox that is now running."""

    name: str
    container: str
    container_id: str
    harness: str | None


@dataclass(frozen=True)
class Plan:
    """Everything decided before the engine is asked to create anything."""

    request: ContainerRequest
    name: str | None
    harness: Harness | None
    notices: tuple[str, ...] = ()
    prepare_files: Mapping[str, str] = field(default_factory=dict)  # host path → seed content
    prepare_dirs: tuple[str, ...] = ()


def find_harness(ctx: Context, name: str) -> Harness:
    """The harness ``name`` from the manifest or the catalog; unknown → nearest suggestion."""
    manifest = ctx.config.table("harnesses")
    found = catalog.lookup(name, manifest)
    if found is not None:
        return found
    near = catalog.nearest(name, list(manifest))
    hint = f"did you mean `{near}`?" if near else (
        f"built in: {', '.join(catalog.CATALOG)}; or add it to [harnesses] in aishell.toml"
    )
    raise AishellError(f"unknown harness `{name}`", hint=hint)


def _one_off(opts: RunOptions, user: HostUser, project: Path) -> RunConfig:
    """-e/--volume/-p from the command line, parsed like their config twins."""
    env: dict[str, str] = {}
    passthrough: list[str] = []
    for item in opts.env:
        name, eq, value = item.partition("=")
        if not runconfig.ENV_NAME.match(name):
            raise UsageError(f"-e {item}: {name!r} is not a valid variable name")
        if eq:
            env[name] = value
        else:
            passthrough.append(name)
    mounts: list[Mount] = []
    ports: list[Port] = []
    try:
        for spec in opts.volumes:
            mount = runconfig.parse_mount(spec, user, os.environ, project)
            if not Path(mount.source).exists():
                raise UsageError(f"--volume {spec}: {mount.source} does not exist")
            mounts.append(mount)
        ports = [runconfig.parse_port(p) for p in opts.ports]
    except SpecError as exc:
        raise UsageError(str(exc), hint=exc.hint) from exc
    return RunConfig(mounts=tuple(mounts), env=env, passthrough=tuple(passthrough),
                     ports=tuple(ports))


def plan(
    ctx: Context,
    opts: RunOptions,
    *,
    image: str,
    env_volume: str | None,
    user: HostUser,
    environ: Mapping[str, str],
    tty: bool,
    one_shot: bool = False,
    command: Sequence[str] | None = None,
) -> Plan:
    """The container request of a launch (reads config and the project's .git, no engine)."""
    cfg = ctx.config
    run_cfg = runconfig.from_config(cfg, user, environ)
    extra = _one_off(opts, user, ctx.project)
    harness = find_harness(ctx, opts.harness) if opts.harness else None
    notices = list(run_cfg.warnings)
    mounts = [*run_cfg.mounts, *extra.mounts]
    passthrough = [*run_cfg.passthrough, *extra.passthrough]
    files: dict[str, str] = {}
    dirs: list[str] = []
    if harness is not None:
        seeds = {expand_home(p, user.home): c for p, c in harness.seed_files}
        for mount in harness_mounts(harness, user.home):
            if mount.source in seeds:
                files[mount.source] = seeds[mount.source]
            else:
                dirs.append(mount.source)
        mounts = [*harness_mounts(harness, user.home), *mounts]
        passthrough = [*harness.api_keys, *passthrough]
        argv = harness_command(
            harness,
            configured=run_cfg.harness_args.get(harness.name, ()),
            cli=opts.args,
            skip_permissions=run_cfg.skip_permissions,
        )
    else:
        argv = list(command) if command is not None else ["bash", "-l"]
    name = None if one_shot else (opts.name or (harness.name if harness else "shell"))
    if name is not None and not NAME_RE.match(name):
        raise UsageError(f"invalid sandbox name {name!r}",
                         hint="letters, digits, '.', '_' and '-', starting with a letter or digit")
    settings = cfg.table("settings")
    spec = SandboxSpec(
        image=image,
        project=ctx.project,
        user=user,
        git=git_identity(ctx.project),
        command=argv,
        tty=tty,
        name=name,
        harness=harness.name if harness else None,
        ca_bundle=certs.find_bundle(settings.get("ca_bundle")),
        env_volume=env_volume,
        extra_mounts=tuple(mounts),
        extra_env={**run_cfg.env, **extra.env},
        passthrough=tuple(dict.fromkeys(passthrough)),
        ports=() if one_shot else (*run_cfg.ports, *extra.ports),
        pre_start=None if one_shot else run_cfg.pre_start,
        docker_args=run_cfg.docker_args,
        detach=opts.detach,
        sudo=run_cfg.sudo,
        host_env=environ,
        git_dirs=tuple(external_git_dirs(ctx.project)),
    )
    return Plan(build_request(spec), name, harness, tuple(notices), files, tuple(dirs))


# -- host side effects ---------------------------------------------------------------
def prepare_host(p: Plan) -> None:
    """Create the harness's config dirs and seed files on the host when missing."""
    for directory in p.prepare_dirs:
        Path(directory).mkdir(parents=True, exist_ok=True)
    for path, content in p.prepare_files.items():
        target = Path(path)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")


def system_file_mounts(ctx: Context, harness: Harness) -> list[Mount]:
    """The harness's system files (auto-update and sandbox settings), written to the cache."""
    mounts: list[Mount] = []
    for container_path, content in harness.system_files:
        host = ctx.paths.cache / "harness-files" / harness.name / container_path.lstrip("/")
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


# -- the pipeline --------------------------------------------------------------------
def _check_project(project: Path) -> None:
    if not project.is_dir():
        raise AishellError(f"project directory does not exist: {project}",
                           hint="pass an existing directory with --project")


def prepare(
    ctx: Context,
    opts: RunOptions,
    *,
    tty: bool,
    one_shot: bool = False,
    command: Sequence[str] | None = None,
) -> Plan:
    _check_project(ctx.project)
    cfg = ctx.config
    if cfg.legacy is not None and not ctx.quiet:
        render.warn(f"reading the original format {cfg.legacy}; "
                    "`aishell migrate` converts it to aishell.toml")
    user = HostUser.current()
    harness = find_harness(ctx, opts.harness) if opts.harness else None
    if not one_shot:  # a running namesake is an error before anything else happens
        name = opts.name or (harness.name if harness else "shell")
        if NAME_RE.match(name):
            clear_name(ctx, container_name(ctx.project, name), name)
    env_volume = resolve_env(ctx, harness, locked=opts.locked, frozen=opts.frozen,
                             offline=opts.offline, substituters=opts.substituters,
                             no_substitute=opts.no_substitute)
    if not one_shot:
        from aishell.security import preflight as security  # noqa: PLC0415 - exec never scans

        # sensitive files (interactive launches) and risky docker_args/mounts/ports
        for warning in security.preflight(ctx, interactive=True, unsafe=opts.unsafe,
                                          mounts=opts.volumes, ports=opts.ports):
            if not ctx.quiet:
                render.warn(warning)
    # With an env, sync has just recorded the images in the store index: once is enough.
    image = ensure_images(ctx, record=env_volume is None).tag
    p = plan(ctx, opts, image=image, env_volume=env_volume, user=user, environ=os.environ,
             tty=tty, one_shot=one_shot, command=command)
    if harness is not None and harness.system_files:
        mounts = (*p.request.mounts, *system_file_mounts(ctx, harness))
        p = replace(p, request=replace(p.request, mounts=mounts))
    for notice in p.notices:
        if not ctx.quiet:
            render.warn(notice)
    if harness is not None and harness.inner_sandbox:
        skip_off = harness.skip_permissions_flag and harness.skip_permissions_flag not in (
            p.request.command)
        if not skip_off:
            say_once(ctx, f"inner-sandbox-{harness.name}", harness.inner_sandbox)
    return p


def _uses_env(req: ContainerRequest) -> bool:
    return any(m.kind == "volume" and m.target == "/tools" for m in req.mounts)


def create(ctx: Context, p: Plan) -> str | None:
    """Create the container; its id, or None when the attach step will create it.

    A detached sandbox is created and started here (``run --detach``). A sandbox that
    mounts an env volume is created here too (``create``, then attached with ``start``),
    so that the caller can hold the store lock until the container exists: from then on
    the container keeps the volume alive. Otherwise ``run`` creates and attaches in one
    engine CLI call, the quickest path.
    """
    prepare_host(p)
    if not p.request.detach and not _uses_env(p.request):
        return None
    if not p.request.extra_args:
        # One API request instead of an engine CLI process; docker_args need the CLI.
        created = ctx.engine.create_sandbox(p.request, os.environ)
        if p.request.detach:
            ctx.engine.start_container(created)
        return created
    argv = cli_args(p.request, ctx.engine.cli)
    if not p.request.detach:
        argv[1] = "create"
    result = process.run(argv, env=p.request.process_env(), check=False)
    if result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise AishellError(f"the engine could not create the sandbox: "
                           f"{detail[-1] if detail else result.returncode}")
    return result.stdout.strip().splitlines()[-1]


def attach(ctx: Context, p: Plan, created: str | None) -> int:
    """Hand the terminal to the engine CLI: run the request, or start what was created."""
    set_title(ctx.project)
    sys.stdout.flush()
    sys.stderr.flush()
    if created is not None:
        return process.replace_process([ctx.engine.cli, "start", "--attach", "--interactive",
                                        created])
    os.environ.update(p.request.process_env())
    return process.replace_process(cli_args(p.request, ctx.engine.cli))


def start(ctx: Context, p: Plan) -> Started | int:
    """Create the container: detached (returns Started) or attached (returns its exit code)."""
    created = create(ctx, p)
    return _finish(ctx, p, created)


def _finish(ctx: Context, p: Plan, created: str | None) -> Started | int:
    if p.request.detach:
        assert p.name is not None and created is not None
        from aishell.run.sandboxes import wait_ready  # noqa: PLC0415

        wait_ready(ctx, created, p.name)
        return Started(p.name, container_name(ctx.project, p.name), created,
                       p.harness.name if p.harness else None)
    return attach(ctx, p, created)


def _launch(ctx: Context, opts: RunOptions, *, one_shot: bool = False,
            command: Sequence[str] | None = None) -> Started | int:
    """The pipeline under the store lock, held shared from the env check until the
    container exists (so `gc` cannot remove the env in between)."""
    from aishell.store import storelock  # noqa: PLC0415

    tty = sys.stdin.isatty() and sys.stdout.isatty()
    with storelock.shared(ctx.paths, on_wait=None if ctx.quiet else render.err):
        p = prepare(ctx, opts, tty=tty, one_shot=one_shot, command=command)
        created = create(ctx, p)
    return _finish(ctx, p, created)


def run(ctx: Context, opts: RunOptions) -> Started | int:
    return _launch(ctx, opts)


def exec_command(ctx: Context, command: Sequence[str]) -> int:
    """A one-off command in a fresh sandbox: no name, ports, pre-start or scan."""
    if not command:
        raise AishellError("nothing to run", hint="aishell exec -- COMMAND [ARGS…]")
    result = _launch(ctx, RunOptions(), one_shot=True, command=command)
    assert isinstance(result, int)
    return result
