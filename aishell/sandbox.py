"""Building the container request of a sandbox from plain inputs (pure code)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import blake3

from aishell.certs import CONTAINER_PATH, container_env
from aishell.identity import GitIdentity, HostUser
from aishell.request import ContainerRequest, Mount, Port

# Variables a terminal session needs to feel local; passed by name when set.
TERMINAL_VARS = ("TERM", "COLORTERM", "TERM_PROGRAM", "LANG")


def project_hash(project: Path) -> str:
    """8 hex chars naming a project in container names."""
    return blake3.blake3(str(project).encode()).hexdigest()[:8]


def container_name(project: Path, name: str) -> str:
    return f"aishell-{project_hash(project)}-{name}"


@dataclass(frozen=True)
class SandboxSpec:
    """Everything that decides a sandbox's container request."""

    image: str
    project: Path
    user: HostUser
    git: GitIdentity
    command: Sequence[str] = ()
    tty: bool = False
    name: str | None = None
    harness: str | None = None
    ca_bundle: Path | None = None
    env_volume: str | None = None
    extra_mounts: Sequence[Mount] = ()
    extra_env: Mapping[str, str] = field(default_factory=dict)
    passthrough: Sequence[str] = ()
    ports: Sequence[Port] = ()
    pre_start: str | None = None
    docker_args: Sequence[str] = ()
    detach: bool = False
    sudo: bool = False  # [run] sudo = true: passwordless sudo, and so no no-new-privileges
    host_env: Mapping[str, str] = field(default_factory=dict)


def build_request(spec: SandboxSpec) -> ContainerRequest:
    """The container request for ``spec``: project at its real path, host ids, no host home."""
    project = str(spec.project)
    env: dict[str, str] = {
        "AISHELL_UID": str(spec.user.uid),
        "AISHELL_GID": str(spec.user.gid),
        "AISHELL_USER": spec.user.name,
        "AISHELL_HOME": spec.user.home,
        "AISHELL_PROJECT": project,
        "IS_SANDBOX": "1",
    }
    if spec.git.name:
        env["AISHELL_GIT_NAME"] = spec.git.name
        env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = spec.git.name
    if spec.git.email:
        env["AISHELL_GIT_EMAIL"] = spec.git.email
        env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = spec.git.email
    if spec.pre_start:
        env["AISHELL_PRE_START"] = spec.pre_start
    if spec.sudo:
        env["AISHELL_SUDO"] = "1"
    mounts = [Mount(source=project, target=project)]
    if spec.env_volume:
        mounts.append(Mount(spec.env_volume, "/tools", read_only=True, kind="volume", no_copy=True))
    if spec.ca_bundle is not None:
        mounts.append(Mount(str(spec.ca_bundle), CONTAINER_PATH, read_only=True))
        env.update(container_env())
    mounts += list(spec.extra_mounts)
    for name in TERMINAL_VARS:
        if spec.host_env.get(name):
            env[name] = spec.host_env[name]
    env.update(spec.extra_env)
    passthrough = tuple(n for n in spec.passthrough if n not in env)
    labels = {
        "dev.aishell.managed": "1",
        "dev.aishell.kind": "sandbox",
        "dev.aishell.project": project,
    }
    if spec.name:
        labels["dev.aishell.name"] = spec.name
    if spec.harness:
        labels["dev.aishell.harness"] = spec.harness
    if spec.env_volume:
        labels["dev.aishell.env-volume"] = spec.env_volume
    return ContainerRequest(
        image=spec.image,
        command=tuple(spec.command),
        name=container_name(spec.project, spec.name) if spec.name else None,
        workdir=project,
        mounts=tuple(mounts),
        env=env,
        env_passthrough=passthrough,
        labels=labels,
        ports=tuple(spec.ports),
        interactive=True,
        tty=spec.tty,
        detach=spec.detach,
        hostname="aishell",
        # no-new-privileges: nothing exec'd inside can gain privileges through setuid
        # binaries or file capabilities. The entrypoint is unaffected (it starts as root
        # and only drops privileges with gosu); sudo is the one casualty, hence the flag.
        security_opts=() if spec.sudo else ("no-new-privileges",),
        extra_args=tuple(spec.docker_args),
    )
