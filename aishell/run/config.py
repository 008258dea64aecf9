"""The ``[run]`` table: mounts, env, ports, docker_args, pre_start, harness_args (pure).

Each config file's ``[run]`` is checked on its own first, so a bad port or mount points
at the file and line it was written on; the merged table (SPEC 3.1: lists concatenate,
maps merge, scalars are replaced) is then resolved against the host: ``~``, ``$HOME``,
``$USER``, ``$UID``, ``$GID`` (and other set variables) expanded, relative sources taken
from the project, missing sources reported as warnings and skipped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aishell import inputs
from aishell.errors import ConfigError
from aishell.project.config import Config, Source
from aishell.request import Mount, Port
from aishell.run.identity import HostUser

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_PORT = re.compile(
    r"^(?:(?P<ip>\[[^\]]*\]|[^:\[\]]+):)?(?P<host>[0-9]+):(?P<cont>[0-9]+)(?:/(?P<proto>[a-z]+))?$"
)
PROTOCOLS = ("tcp", "udp", "sctp")
MOUNT_HINT = 'write SRC, SRC:DST or SRC:DST:ro (DST absolute), e.g. "~/.aws:ro" or "/data:/data"'
PORT_HINT = 'write [IP:]HOST:CONTAINER[/tcp|udp|sctp], e.g. "127.0.0.1:8080:80" or "[::1]:8080:80/tcp"'


class SpecError(ValueError):
    """A value's syntax is wrong; the caller adds the file and line."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class RunConfig:
    """The resolved ``[run]`` settings of one launch."""

    mounts: tuple[Mount, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    passthrough: tuple[str, ...] = ()
    ports: tuple[Port, ...] = ()
    docker_args: tuple[str, ...] = ()
    pre_start: str | None = None
    harness_args: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    skip_permissions: bool = True
    sudo: bool = False
    warnings: tuple[str, ...] = ()


def expand(text: str, user: HostUser, environ: Mapping[str, str]) -> str:
    """``~``/``~/…`` and ``$VAR``/``${VAR}`` (HOME, USER, UID, GID first, then the environment)."""
    known = {"HOME": user.home, "USER": user.name, "UID": str(user.uid), "GID": str(user.gid)}
    if text == "~" or text.startswith("~/"):
        text = user.home + text[1:]

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in known:
            return known[name]
        if name in environ:
            return environ[name]
        raise SpecError(f"${name} is not set", hint="set it, or write the path out")

    return _VAR.sub(sub, text)


def parse_mount(spec: str, user: HostUser, environ: Mapping[str, str], project: Path) -> Mount:
    """``src``, ``src:dst``, ``src:ro``, ``src:dst:ro`` → a bind Mount (paths expanded)."""
    parts = spec.split(":")
    read_only = False
    same = len(parts) == 1 or (len(parts) == 2 and parts[1] in ("ro", "rw"))
    if len(parts) > 1 and parts[-1] in ("ro", "rw"):
        read_only = parts.pop() == "ro"
    if len(parts) == 1:
        src = dst = parts[0]
    elif len(parts) == 2:
        src, dst = parts
    else:
        raise SpecError(f"mount {spec!r} has too many ':'", hint=MOUNT_HINT)
    if not src or not dst:
        raise SpecError(f"mount {spec!r} has an empty path", hint=MOUNT_HINT)
    src_path = Path(expand(src, user, environ))
    if not src_path.is_absolute():
        src_path = project / src_path
    dst_text = expand(dst, user, environ)
    if same:  # no destination written: the same path inside
        dst_text = str(src_path)
    if not dst_text.startswith("/"):
        raise SpecError(f"mount {spec!r}: the container path {dst_text!r} must be absolute",
                        hint=MOUNT_HINT)
    return Mount(os.path.normpath(src_path), os.path.normpath(dst_text), read_only=read_only)


def parse_port(spec: str) -> Port:
    """``[IP:]HOST:CONTAINER[/proto]``; IPv6 addresses in brackets."""
    m = _PORT.match(spec.strip())
    if not m:
        raise SpecError(f"invalid port mapping {spec!r}", hint=PORT_HINT)
    import ipaddress  # noqa: PLC0415 - 3 ms, on the launch path only when ports are set

    ip = m.group("ip") or ""
    if ip.startswith("["):
        ip = ip[1:-1]
        try:
            ipaddress.IPv6Address(ip)
        except ValueError as exc:
            raise SpecError(f"invalid IPv6 address {ip!r} in {spec!r}", hint=PORT_HINT) from exc
    elif ip:
        try:
            ipaddress.IPv4Address(ip)
        except ValueError as exc:
            raise SpecError(f"invalid IP address {ip!r} in {spec!r}", hint=PORT_HINT) from exc
    for which in ("host", "cont"):
        number = int(m.group(which))
        if not 1 <= number <= 65535:
            raise SpecError(f"port {number} in {spec!r} is out of range (1-65535)", hint=PORT_HINT)
    proto = m.group("proto") or "tcp"
    if proto not in PROTOCOLS:
        raise SpecError(f"unknown protocol {proto!r} in {spec!r}", hint=PORT_HINT)
    return Port(str(int(m.group("host"))), str(int(m.group("cont"))), ip, proto)


def pre_start_command(value: str | Sequence[str] | None) -> str | None:
    """A string as is; a list joined with `` && `` (each step must succeed)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else " && ".join(s for s in value if s.strip())
    return text.strip() or None


# -- checking each file ------------------------------------------------------------
def check_source(source: Source, user: HostUser, environ: Mapping[str, str]) -> None:
    """Syntax of ``source``'s ``[run]`` values, with its file and line in errors."""
    table = source.data.get("run")
    if not isinstance(table, dict):
        return

    def fail(key: str, item: str | None, exc: SpecError) -> ConfigError:
        line = source.item_line("run", key, item) if item else source.line_of("run", key)
        return ConfigError(str(exc), path=source.path, line=line, hint=exc.hint)

    for spec in table.get("mounts", ()):
        try:
            parse_mount(spec, user, environ, Path("/"))
        except SpecError as exc:
            raise fail("mounts", spec, exc) from exc
    for spec in table.get("ports", ()):
        try:
            parse_port(spec)
        except SpecError as exc:
            raise fail("ports", spec, exc) from exc
    for name in table.get("env", {}):
        if not ENV_NAME.match(name):
            raise ConfigError(f"[run] env: {name!r} is not a valid variable name",
                              path=source.path, line=source.item_line("run", "env", name),
                              hint="letters, digits and _, not starting with a digit")
    for name in table.get("harness_args", {}):
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", name):
            raise ConfigError(f"[run] harness_args: {name!r} is not a harness name",
                              path=source.path, line=source.item_line("run", "harness_args", name))


# -- resolving the merged table ----------------------------------------------------
def resolve(
    table: Mapping[str, Any],
    *,
    user: HostUser,
    environ: Mapping[str, str],
    project: Path,
    exists: Callable[[str], bool] = os.path.exists,
) -> RunConfig:
    """The merged ``[run]`` table as a RunConfig (values already checked per file)."""
    warnings: list[str] = []
    mounts: list[Mount] = []
    for spec in table.get("mounts", ()):
        mount = parse_mount(spec, user, environ, project)
        inputs.note(mount.source)
        if not exists(mount.source):
            warnings.append(f"mount source {mount.source} does not exist (from {spec!r}); skipped")
            continue
        mounts.append(mount)
    env: dict[str, str] = {}
    passthrough: list[str] = []
    for name, value in table.get("env", {}).items():
        if value is True:
            passthrough.append(name)
        elif isinstance(value, str):
            env[name] = value
    harness_args = {k: tuple(v) for k, v in table.get("harness_args", {}).items()}
    return RunConfig(
        mounts=tuple(mounts),
        env=env,
        passthrough=tuple(passthrough),
        ports=tuple(parse_port(p) for p in table.get("ports", ())),
        docker_args=tuple(table.get("docker_args", ())),
        pre_start=pre_start_command(table.get("pre_start")),
        harness_args=harness_args,
        skip_permissions=bool(table.get("skip_permissions", True)),
        sudo=table.get("sudo", False) is True,
        warnings=tuple(warnings),
    )


def from_config(
    cfg: Config,
    user: HostUser,
    environ: Mapping[str, str],
    exists: Callable[[str], bool] = os.path.exists,
) -> RunConfig:
    """Check every file's ``[run]``, then resolve the merged one."""
    for source in cfg.sources:
        check_source(source, user, environ)
    return resolve(cfg.table("run"), user=user, environ=environ, project=cfg.project,
                   exists=exists)
