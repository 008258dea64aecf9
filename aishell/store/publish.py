"""`aishell store push` and `aishell store pull`: envs to and from a substituter.

Both go through the engine's own push and pull, so ``docker login``, credential helpers,
mirrors and proxies of the engine apply (see :mod:`aishell.engine.transfer`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aishell.engine.transfer import split_ref
from aishell.errors import AishellError, EngineError
from aishell.project.context import Context
from aishell.store import envimage, envs, substitute
from aishell.store.images import foundation_for
from aishell.store.sync import engine_platform, project_env_id


@dataclass(frozen=True)
class Pushed:
    kind: str  # "env" | "foundation"
    id: str  # env id or foundation tag
    ref: str
    digest: str  # the manifest digest the registry stored
    layer: str  # env images: the layer's diff id


@dataclass(frozen=True)
class PushResult:
    to: str
    pushed: tuple[Pushed, ...]
    seconds: float


@dataclass(frozen=True)
class PullResult:
    env_id: str
    state: str  # "reused" | "substituted" | "missing"
    source: str
    tree_digest: str
    attempts: tuple[substitute.Attempt, ...]
    seconds: float


def _target(ctx: Context, to: str | None) -> str:
    if to:
        return to.strip().rstrip("/")
    listed = substitute.configured(ctx.config.table("store"))
    if not listed:
        raise AishellError("no substituter to push to",
                           hint='pass --to REGISTRY/PATH or set [store] substituters = ["…"]')
    return listed[0]


def _project_env(ctx: Context) -> str:
    return project_env_id(ctx, what="push or pull",
                          hint="run `aishell lock` (or `aishell sync`) first")


def _complete_envs(ctx: Context, image: str) -> list[envs.Marker]:
    found = []
    for v in ctx.engine.list_volumes({"dev.aishell.managed": "1", "dev.aishell.kind": "env"}):
        env_id = (v.get("Labels") or {}).get("dev.aishell.env-id", "")
        marker = envs.is_complete(ctx.engine, env_id, image=image) if env_id else None
        if marker is not None:
            found.append(marker)
    return found


def _push_ref(ctx: Context, local: str, ref: str, on_status: Callable[[str], None]) -> str:
    repo, tag = split_ref(ref)
    ctx.engine.tag_image(local, repo, tag)
    try:
        return ctx.engine.push_image(ref, on_status=on_status)
    finally:
        with contextlib.suppress(EngineError):
            ctx.engine.remove_image(ref)  # only the name: the local archive keeps the image


def push(ctx: Context, *, to: str | None = None, all_envs: bool = False,
         on_status: Callable[[str], None] = lambda _m: None) -> PushResult:
    """Publish this project's env (``all_envs``: every complete env and the foundation).

    The env's local archive image is pushed (exported first when there is none); an env
    volume that is not complete is never published.
    """
    started = time.monotonic()
    target = _target(ctx, to)
    image = foundation_for(ctx).tag
    if all_envs:
        markers = _complete_envs(ctx, image)
    else:
        env_id = _project_env(ctx)
        marker = envs.is_complete(ctx.engine, env_id, image=image)
        if marker is None:
            raise AishellError(f"env {env_id[:12]} is not complete on this machine",
                               hint="run `aishell sync` first")
        markers = [marker]
    pushed: list[Pushed] = []
    for marker in markers:
        on_status(f"exporting env {marker.env_id[:12]}")
        envimage.archive(ctx.engine, marker, image=image)
        local = envimage.local_ref(marker.env_id)
        info = ctx.engine.image_inspect(local) or {}
        layer = str(((info.get("RootFS") or {}).get("Layers") or [""])[-1])
        ref = envimage.remote_ref(target, marker.env_id)
        on_status(f"pushing {ref}")
        pushed.append(Pushed("env", marker.env_id, ref, _push_ref(ctx, local, ref, on_status),
                             layer))
    if all_envs and ctx.engine.image_exists(image):
        ref = f"{target}/foundation:{split_ref(image)[1]}"
        on_status(f"pushing {ref}")
        pushed.append(Pushed("foundation", image, ref, _push_ref(ctx, image, ref, on_status), ""))
    return PushResult(target, tuple(pushed), time.monotonic() - started)


def pull(ctx: Context, *, substituters: Sequence[str] = (),
         on_status: Callable[[str], None] = lambda _m: None,
         on_warn: Callable[[str], None] = lambda _m: None) -> PullResult:
    """Fetch this project's env from a substituter (``--from`` first, then the configured)."""
    started = time.monotonic()
    env_id = _project_env(ctx)
    image = foundation_for(ctx).tag
    if not ctx.engine.image_exists(image):
        raise AishellError(f"the foundation image {image} is missing",
                           hint="run `aishell build` first (it reads and checks env volumes)")
    marker = envs.is_complete(ctx.engine, env_id, image=image)
    if marker is not None:
        return PullResult(env_id, "reused", "", marker.tree_digest, (), time.monotonic() - started)
    sources = substitute.configured(ctx.config.table("store"), substituters)
    if not sources:
        raise AishellError("no substituter to pull from",
                           hint='pass --from REGISTRY/PATH or set [store] substituters = ["…"]')
    found = substitute.substitute(ctx.engine, env_id, engine_platform(ctx), paths=ctx.paths,
                                  image=image, substituters=sources, use_archive=False,
                                  on_status=on_status, on_warn=on_warn)
    if found.marker is None:
        return PullResult(env_id, "missing", "", "", found.attempts, time.monotonic() - started)
    return PullResult(env_id, "substituted", found.source, found.marker.tree_digest,
                      found.attempts, time.monotonic() - started)
