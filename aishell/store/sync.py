"""`aishell sync`: make the store hold what the lock needs on this machine.

Images (foundation, the project's extension) and the env volume named by the lock's
env id for this platform. Every step looks first and builds only what is missing, so a
second sync — or a sync in another project with the same lock — is a no-op.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from aishell import render
from aishell.errors import AishellError
from aishell.lock.freshness import read_lock, stale_reasons
from aishell.lock.lockfile import Lock
from aishell.lock.manifest import from_config
from aishell.project.context import Context
from aishell.request import Mount
from aishell.store import envs as envstore
from aishell.store.images import Images, ensure_image, ensure_images, foundation_for

if TYPE_CHECKING:  # building an env needs these; a no-op sync must not pay for them
    from aishell.lock.cache import DownloadCache
    from aishell.store import plan as envplan
    from aishell.store.substitute import Attempt

INSTALL_TIMEOUT = 1800.0
DOWNLOAD_THREADS = 8


@dataclass(frozen=True)
class EnvOutcome:
    env_id: str
    platform: str
    volume: str
    state: str  # "reused" | "built" | "restored" | "substituted" | "missing" (with --check)
    tree_digest: str = ""
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    source: str = ""  # where a restored/substituted env came from: "archive" or a substituter
    image: str = ""  # the image it was restored from
    attempts: tuple[Attempt, ...] = ()  # every archive/substituter tried, in order
    rebuild_check: RebuildCheck | None = None


@dataclass(frozen=True)
class RebuildCheck:
    """``--rebuild-check``: the env built locally beside the one in the store."""

    tree_digest: str
    matches: bool


@dataclass(frozen=True)
class Downloads:
    needed: int = 0
    fetched: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class SyncResult:
    project: str
    lock: str  # "fresh" | "relocked" | "frozen" | "none"
    image: str
    images_built: tuple[str, ...]
    images_missing: tuple[str, ...]
    env: EnvOutcome | None
    downloads: Downloads
    seconds: float
    # (role, image id, tag) of every image the project's sandboxes rest on; not in --json
    images_used: tuple[tuple[str, str, str], ...] = ()

    @property
    def complete(self) -> bool:
        return not self.images_missing and (self.env is None or self.env.state != "missing")

    @property
    def ok(self) -> bool:
        check = self.env.rebuild_check if self.env is not None else None
        return self.complete and (check is None or check.matches)


def engine_platform(ctx: Context) -> str:
    return f"linux/{ctx.engine.arch()}"


def project_env_id(ctx: Context, *, what: str, hint: str) -> str:
    """The env id this project's lock names for the engine's platform (``what``: the
    command's object, for the error when there is no lock)."""
    lock = read_lock(ctx.config.lock_path)
    if lock is None:
        raise AishellError(f"{ctx.config.lock_path} does not exist: no env to {what}", hint=hint)
    platform = engine_platform(ctx)
    if platform not in lock.env_ids():
        raise AishellError(f"aishell.lock has no env for {platform}")
    return lock.env_ids()[platform]


def current_lock(ctx: Context, *, locked: bool, frozen: bool, offline: bool, check: bool,
                 on_status: Callable[[str], None]) -> tuple[Lock | None, str]:
    """The lock to sync, re-locking first when the manifest asks for something else."""
    path = ctx.config.lock_path
    lock = read_lock(path)
    if frozen:
        if lock is None:
            raise AishellError(f"{path} does not exist (--frozen uses the lock as it is)",
                               hint="run `aishell lock` first, or drop --frozen")
        return lock, "frozen"
    manifest = from_config(ctx.config)
    if lock is None and not manifest.harnesses:
        return None, "none"
    reasons = ["aishell.lock does not exist"] if lock is None else stale_reasons(manifest, lock)
    if not reasons:
        return lock, "fresh"
    if locked or check:
        raise AishellError(f"{path} is out of date: {'; '.join(reasons)}",
                           hint="run `aishell lock` (or `aishell sync` without --locked)")
    if offline:
        raise AishellError(f"{path} is out of date ({'; '.join(reasons)}) and --offline "
                           "cannot resolve it", hint="run `aishell lock` with network access")
    from aishell.lock.locking import lock as relock  # noqa: PLC0415 - resolver imports

    on_status("locking: " + "; ".join(reasons))
    from aishell.store.fetch import recorder  # noqa: PLC0415

    def image() -> str:
        return ensure_image(ctx)

    relock(ctx, on_status=on_status, image=image, capture=recorder(ctx, image))
    return read_lock(path), "relocked"


def _fetch_all(ctx: Context, plan: envplan.EnvPlan, *, offline: bool,
               on_status: Callable[[str], None]) -> tuple[DownloadCache, Downloads]:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    from aishell import certs  # noqa: PLC0415
    from aishell.lock.cache import DownloadCache  # noqa: PLC0415

    bundle = certs.find_bundle(ctx.config.table("settings").get("ca_bundle"))
    cache = DownloadCache(ctx.paths.downloads, ca_bundle=bundle)
    missing = [d for d in plan.downloads if not cache.has(d.integrity)]
    if missing:
        on_status(f"downloading {len(missing)} of {len(plan.downloads)} tarballs")
    with ThreadPoolExecutor(DOWNLOAD_THREADS) as pool:
        paths = list(pool.map(
            lambda d: cache.fetch(d.url, d.integrity, d.name, offline=offline), plan.downloads))
    fetched = {d.integrity for d in missing}
    size = sum(p.stat().st_size for p, d in zip(paths, plan.downloads, strict=True)
               if d.integrity in fetched)
    return cache, Downloads(len(plan.downloads), len(missing), size)


def _populate(ctx: Context, lock: Lock, platform: str, image: str, *, offline: bool,
              force: bool, on_status: Callable[[str], None],
              on_line: Callable[[str], None],
              env_id: str = "") -> tuple[envstore.PopulateResult, Downloads]:
    import tempfile  # noqa: PLC0415

    from aishell.lock.foundation import PROXY_VARS  # noqa: PLC0415
    from aishell.store import plan as envplan  # noqa: PLC0415
    from aishell.store.fetch import TLS_DIR, write_plan  # noqa: PLC0415
    from aishell.store.tlsmint import Minter  # noqa: PLC0415

    env_id = env_id or lock.env_ids()[platform]
    plan = envplan.plan(lock, platform)
    cache, downloads = _fetch_all(ctx, plan, offline=offline, on_status=on_status)

    with tempfile.TemporaryDirectory(prefix="aishell-plan-") as tmp:
        plan_dir = Path(tmp)
        https = any(d.url.startswith("https://") for h in plan.harnesses for d in h.fetches)
        # Recorded HTTPS downloads are served as their hosts, by a CA made for this run.
        with Minter(plan_dir / TLS_DIR) if https else contextlib.nullcontext() as minter:
            write_plan(plan, cache, plan_dir, minter=minter)
        network = "none"  # everything comes from the cache: nothing to reach
        passthrough: tuple[str, ...] = ()
        if any(h.network_install for h in plan.harnesses):
            # allow-network-install: its install scripts reach the network (the lock marks
            # the env as not reproducible); the others still go through the replay server.
            network = "host"
            passthrough = tuple(v for v in PROXY_VARS if os.environ.get(v))
        step = envstore.InstallStep(
            name="install the locked closure",
            command=("bash", f"{envplan.PLAN_MOUNT}/install.sh"),
            mounts=(Mount(str(cache.root), envplan.CACHE_MOUNT, read_only=True),
                    Mount(str(plan_dir), envplan.PLAN_MOUNT, read_only=True)),
            network=network,
            env={v: os.environ[v] for v in passthrough},
            timeout=INSTALL_TIMEOUT,
        )
        result = envstore.populate(
            ctx.engine, env_id, platform, [step], paths=ctx.paths, image=image, force=force,
            on_wait=render.err, on_step=on_status, on_line=on_line,
        )
    return result, downloads


def sync(ctx: Context, *, locked: bool = False, frozen: bool = False, offline: bool = False,
         check: bool = False, force: bool = False, substituters: Sequence[str] = (),
         no_substitute: bool = False, rebuild_check: bool = False,
         on_status: Callable[[str], None] = lambda _m: None,
         on_line: Callable[[str], None] = lambda _l: None) -> SyncResult:
    """Bring the store up to date with the project's lock; see the module docstring.

    Args:
        substituters: registry paths tried before the configured ones.
        no_substitute: try no substituter (the local restore archive is still used).
        rebuild_check: also build the env locally and compare the tree digests.
    """
    started = time.monotonic()
    lock, lock_state = current_lock(ctx, locked=locked, frozen=frozen, offline=offline,
                                    check=check, on_status=on_status)
    images: Images | None = None
    missing_images: list[str] = []
    if check:
        foundation = foundation_for(ctx)
        if not ctx.engine.image_exists(foundation.tag):
            missing_images.append(foundation.tag)
        image = foundation.tag
    else:
        images = ensure_images(ctx, force=force, record=lock is None)
        image = images.tag
    env: EnvOutcome | None = None
    downloads = Downloads()
    if lock is not None:
        platform = engine_platform(ctx)
        if platform not in lock.platforms:
            raise AishellError(
                f"aishell.lock covers {', '.join(lock.platforms)}, not this engine's {platform}",
                hint=f'add "{platform}" to [settings] platforms in aishell.toml and run `aishell lock`',
            )
        _check_base(ctx, lock, platform)
        env_id = lock.env_ids()[platform]
        volume = envstore.volume_name(env_id)
        marker = None if force else envstore.is_complete(ctx.engine, env_id, image=image)
        if marker is not None:
            env = EnvOutcome(env_id, platform, volume, "reused", marker.tree_digest,
                             marker.files, marker.bytes)
        elif check:
            env = EnvOutcome(env_id, platform, volume, "missing")
        else:
            env, downloads = _substitute_or_build(
                ctx, lock, platform, image, offline=offline, force=force,
                substituters=substituters, no_substitute=no_substitute or offline,
                on_status=on_status, on_line=on_line)
        if rebuild_check and env.state != "missing":
            env = replace(env, rebuild_check=_rebuild_check(
                ctx, lock, platform, image, env, offline=offline, on_status=on_status,
                on_line=on_line))
        if not check:
            _record(ctx, lock, images)
    return SyncResult(str(ctx.project), lock_state, image,
                      images.built if images else (), tuple(missing_images), env, downloads,
                      time.monotonic() - started, images.used if images else ())


def _substitute_or_build(ctx: Context, lock: Lock, platform: str, image: str, *,
                         offline: bool, force: bool, substituters: Sequence[str],
                         no_substitute: bool, on_status: Callable[[str], None],
                         on_line: Callable[[str], None]) -> tuple[EnvOutcome, Downloads]:
    """The env from its local archive or a substituter, else built (and then archived).

    ``--offline`` and ``--no-substitute`` skip the substituters, not the local archive
    (this machine's own build).
    """
    from aishell.store import envimage, substitute  # noqa: PLC0415 - only when env is missing

    substituters = substitute.configured(ctx.config.table("store"), substituters,
                                         disabled=no_substitute)
    env_id = lock.env_ids()[platform]
    volume = envstore.volume_name(env_id)
    attempts: tuple[Attempt, ...] = ()
    if not force:
        started = time.monotonic()
        found = substitute.substitute(ctx.engine, env_id, platform, paths=ctx.paths,
                                      image=image, substituters=substituters,
                                      on_status=on_status, on_warn=render.warn)
        attempts = found.attempts
        if found.marker is not None:
            m = found.marker
            state = "restored" if found.source == "archive" else "substituted"
            return EnvOutcome(env_id, platform, volume, state, m.tree_digest, m.files, m.bytes,
                              time.monotonic() - started, found.source, found.ref,
                              attempts), Downloads()
        if substituters:
            render.warn(f"no substituter had env {env_id[:12]}: building it locally")
    result, downloads = _populate(ctx, lock, platform, image, offline=offline, force=force,
                                  on_status=on_status, on_line=on_line)
    # Off by default for now: the export costs a cold sync time and the env's size in disk,
    # and a restore of the real four-harness env is still refused (docs/store.md).
    if result.built and ctx.config.table("store").get("keep_archive", False) is True:
        on_status("keeping the env as a local image (its restore archive)")
        try:
            envimage.archive(ctx.engine, result.marker, image=image)
        except AishellError as exc:
            render.warn(f"could not keep env {env_id[:12]} as a local image: {exc.message}")
    return EnvOutcome(env_id, platform, volume, "built" if result.built else "reused",
                      result.marker.tree_digest, result.marker.files, result.marker.bytes,
                      result.seconds, attempts=attempts), downloads


def _rebuild_check(ctx: Context, lock: Lock, platform: str, image: str, env: EnvOutcome, *,
                   offline: bool, on_status: Callable[[str], None],
                   on_line: Callable[[str], None]) -> RebuildCheck:
    """Build the env again into a scratch volume and compare its tree digest (Nix's --check).

    The scratch volume is named by a derived id, so the store's env is never touched; it is
    removed when done.
    """
    from aishell.hashing import derive  # noqa: PLC0415

    scratch = derive("aishell 2026-12 rebuild check", env.env_id.encode())
    on_status("building the env again to check it")
    try:
        result, _ = _populate(ctx, lock, platform, image, offline=offline, force=True,
                              on_status=on_status, on_line=on_line, env_id=scratch)
    finally:
        ctx.engine.remove_volume(envstore.volume_name(scratch))
    digest = result.marker.tree_digest
    return RebuildCheck(digest, digest == env.tree_digest)


def _check_base(ctx: Context, lock: Lock, platform: str) -> None:
    """Warn when the engine's base image is not the one the lock recorded.

    The env never depends on the foundation (it brings its own Node.js), so this is a
    warning, not an error: the sandbox's system tools may differ from a teammate's.
    """
    locked = lock.base_digests.get(platform)
    image = ctx.engine.image_inspect(lock.base) if locked else None
    if not locked or image is None:
        return
    have = {str(image.get("Id"))} | {d.split("@", 1)[-1] for d in image.get("RepoDigests") or []}
    if locked not in have:
        render.warn(f"the engine's {lock.base} is not the base image aishell.lock recorded "
                    f"({locked[:19]}); the foundation is built from the one the engine has")


def _record(ctx: Context, lock: Lock, images: Images | None) -> None:
    """The project is an auto root of its env ids and images (gc), with a generation."""
    from aishell.store import index  # noqa: PLC0415

    path = ctx.config.lock_path
    try:
        index.record_use(
            ctx.paths, ctx.project, lock_path=path, env_ids=lock.env_ids(),
            images=[index.ImageRef(role, image_id, tag) for role, image_id, tag in
                    (images.used if images else ())],
            lock_bytes=path.read_bytes() if path.is_file() else None,
        )
    except (AishellError, OSError) as exc:
        render.warn(f"could not record this sync in the store index: {exc}")
        return
    from aishell.store import engineroots  # noqa: PLC0415

    try:
        engineroots.publish_home(ctx.engine, ctx.paths)
    except (AishellError, OSError) as exc:
        render.warn(f"could not publish this home's gc roots on the engine: {exc}")


def ensure_env(ctx: Context, *, locked: bool = False, frozen: bool = False,
               offline: bool = False, substituters: Sequence[str] = (),
               no_substitute: bool = False) -> str | None:
    """The env volume a sandbox of this project mounts at /tools (synced first), or None
    when the project locks no harnesses. Silent when there is nothing to do."""
    with render.lazy_progress("syncing the store", quiet=ctx.quiet,
                              verbose=ctx.verbose) as on_status:
        result = sync(ctx, locked=locked, frozen=frozen, offline=offline,
                      substituters=substituters, no_substitute=no_substitute,
                      on_status=on_status, on_line=on_status if ctx.verbose else lambda _l: None)
    return result.env.volume if result.env is not None else None
