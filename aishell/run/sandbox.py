"""Building the container request of a sandbox from plain inputs (pure code)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import blake3

from aishell.certs import CONTAINER_PATH, container_env
from aishell.lock.catalog import AUTOUPDATE_OFF, INNER_SANDBOX_OFF, Harness
from aishell.request import ContainerRequest, Mount, Port
from aishell.run.identity import GitIdentity, HostUser

# Variables a terminal session needs to feel local; passed by name when set. The host's
# LANG is not among them: its locale (en_US.UTF-8, …) is usually not generated in the
# image, so every sandbox runs in C.UTF-8 instead.
TERMINAL_VARS = ("TERM", "COLORTERM", "TERM_PROGRAM", "TERM_PROGRAM_VERSION")
LOCALE = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
LABEL = "dev.aishell"


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
    git_dirs: Sequence[Path] = ()  # a worktree's git dirs outside the project
    labels: Mapping[str, str] = field(default_factory=dict)


def build_request(spec: SandboxSpec) -> ContainerRequest:
    """The container request for ``spec``: project at its real path, host ids, no host home."""
    project = str(spec.project)
    env: dict[str, str] = {
        "AISHELL_UID": str(spec.user.uid),
        "AISHELL_GID": str(spec.user.gid),
        "AISHELL_USER": spec.user.name,
        "AISHELL_HOME": spec.user.home,
        "AISHELL_PROJECT": project,
        # Claude Code refuses --dangerously-skip-permissions as root without it.
        "IS_SANDBOX": "1",
        **LOCALE,
        **dict(AUTOUPDATE_OFF),
        **dict(INNER_SANDBOX_OFF),
    }
    if spec.git.name:
        env["AISHELL_GIT_NAME"] = spec.git.name
        env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = spec.git.name
    if spec.git.email:
        env["AISHELL_GIT_EMAIL"] = spec.git.email
        env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = spec.git.email
    if spec.pre_start:
        env["AISHELL_PRE_START"] = spec.pre_start
    if spec.detach:
        env["AISHELL_DETACH"] = "1"
    if spec.sudo:
        env["AISHELL_SUDO"] = "1"
    mounts = [Mount(source=project, target=project)]
    mounts += [Mount(str(d), str(d)) for d in spec.git_dirs]
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
        f"{LABEL}.managed": "1",
        f"{LABEL}.kind": "sandbox",
        f"{LABEL}.project": project,
        **spec.labels,
    }
    if spec.name:
        labels[f"{LABEL}.name"] = spec.name
    if spec.harness:
        labels[f"{LABEL}.harness"] = spec.harness
    if spec.env_volume:
        labels[f"{LABEL}.env-volume"] = spec.env_volume
    if spec.detach:
        labels[f"{LABEL}.detach"] = "1"
    if spec.pre_start:
        labels[f"{LABEL}.pre-start"] = "1"
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
        interactive=not spec.detach,
        tty=spec.tty and not spec.detach,
        detach=spec.detach,
        hostname="aishell",
        # no-new-privileges: nothing exec'd inside can gain privileges through setuid
        # binaries or file capabilities. The entrypoint is unaffected (it starts as root
        # and only drops privileges with gosu); sudo is the one casualty, hence the flag.
        security_opts=() if spec.sudo else ("no-new-privileges",),
        extra_args=tuple(spec.docker_args),
    )


def expand_home(path: str, home: str) -> str:
    return home + path[1:] if path == "~" or path.startswith("~/") else path


def harness_mounts(harness: Harness, home: str) -> list[Mount]:
    """The harness's config paths, read-write at the same path under the same home."""
    return [Mount(expand_home(p, home), expand_home(p, home)) for p in harness.config_paths]


def harness_command(
    harness: Harness,
    *,
    configured: Sequence[str] = (),
    cli: Sequence[str] = (),
    skip_permissions: bool = True,
) -> list[str]:
    """Bin, catalog defaults, permission flag, ``harness_args`` from config, then CLI args."""
    argv = [harness.bins[0] if harness.bins else harness.name, *harness.args]
    chosen = any(a == o or a.startswith(o + "=") for a in (*configured, *cli)
                 for o in harness.permission_options)
    if skip_permissions and harness.skip_permissions_flag and not chosen:
        argv.append(harness.skip_permissions_flag)
    return [*argv, *configured, *cli]
