"""What a launch asks for and the container request it becomes (reads config, no engine)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from aishell import certs
from aishell.errors import AishellError, UsageError
from aishell.lock import catalog
from aishell.lock.catalog import Harness
from aishell.project import network
from aishell.project.context import Context
from aishell.request import ContainerRequest, Mount, Port
from aishell.run import config as runconfig
from aishell.run import credentials
from aishell.run import egress as egress_policy
from aishell.run.config import RunConfig, SpecError
from aishell.run.egress import Egress, new_egress
from aishell.run.gitdirs import external_git_dirs
from aishell.run.identity import HostUser, git_identity
from aishell.run.sandbox import SandboxSpec, build_request, expand_home, harness_command, harness_mounts
from aishell.store.egressservice import layout

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
class Plan:
    """Everything decided before the engine is asked to create anything."""

    request: ContainerRequest
    name: str | None
    harness: Harness | None
    notices: tuple[str, ...] = ()
    prepare_files: Mapping[str, str] = field(default_factory=dict)  # host path → seed content
    prepare_dirs: tuple[str, ...] = ()
    said: tuple[str, ...] = ()  # warnings shown before the launch
    images: tuple[tuple[str, str, str], ...] = ()  # (role, id, tag) of the images it runs on
    env_volume: str | None = None
    egress: Egress | None = None  # [network] mode = "allowlist": the policy to attach first

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

def gateway_hosts(harness: Harness, environ: Mapping[str, str]) -> list[str]:
    """The allow entries of the model gateways ``harness`` is pointed at on the host
    (the host and port of each ``*_BASE_URL`` among its gateway variables)."""
    found = [network.url_pattern(environ[name]) for name in harness.gateway
             if name.endswith("_BASE_URL") and environ.get(name)]
    return list(dict.fromkeys(p for p in found if p))


def gateway_config(harness: Harness, environ: Mapping[str, str]) -> list[str]:
    """``-c key="value"`` for each gateway variable the harness reads only from config."""
    import json  # noqa: PLC0415

    out: list[str] = []
    for name, key in harness.config_from_env:
        if environ.get(name):
            out += ["-c", f"{key}={json.dumps(environ[name])}"]
    return out


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
        mode = str(cfg.table("network").get("mode", "open"))
        brokers, broker_notes = credentials.plan_brokers(cfg, harness.name, environ,
                                                         network_mode=mode)
        notices += broker_notes
        # Brokered (or, with no network, useless): its keys and base URLs are not passed in.
        withheld = credentials.withheld(brokers)
        withheld |= {credentials.PROVIDERS[b.provider].base_url_var for b in brokers}
        if mode == "none":
            brokers = []
        passthrough = [v for v in (*harness.api_keys, *harness.gateway, *passthrough)
                       if v not in withheld]
        seen = {**environ, **credentials.placeholders(brokers)}
        argv = harness_command(
            harness,
            configured=(*gateway_config(harness, seen),
                        *run_cfg.harness_args.get(harness.name, ())),
            cli=opts.args,
            skip_permissions=run_cfg.skip_permissions,
        )
    else:
        argv = list(command) if command is not None else ["bash", "-l"]
        brokers, withheld = [], set()
    name = None if one_shot else (opts.name or (harness.name if harness else "shell"))
    if name is not None and not NAME_RE.match(name):
        raise UsageError(f"invalid sandbox name {name!r}",
                         hint="letters, digits, '.', '_' and '-', starting with a letter or digit")
    settings = cfg.table("settings")
    # Gateways a broker forwards to are reached by the broker, not by the sandbox.
    gateways = gateway_hosts(harness, {k: v for k, v in environ.items()
                                       if k not in withheld}) if harness else []
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
        extra_env={**dict(harness.env if harness else ()),
                   **dict(harness.gateway_env if harness and (gateways or brokers) else ()),
                   **credentials.placeholders(brokers), **run_cfg.env, **extra.env},
        passthrough=tuple(dict.fromkeys(passthrough)),
        ports=() if one_shot else (*run_cfg.ports, *extra.ports),
        pre_start=None if one_shot else run_cfg.pre_start,
        docker_args=run_cfg.docker_args,
        detach=opts.detach,
        sudo=run_cfg.sudo,
        host_env=environ,
        git_dirs=tuple(external_git_dirs(ctx.project)),
    )
    # A brokered provider's API is reached through its broker only: not in the allow list.
    apis = {network.url_pattern(credentials.PROVIDERS[b.provider].upstream) for b in brokers}
    hosts = [h for h in (harness.hosts if harness else ()) if h not in apis]
    net = network.from_config(cfg, harness_hosts=(*hosts, *gateways), environ=environ)
    weaker = network.weakened(cfg)
    if weaker:
        notices.append(weaker)
    request = build_request(spec)
    request, egress = _network(ctx, request, net, brokers=brokers, gateways=gateways,
                               notices=notices)
    return Plan(request, name, harness, tuple(notices), files, tuple(dirs), egress=egress)


def _network(ctx: Context, request: ContainerRequest, net: network.NetworkConfig, *,
             brokers: Sequence[credentials.Brokered], gateways: Sequence[str],
             notices: list[str]) -> tuple[ContainerRequest, Egress | None]:
    """The request in its network mode, and its egress (allowlist mode, brokers)."""
    labels = {**request.labels, "dev.aishell.network": net.mode}
    if gateways:
        labels["dev.aishell.gateway"] = ",".join(gateways)
    if net.mode != "open" and request.ports:
        shown = ", ".join(p.spec() for p in request.ports)
        notices.append(f"[network] mode = {net.mode!r}: the sandbox has no network interface, "
                       f"so its ports ({shown}) are not published")
        request = replace(request, ports=())
    if brokers:
        labels["dev.aishell.credentials"] = ",".join(b.provider for b in brokers)
    egress = None
    if net.mode == "none":
        request = replace(request, network="none", labels=labels)
    elif net.allowlist or brokers:
        # allowlist: no network but loopback, the egress service's socket for this sandbox
        # alone is its one way out; brokers: their sockets, in any mode. Both through the
        # entrypoint's forwarders (aishell.run.egress).
        egress = replace(new_egress(net), proxy=net.allowlist, brokers=tuple(brokers))
        sockets = layout(ctx.paths.state).socket_dir(egress.id)
        mount = Mount(str(sockets), egress_policy.SANDBOX_SOCKET_DIR, read_only=True)
        request = replace(request, network="none" if net.allowlist else request.network,
                          mounts=(*request.mounts, mount),
                          env={**request.env, **egress_policy.sandbox_env(egress)},
                          labels={**labels, egress_policy.LABEL: egress.id})
    else:  # open: the mode goes unlabelled, as before it had any other
        request = replace(request, labels={k: v for k, v in labels.items()
                                           if k != "dev.aishell.network"})
    return request, egress
