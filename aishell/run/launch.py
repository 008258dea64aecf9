"""`aishell run` (and `aishell HARNESS`, `aishell shell`, `aishell exec`): the launch pipeline.

Order (SPEC 6), under the store lock held shared until the container exists: config →
harness → name check → security preflight (every launch, see :func:`check_launch`) → env
volume (lock/sync) → image → container request → host preparation → create; then, lock
released, attach through the engine CLI.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from aishell import process, render
from aishell.engine import wire
from aishell.errors import AishellError, EngineConflict, EngineError, EngineNotFound
from aishell.project.context import Context
from aishell.request import ContainerRequest, cli_args
from aishell.run import fast, plancache, usage
from aishell.run.egress import summary as egress_summary
from aishell.run.env import resolve_env
from aishell.run.host import check_project as _check_project
from aishell.run.host import (
    clear_name,
    login_file,
    prepare_host,
    say_once,
    set_title,
    system_file_mounts,
)
from aishell.run.identity import HostUser
from aishell.run.plan import NAME_RE, Plan, RunOptions, find_harness, gateway_hosts, plan
from aishell.run.sandbox import container_name
from aishell.store.images import ensure_images


@dataclass(frozen=True)
class Started:
    """A detached sandbox that is now running."""

    name: str
    container: str
    container_id: str
    harness: str | None


def check_launch(ctx: Context, opts: RunOptions, *, interactive: bool) -> list[str]:
    """The security preflight of every launch: run, shell, the harness shorthand,
    --detach, exec and gitleaks all reach it through :func:`prepare`, before any env,
    image or container work, so strict mode refuses on every one of them.

    Validation of docker_args, mounts and ports always runs; sensitive-file detection
    and the Gitleaks freshness warning only for interactive launches (not ``exec``,
    not ``gitleaks``). Returns the warnings for the caller to show (a replayed plan shows
    them again).
    """
    from aishell.security import preflight as security  # noqa: PLC0415 - not at import

    return security.preflight(ctx, interactive=interactive, unsafe=opts.unsafe,
                              mounts=opts.volumes, ports=opts.ports)


def prepare(
    ctx: Context,
    opts: RunOptions,
    *,
    tty: bool,
    one_shot: bool = False,
    command: Sequence[str] | None = None,
    offline_sandbox: bool = False,
) -> Plan:
    """The plan of a launch; ``offline_sandbox``: one that runs with ``--network none``
    whatever ``[network] mode`` says (gitleaks), so no egress proxy is prepared."""
    _check_project(ctx.project, unsafe=opts.unsafe)
    cfg = ctx.config
    said: list[str] = []  # the warnings of this plan, shown again when it is replayed

    def say(warning: str) -> None:
        said.append(warning)
        if not ctx.quiet:
            render.warn(warning)

    if cfg.legacy is not None:
        say(f"reading the original format {cfg.legacy}; "
            "`aishell migrate` converts it to aishell.toml")
    user = HostUser.current()
    harness = find_harness(ctx, opts.harness) if opts.harness else None
    if not one_shot:  # a running namesake is an error before anything else happens
        name = opts.name or (harness.name if harness else "shell")
        if NAME_RE.match(name):
            clear_name(ctx, container_name(ctx.project, name), name)
    for warning in check_launch(ctx, opts, interactive=not one_shot):
        say(warning)
    env_volume = resolve_env(ctx, harness, locked=opts.locked, frozen=opts.frozen,
                             offline=opts.offline, substituters=opts.substituters,
                             no_substitute=opts.no_substitute)
    # The launch records the images it runs after the hand-over (plancache.record); with
    # an env, sync has recorded them already.
    images = ensure_images(ctx, record=False)
    p = plan(ctx, opts, image=images.tag, env_volume=env_volume, user=user,
             environ=os.environ, tty=tty, one_shot=one_shot, command=command)
    if harness is not None and harness.system_files:
        gateway = bool(gateway_hosts(harness, os.environ)) or bool(p.egress and p.egress.brokers)
        mounts = (*p.request.mounts, *system_file_mounts(ctx, harness, gateway=gateway))
        p = replace(p, request=replace(p.request, mounts=mounts))
    used = images.used
    if offline_sandbox:
        p = replace(p, egress=None, request=replace(p.request, network="none"))
    if p.egress is not None:  # allowlist mode: the egress image is one more store item
        from aishell.store.proxyimage import ensure_proxy_image  # noqa: PLC0415

        proxy_image = ensure_proxy_image(ctx)
        used = (*used, proxy_image)
        p = replace(p, egress=replace(p.egress, image=proxy_image[2]))
    for notice in p.notices:
        say(notice)
    if harness is not None and harness.inner_sandbox:
        skip_off = harness.skip_permissions_flag and harness.skip_permissions_flag not in (
            p.request.command)
        if not skip_off:
            say_once(ctx, f"inner-sandbox-{harness.name}", harness.inner_sandbox)
    if harness is not None and p.egress is not None and p.egress.brokers:
        login = login_file(harness.name, user.home)
        if login is not None:
            say_once(ctx, f"login-file-{harness.name}", (
                f"{login} (an interactive login) is in a config directory mounted into the "
                f"sandbox, where the agent can read it: the broker keeps only API keys in "
                "variables out (docs/security.md, Credentials)"))
    return replace(p, said=tuple(said), images=used, env_volume=env_volume)


def _uses_env(req: ContainerRequest) -> bool:
    return any(m.kind == "volume" and m.target == "/tools" for m in req.mounts)


def create(ctx: Context, p: Plan) -> str | None:
    """Create the container; its id, or None when the attach step will create it.

    A detached sandbox is created and started here (``run --detach``). A sandbox that
    mounts an env volume is created here too (``create``, then attached with ``start``),
    so that the caller can hold the store lock until the container exists: from then on
    the container keeps the volume alive. So is one in allowlist mode, whose network is
    checked before it starts. Otherwise ``run`` creates and attaches in one engine CLI
    call, the quickest path.
    """
    prepare_host(p)
    if not p.request.detach and not _uses_env(p.request) and p.egress is None:
        return None
    if not p.request.extra_args:
        # One API request instead of an engine CLI process; docker_args need the CLI.
        created = ctx.engine.create_sandbox(p.request, os.environ)
    else:
        argv = cli_args(p.request, ctx.engine.cli)
        argv[1] = "create"
        argv = [a for a in argv if a != "--detach"]
        result = process.run(argv, env=p.request.process_env(), check=False)
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise AishellError(f"the engine could not create the sandbox: "
                               f"{detail[-1] if detail else result.returncode}")
        created = result.stdout.strip().splitlines()[-1]
    if p.egress is not None and p.egress.proxy:
        verify_network(ctx, created)
    if p.request.detach:
        ctx.engine.start_container(created)
    return created


def verify_network(ctx: Context, container: str) -> None:
    """Refuse to hand over a sandbox whose network is not ``none`` (an inspect, not a probe).

    Raises:
        AishellError: the engine gave it another network (``docker_args``, an engine
            default): it is removed and not started.
    """
    info = ctx.engine.container_inspect(container) or {}
    mode = str((info.get("HostConfig") or {}).get("NetworkMode") or "")
    networks = set((info.get("NetworkSettings") or {}).get("Networks") or {})
    if mode == "none" and networks <= {"none"}:
        return
    with contextlib.suppress(EngineError):
        ctx.engine.remove_container(container, force=True)
    shown = ", ".join(sorted(networks)) or mode or "unknown"
    raise AishellError(f"the sandbox was given a network ({shown}) in allowlist mode; "
                       "it was removed, not started",
                       hint="remove --network from [run] docker_args; allowlist mode needs "
                       "--network none")


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
        if plancache.cacheable(p, one_shot=one_shot):
            plancache.save(ctx, p)
        if p.egress is not None:
            p, created = _start_proxied(ctx, p)
        else:
            created = create(ctx, p)
    if p.egress is not None:
        return _attach_proxied(ctx, p, created)
    record = plancache.record_of(ctx, p, replay=False)
    if p.request.detach:
        _record_now(record)
    else:
        fast.bookkeeping(record)  # the index write never delays the hand-over
    return _finish(ctx, p, created)


def _start_proxied(ctx: Context, p: Plan) -> tuple[Plan, str | None]:
    """Allowlist mode: the sandbox's policy served by the home's egress service (started
    when needed), then the sandbox created, its network checked."""
    from aishell import certs  # noqa: PLC0415
    from aishell.run import credentials  # noqa: PLC0415
    from aishell.run.egress import filter_text, tinyproxy_conf  # noqa: PLC0415
    from aishell.store import egressservice  # noqa: PLC0415

    egress = p.egress
    assert egress is not None
    # Every key first (a command runs on the host): one that fails starts nothing.
    keys = {b.provider: credentials.headers(b, credentials.read_key(ctx.config, b, os.environ))
            for b in egress.brokers}
    egressservice.sweep(ctx)
    bundle = certs.find_bundle(ctx.config.table("settings").get("ca_bundle"))
    service = egressservice.ensure(ctx, egress.image, bundle)
    try:
        egressservice.attach(
            ctx, egress.id, service,
            conf=tinyproxy_conf(egress.allow, egress.upstream) if egress.proxy else None,
            filter_text=filter_text(egress.allow), brokers=[b.spec() for b in egress.brokers],
            keys=keys)
        del keys
        return p, create(ctx, p)
    except BaseException:
        egressservice.detach(ctx, egress.id)  # the sandbox was not created: nothing else
        raise


def _attach_proxied(ctx: Context, p: Plan, created: str | None) -> Started | int:
    """Run the sandbox attached to its policy: removed when a foreground sandbox ends
    (also after Ctrl-C), or when a detached one fails to come up. The engine CLI runs as
    a child here, not exec'd, so that this process is still there to clean up."""
    from aishell.run.sandboxes import denied_hosts  # noqa: PLC0415
    from aishell.store import egressservice  # noqa: PLC0415

    assert p.egress is not None and created is not None
    record = plancache.record_of(ctx, p, replay=False)
    if p.request.detach:
        _record_now(record)
    else:
        fast.bookkeeping(record)  # the index write never delays the hand-over
    if p.request.detach:
        try:
            return _finish(ctx, p, created)
        except BaseException:
            with contextlib.suppress(EngineNotFound, EngineConflict):
                ctx.engine.remove_container(created, force=True)
            egressservice.detach(ctx, p.egress.id)
            raise
    started = False
    try:
        set_title(ctx.project)
        sys.stdout.flush()
        sys.stderr.flush()
        code = None
        sock = wire.socket_path(ctx.engine.docker_host)
        if not p.request.tty and sock is not None:
            # No TTY: attach, start and wait over the API, signals passed on (as a replayed
            # launch does); the engine CLI only when that could not start it.
            code = wire.run_attached(sock, created)
        if code is None:
            argv = [ctx.engine.cli, "start", "--attach", "--interactive", created]
            code = process.run_attached(argv, env=p.request.process_env())
        started = True
        if ctx.verbose and p.egress.proxy:
            hosts = denied_hosts(ctx, p.egress.id)
            render.err(f"egress: {egress_summary(hosts or [])} ({p.egress.id})")
        return code
    finally:
        # a sandbox that ran removes itself (--rm); one that never started is removed here
        if not started or not p.request.remove:
            with contextlib.suppress(EngineNotFound, EngineConflict):
                ctx.engine.remove_container(created, force=True)
        egressservice.detach(ctx, p.egress.id)


def _record_now(record: dict[str, Any] | None) -> None:
    if record is None:
        return
    try:
        usage.record(record, publish=False)
    except (AishellError, OSError) as exc:
        render.warn(f"could not record this launch in the store index: {exc}")
    fast.bookkeeping(record)  # publishing this home's gc roots waits for no engine round trip


def run(ctx: Context, opts: RunOptions) -> Started | int:
    return _launch(ctx, opts)


def exec_command(ctx: Context, command: Sequence[str], *, locked: bool = False,
                 frozen: bool = False, offline: bool = False) -> int:
    """A one-off command in a fresh sandbox: no name, ports, pre-start or scan."""
    if not command:
        raise AishellError("nothing to run", hint="aishell exec -- COMMAND [ARGS…]")
    opts = RunOptions(locked=locked, frozen=frozen, offline=offline)
    result = _launch(ctx, opts, one_shot=True, command=command)
    assert isinstance(result, int)
    return result


def sandbox_request(ctx: Context, command: Sequence[str], *, tty: bool) -> ContainerRequest:
    """The request of a one-off sandbox running ``command`` with no network (config
    applied, no name): what `aishell gitleaks` runs."""
    return prepare(ctx, RunOptions(), tty=tty, one_shot=True, command=command,
                   offline_sandbox=True).request
