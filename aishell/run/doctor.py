"""`aishell check` (the doctor) and `aishell info`: data first, printing in the CLI."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import asdict, dataclass
from typing import Literal

from aishell import __version__, certs
from aishell.engine import EngineInfo
from aishell.errors import AishellError
from aishell.project.context import Context
from aishell.store.images import foundation_for

Status = Literal["ok", "fail", "warn", "info"]


@dataclass(frozen=True)
class Finding:
    status: Status
    subject: str
    detail: str
    hint: str | None = None


def _engine_notes(host: str, info: EngineInfo) -> list[Finding]:
    """What the engine that was found means for aishell's promises (docs/engines.md)."""
    out: list[Finding] = []
    where = host or "the default socket"
    if host and not host.startswith("unix://"):
        out.append(Finding("warn", "remote engine", f"{host}: bind mounts are the engine host's",
                           "the project path (and every --volume) must exist at the same path "
                           "on the engine host; see docs/engines.md"))
    if info.podman and info.rootless:
        out.append(Finding("warn", "podman", f"rootless podman at {where}: your UID is root in "
                           "its user namespace, so the sandbox's files map to subordinate IDs",
                           "rootful podman (or Docker) is what aishell tests; see docs/engines.md"))
    elif info.podman:
        out.append(Finding("ok", "podman", f"rootful podman's Docker API at {where}; images live "
                           "in podman's own storage (the base image must be there too)"))
    return out


def check(ctx: Context) -> list[Finding]:
    out: list[Finding] = []
    cli = ctx.engine.cli
    if shutil.which(cli):
        out.append(Finding("ok", "engine CLI", shutil.which(cli) or cli))
    else:
        out.append(Finding("fail", "engine CLI", f"{cli} not found on PATH",
                           "install the Docker CLI (Debian: docker.io) or Podman"))
    info: EngineInfo | None = None
    try:
        info = ctx.engine.info()
    except AishellError as exc:
        out.append(Finding("fail", "engine", exc.message, exc.hint))
    if info is not None:
        kind = "podman" if info.podman else "docker"
        mode = "rootless" if info.rootless else "rootful"
        out.append(Finding("ok", "engine", f"{kind} {info.version} (API {info.api_version}, "
                           f"{mode}, {info.os}/{info.arch}, {info.storage_driver}, "
                           f"cgroup v{info.cgroup_version})"))
        out += _engine_notes(ctx.engine.docker_host or "", info)
        foundation = foundation_for(ctx)
        base = ctx.engine.image_inspect(foundation.base)
        if base is None:
            out.append(Finding("fail", "base image", f"{foundation.base} is not available",
                               f"`docker pull {foundation.base}` or run scripts/provision.sh"))
        else:
            digests = base.get("RepoDigests") or []
            ident = digests[0] if digests else f"local image {str(base['Id'])[:19]}"
            out.append(Finding("ok", "base image", f"{foundation.base} ({ident})"))
        image = ctx.engine.image_inspect(foundation.tag)
        if image is None:
            out.append(Finding("info", "foundation image",
                               f"{foundation.tag} not built yet (built on first use)"))
        else:
            out.append(Finding("ok", "foundation image", f"{foundation.tag} ({str(image['Id'])[:19]})"))
        out += _project_findings(ctx, info.arch)
    out.append(_credentials_finding(ctx))
    bundle = certs.find_bundle(ctx.config.table("settings").get("ca_bundle"))
    if bundle:
        out.append(Finding("ok", "CA bundle", f"{bundle} (mounted into containers)"))
    else:
        out.append(Finding("warn", "CA bundle", "none found",
                           "behind a TLS-intercepting proxy set SSL_CERT_FILE or [settings] ca_bundle"))
    for label, path in (("state", ctx.paths.state), ("cache", ctx.paths.cache)):
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        if existing is not None and os.access(existing, os.W_OK):
            free = shutil.disk_usage(existing).free
            out.append(Finding("ok", f"{label} directory", f"{path} ({free / 2**30:.1f} GiB free)"))
        else:
            out.append(Finding("fail", f"{label} directory", f"{path} is not writable",
                               "fix its permissions or set AISHELL_HOME"))
    return out


def _credentials_finding(ctx: Context) -> Finding:
    from aishell.run.credentials import mode_of  # noqa: PLC0415

    try:
        mode = mode_of(ctx.config)
    except AishellError as exc:
        return Finding("fail", "credentials", exc.message, exc.hint)
    if mode == "env":
        return Finding("warn", "credentials", 'mode = "env": API keys are passed into the '
                       "sandbox, where anything it runs can read them (weaker than the broker)",
                       'set [credentials] mode = "broker" (the default); see docs/security.md')
    return Finding("ok", "credentials", "brokered: API keys stay outside the sandbox")


def _project_findings(ctx: Context, arch: str) -> list[Finding]:
    """The project's lock (fresh?) and its env on this machine (complete?)."""
    from aishell.lock.locking import lock  # noqa: PLC0415
    from aishell.store import envs as envstore  # noqa: PLC0415

    if ctx.config.manifest is None:
        return [Finding("info", "project", f"{ctx.project} has no aishell.toml "
                        "(`aishell init` or `aishell add claude` starts one)")]
    try:
        state = lock(ctx, check=True)
    except AishellError as exc:
        return [Finding("fail", "lock", exc.message, exc.hint)]
    if state.status != "fresh":
        return [Finding("warn", "lock", f"aishell.lock is {state.status}: {'; '.join(state.reasons)}",
                        "run `aishell lock` (launches do it for you)")]
    out = [Finding("ok", "lock", f"{state.path} is fresh")]
    env_id = state.env_ids.get(f"linux/{arch}")
    if env_id is None:
        out.append(Finding("warn", "env", f"the lock does not cover linux/{arch}",
                           f'add "linux/{arch}" to [settings] platforms'))
    elif envstore.is_complete(ctx.engine, env_id) is None:
        out.append(Finding("info", "env", f"{envstore.volume_name(env_id)} not built yet "
                           "(`aishell sync`, or built on first use)"))
    else:
        out.append(Finding("ok", "env", f"{envstore.volume_name(env_id)} is complete"))
    return out


@dataclass(frozen=True)
class Info:
    version: str
    python: str
    platform: str
    project: str
    config: str
    state: str
    cache: str
    engine: dict[str, object] | None
    engine_error: str | None
    foundation_tag: str
    foundation_id: str
    foundation_base: str
    ca_bundle: str | None


def info(ctx: Context) -> Info:
    engine: dict[str, object] | None = None
    engine_error = None
    try:
        engine = asdict(ctx.engine.info())
    except AishellError as exc:
        engine_error = exc.message
    foundation = foundation_for(ctx)
    bundle = certs.find_bundle(ctx.config.table("settings").get("ca_bundle"))
    return Info(
        version=__version__,
        python=sys.version.split()[0],
        platform=f"{platform.system().lower()}/{platform.machine()}",
        project=str(ctx.project),
        config=str(ctx.paths.global_config),
        state=str(ctx.paths.state),
        cache=str(ctx.paths.cache),
        engine=engine,
        engine_error=engine_error,
        foundation_tag=foundation.tag,
        foundation_id=foundation.id,
        foundation_base=foundation.base,
        ca_bundle=str(bundle) if bundle else None,
    )
