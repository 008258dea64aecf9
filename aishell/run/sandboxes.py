"""`aishell ps`, `aishell attach` and `aishell stop`: the sandboxes that are running.

Sandboxes are found by their labels (``dev.aishell.kind=sandbox``, ``.project``,
``.name``…) over the engine socket; nothing is recorded on the host. A sandbox in
allowlist mode carries its egress id: `ps` reads what its proxy refused, `stop`
removes its policy (and so its proxy), and both sweep policies whose sandbox has gone.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aishell import process, render
from aishell.errors import AishellError, EngineError
from aishell.project.context import Context
from aishell.run.egress import LABEL as EGRESS_LABEL
from aishell.run.sandbox import LABEL, container_name

PRE_START_MARKER = "/run/aishell/pre-start"
READY_MARKER = "/run/aishell/ready"  # a detached sandbox's tmux session exists
ENV_PREFIX = "aishell-env-"
# Joins the tmux session with a terminal type the image knows (see the entrypoint).
_TERM_GUARD = 'infocmp "$TERM" >/dev/null 2>&1 || TERM=xterm-256color; export TERM; exec "$@"'


@dataclass(frozen=True)
class Sandbox:
    name: str
    container: str
    project: str
    harness: str | None
    env_id: str | None
    status: str
    uptime_seconds: int | None
    pre_start: str | None  # pending / ready / failed, None when there is none
    detached: bool
    network: str = "open"  # [network] mode it was started with: open / none / allowlist
    denied: int | None = None  # allowlist mode, running: requests its proxy refused so far
    denied_hosts: tuple[str, ...] = ()  # the last few distinct refused hosts, newest first
    gateways: tuple[str, ...] = ()  # model gateways it was pointed at (allowed in allowlist mode)
    credentials: tuple[str, ...] = ()  # the providers whose keys its brokers carry


def _short_env(volume: str | None) -> str | None:
    if not volume:
        return None
    return volume.removeprefix(ENV_PREFIX)[:12]


def _pre_start_state(ctx: Context, container: dict[str, Any]) -> str | None:
    labels = container.get("Labels") or {}
    if labels.get(f"{LABEL}.pre-start") != "1":
        return None
    if container.get("State") != "running":
        return None
    data = ctx.engine.read_file(str(container["Id"]), PRE_START_MARKER)
    if data is None:
        return "pending"  # the entrypoint has not written it yet
    state = data.decode("utf-8", "replace").strip()
    return state if state in ("pending", "ready", "failed") else "pending"


def denied_hosts(ctx: Context, egress_id: str) -> list[str] | None:
    """What the proxy of an allowlist sandbox refused so far (None: it has no policy)."""
    from aishell.run.egress import denied  # noqa: PLC0415
    from aishell.store.egressservice import proxy_log  # noqa: PLC0415

    log = proxy_log(ctx, egress_id)
    return None if log is None else denied(log)


def ps(ctx: Context, *, every_project: bool = False, now: float | None = None) -> list[Sandbox]:
    """This project's sandboxes (``every_project``: all of them), running or not."""
    labels = {f"{LABEL}.kind": "sandbox"}
    if not every_project:
        labels[f"{LABEL}.project"] = str(ctx.project)
    now = time.time() if now is None else now
    from aishell.store import egressservice  # noqa: PLC0415

    egressservice.sweep(ctx, now=now)  # policies of sandboxes that have gone
    out: list[Sandbox] = []
    for c in ctx.engine.list_containers(labels, all=True):
        lab = c.get("Labels") or {}
        names = c.get("Names") or ["/?"]
        container = str(names[0]).lstrip("/")
        running = c.get("State") == "running"
        created = c.get("Created")
        egress_id = lab.get(EGRESS_LABEL)
        hosts = denied_hosts(ctx, egress_id) if egress_id and running else None
        out.append(Sandbox(
            name=lab.get(f"{LABEL}.name") or container,
            container=container,
            project=lab.get(f"{LABEL}.project", ""),
            harness=lab.get(f"{LABEL}.harness"),
            env_id=_short_env(lab.get(f"{LABEL}.env-volume")),
            status=str(c.get("State", "?")),
            uptime_seconds=int(now - created) if running and isinstance(created, int) else None,
            pre_start=_pre_start_state(ctx, c),
            detached=lab.get(f"{LABEL}.detach") == "1",
            network=lab.get(f"{LABEL}.network") or "open",
            denied=None if hosts is None else len(hosts),
            denied_hosts=tuple(list(dict.fromkeys(reversed(hosts or [])))[:5]),
            gateways=tuple(g for g in (lab.get(f"{LABEL}.gateway") or "").split(",") if g),
            credentials=tuple(c for c in (lab.get(f"{LABEL}.credentials") or "").split(",")
                              if c),
        ))
    out.sort(key=lambda s: (s.project, s.name))
    return out


def _find(ctx: Context, name: str) -> dict[str, Any]:
    """The inspect document of this project's sandbox ``name`` (or a full container name)."""
    for ref in (container_name(ctx.project, name), name):
        info = ctx.engine.container_inspect(ref)
        labels = ((info or {}).get("Config") or {}).get("Labels") or {}
        if info is not None and labels.get(f"{LABEL}.kind") == "sandbox":
            return info
    raise AishellError(f"no sandbox named `{name}` in {ctx.project}",
                       hint="`aishell ps` lists this project's sandboxes (`--all`: every project)")


def _env_value(info: dict[str, Any], key: str) -> str | None:
    for item in (info.get("Config") or {}).get("Env") or []:
        name, _, value = str(item).partition("=")
        if name == key:
            return value
    return None


def wait_ready(ctx: Context, container: str, name: str, *, timeout: float = 30.0) -> None:
    """Wait until a detached sandbox's tmux session exists (the entrypoint says so).

    Raises:
        AishellError: the sandbox ended before its session was up (the harness failed).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ctx.engine.read_file(container, READY_MARKER) is not None:
                return
        except EngineError:
            pass  # ended and being removed right now: the inspect below says so
        try:
            info = ctx.engine.container_inspect(container)
        except EngineError:  # Podman answers 500 while it removes an ended container
            info = None
        if info is None or not (info.get("State") or {}).get("Running"):
            raise AishellError(f"sandbox `{name}` ended right after it started",
                               hint="run it in the foreground to see why (without --detach)")
        time.sleep(0.05)


@dataclass(frozen=True)
class Join:
    """How to join a running sandbox: the exec the engine runs in it."""

    container: str
    container_id: str
    user: str
    workdir: str | None
    env: tuple[str, ...]  # NAME=value, or NAME alone: passed from this process
    command: tuple[str, ...]

    def argv(self, cli: str, *, tty: bool) -> list[str]:
        """The ``<engine> exec`` command line."""
        argv = [cli, "exec", "--interactive", *(["--tty"] if tty else []), "--user", self.user]
        if self.workdir:
            argv += ["--workdir", self.workdir]
        for item in self.env:
            argv += ["--env", item]
        return [*argv, self.container, *self.command]

    def exec_config(self, environ: dict[str, str]) -> bytes:
        """The body of ``POST /containers/{id}/exec`` for a join without a TTY."""
        import json  # noqa: PLC0415

        env = [e if "=" in e else f"{e}={environ[e]}" for e in self.env
               if "=" in e or e in environ]
        config: dict[str, Any] = {"AttachStdin": True, "AttachStdout": True,
                                  "AttachStderr": True, "Tty": False, "User": self.user,
                                  "Env": env, "Cmd": list(self.command)}
        if self.workdir:
            config["WorkingDir"] = self.workdir
        return json.dumps(config, separators=(",", ":")).encode()


def join(ctx: Context, name: str, command: Sequence[str], *, tty: bool) -> Join:
    """How to join sandbox ``name`` (waiting for a detached one to be ready)."""
    info = _find(ctx, name)
    container = str(info.get("Name", "")).lstrip("/") or name
    if not (info.get("State") or {}).get("Running"):
        raise AishellError(f"sandbox `{name}` is not running",
                           hint=f"start it again with `aishell run` (it was {container})")
    labels = (info.get("Config") or {}).get("Labels") or {}
    uid = _env_value(info, "AISHELL_UID") or "0"
    gid = _env_value(info, "AISHELL_GID") or "0"
    workdir = labels.get(f"{LABEL}.project") or (info.get("Config") or {}).get("WorkingDir")
    detached = labels.get(f"{LABEL}.detach") == "1"
    if detached:  # started a moment ago? its user and session may not exist yet
        wait_ready(ctx, container, name)
    if command:
        inner = list(command)
    elif detached:
        inner = ["tmux", "-u", "attach-session", "-t", "main"]
    else:
        inner = ["bash", "-l"]
    env = ["TERM"] if tty else []
    home = _env_value(info, "AISHELL_HOME")
    if home:  # root's passwd entry says /root; every sandbox's HOME is the host home path
        env.append(f"HOME={home}")
    return Join(container, str(info["Id"]), f"{uid}:{gid}", workdir or None, tuple(env),
                ("sh", "-c", _TERM_GUARD, "aishell", *inner))


def attach_argv(ctx: Context, name: str, command: Sequence[str], *, tty: bool) -> list[str]:
    """The ``<engine> exec`` argv that joins sandbox ``name``."""
    return join(ctx, name, command, tty=tty).argv(ctx.engine.cli, tty=tty)


def attach(ctx: Context, name: str, command: Sequence[str]) -> int:
    """Join sandbox ``name``: with a TTY through the engine CLI (raw mode, resizes,
    signals); without one, on a local engine, over the API from this process."""
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    spec = join(ctx, name, command, tty=tty)
    from aishell.engine import wire  # noqa: PLC0415
    from aishell.run import plancache  # noqa: PLC0415

    sock = wire.socket_path(ctx.engine.docker_host)
    config = spec.exec_config(dict(os.environ)) if sock and not tty else None
    plancache.save_attach(ctx, spec.container, spec.container_id,
                          spec.argv(ctx.engine.cli, tty=tty), config)
    sys.stdout.flush()
    if sock and config is not None:
        try:
            return wire.exec_attached(sock, spec.container_id, config)
        except OSError as exc:
            if ctx.verbose:
                render.err(f"joining over the API failed ({exc}); using {ctx.engine.cli} exec")
    return process.replace_process(spec.argv(ctx.engine.cli, tty=tty))


def stop(ctx: Context, name: str, *, timeout: int = 10) -> str:
    """Stop sandbox ``name`` (the engine then removes it); returns the container name."""
    info = _find(ctx, name)
    container = str(info.get("Name", "")).lstrip("/")
    ctx.engine.stop_container(container, timeout=timeout)
    egress_id = ((info.get("Config") or {}).get("Labels") or {}).get(EGRESS_LABEL)
    if egress_id:  # its policy and proxy go with it
        from aishell.store import egressservice  # noqa: PLC0415

        egressservice.detach(ctx, egress_id)
        egressservice.sweep(ctx)  # and those of sandboxes that have gone
    return container
