"""A container launch described as plain data, and its translation to engine CLI argv.

Pure code: no engine, no environment reads. The launcher builds a
:class:`ContainerRequest`; :func:`cli_args` turns it into the argument list of
``docker run``. Environment *values* never appear in that list: every variable is
passed by name (``-e NAME``) and its value travels in the CLI process's environment
(:meth:`ContainerRequest.process_env`), so no secret is visible in any process's
command line.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = False
    kind: Literal["bind", "volume"] = "bind"
    no_copy: bool = False

    def spec(self, engine_cli: str = "docker") -> str:
        """The ``--mount`` value, CSV-quoted so commas and quotes in paths survive.

        Podman 4's ``--mount`` knows neither ``readonly`` nor ``volume-nocopy``: it gets
        ``ro``, and no copy-up flag (it copies image content only into an empty volume,
        and the volumes aishell mounts read-only are never empty)."""
        fields = [f"type={self.kind}", f"source={self.source}", f"target={self.target}"]
        podman = Path(engine_cli).name == "podman"
        if self.read_only:
            fields.append("ro" if podman else "readonly")
        if self.kind == "volume" and self.no_copy and not podman:
            fields.append("volume-nocopy")
        buf = io.StringIO()
        import csv  # noqa: PLC0415 - only for a --mount field that needs quoting

        csv.writer(buf, lineterminator="").writerow(fields)
        return buf.getvalue()


@dataclass(frozen=True)
class Port:
    host_port: str
    container_port: str
    host_ip: str = ""
    protocol: str = "tcp"

    def spec(self) -> str:
        host = f"{self.host_ip}:{self.host_port}" if self.host_ip else self.host_port
        if ":" in self.host_ip:  # IPv6 literal
            host = f"[{self.host_ip}]:{self.host_port}"
        return f"{host}:{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class ContainerRequest:
    image: str
    command: tuple[str, ...] = ()
    name: str | None = None
    workdir: str | None = None
    mounts: tuple[Mount, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    env_passthrough: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    interactive: bool = True
    tty: bool = False
    detach: bool = False
    remove: bool = True
    init: bool = True
    hostname: str | None = None
    network: str | None = None
    security_opts: tuple[str, ...] = ()
    user: str | None = None  # UID:GID to run as (the sandbox's entrypoint picks its own)
    cap_drop: tuple[str, ...] = ()
    tmpfs: tuple[tuple[str, str], ...] = ()  # (container path, mount options)
    extra_args: tuple[str, ...] = ()
    # Replaces the image's entrypoint (helper containers skip the sandbox entrypoint).
    entrypoint: tuple[str, ...] | None = None

    def env_names(self) -> list[str]:
        """Every variable the container receives, by name, sorted and unique."""
        return sorted(set(self.env) | set(self.env_passthrough))

    def process_env(self) -> dict[str, str]:
        """Values the engine CLI process must carry for the ``-e NAME`` arguments."""
        return dict(self.env)


def cli_args(req: ContainerRequest, engine_cli: str = "docker") -> list[str]:
    """The ``<engine> run …`` argv for ``req``."""
    argv = [engine_cli, "run"]
    if req.remove:
        argv.append("--rm")
    if req.init:
        argv.append("--init")
    if req.detach:
        argv.append("--detach")
    if req.interactive:
        argv.append("--interactive")
    if req.tty:
        argv.append("--tty")
    if req.name:
        argv += ["--name", req.name]
    if req.hostname:
        argv += ["--hostname", req.hostname]
    if req.network:
        argv += ["--network", req.network]
    if req.workdir:
        argv += ["--workdir", req.workdir]
    for key in sorted(req.labels):
        argv += ["--label", f"{key}={req.labels[key]}"]
    for mount in req.mounts:
        argv += ["--mount", mount.spec(engine_cli)]
    for name in req.env_names():
        argv += ["--env", name]
    for port in req.ports:
        argv += ["--publish", port.spec()]
    for opt in req.security_opts:
        argv += ["--security-opt", opt]
    if req.user:
        argv += ["--user", req.user]
    for cap in req.cap_drop:
        argv += ["--cap-drop", cap]
    for path, options in req.tmpfs:
        argv += ["--tmpfs", f"{path}:{options}" if options else path]
    entrypoint, command = _entrypoint_args(req)
    argv += entrypoint
    argv += list(req.extra_args)
    argv.append(req.image)
    argv += command
    return argv


def _entrypoint_args(req: ContainerRequest) -> tuple[list[str], list[str]]:
    """``--entrypoint`` and the command: the CLI takes one entrypoint word, the rest goes
    before the command."""
    if req.entrypoint is None:
        return [], list(req.command)
    first = req.entrypoint[0] if req.entrypoint else ""
    return ["--entrypoint", first], list(req.entrypoint[1:]) + list(req.command)
