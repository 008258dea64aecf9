"""Substitution: an env comes from an image instead of a build when one can be trusted.

Before ``sync`` builds an env it tries, in order:

1. the **local restore archive** ``aishell-env:<env id>`` (kept after every build, see
   :mod:`aishell.store.envimage`), then
2. every **substituter** (an image registry path such as ``localhost:5000/aishell``):
   ``--substituter`` options first, then ``[store] substituters`` of the global config,
   then the project's (the config merge puts global first).

Each is pulled by the engine, restored into a fresh volume and accepted only when its tree
digest equals its label. Whatever fails — a missing tag, an unreachable registry, an
image for another platform or env, a digest mismatch — is one line saying why, and the
next is tried; when none is left, ``sync`` builds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aishell.engine import Engine
from aishell.errors import EngineError, EngineNotFound
from aishell.paths import Paths
from aishell.store import envimage
from aishell.store.envs import Marker


@dataclass(frozen=True)
class Attempt:
    source: str  # "archive" or the substituter
    ref: str
    outcome: str  # "used" | "missing" | "unreachable" | "refused"
    reason: str = ""


@dataclass(frozen=True)
class Substitution:
    marker: Marker | None
    source: str  # "archive", the substituter that served it, or "" (none did)
    ref: str
    attempts: tuple[Attempt, ...]


def configured(store_table: Mapping[str, object], extra: Sequence[str] = (), *,
               disabled: bool = False) -> list[str]:
    """The substituters to try, in order, without repeats (none when ``disabled``)."""
    if disabled:
        return []
    listed = store_table.get("substituters") or []
    order = [*extra, *(str(s) for s in listed if isinstance(s, str))]  # type: ignore[attr-defined]
    seen: list[str] = []
    for s in (x.strip().rstrip("/") for x in order):
        if s and s not in seen:
            seen.append(s)
    return seen


def substitute(engine: Engine, env_id: str, platform: str, *, paths: Paths, image: str,
               substituters: Sequence[str], use_archive: bool = True,
               labels: Mapping[str, str] | None = None,
               on_status: Callable[[str], None] = lambda _m: None,
               on_warn: Callable[[str], None] = lambda _m: None) -> Substitution:
    """Fill ``env_id``'s volume from the archive or a substituter; see the module docstring.

    Args:
        image: a local image for helper containers (the foundation).
        substituters: registry paths, tried in order after the archive.
        use_archive: try the local restore archive first.
        on_warn: told one line for every source that was tried and failed.
    """
    attempts: list[Attempt] = []
    local = envimage.local_ref(env_id)
    if use_archive and engine.image_inspect(local) is not None:
        on_status("restoring the env from its local archive")
        try:
            marker = envimage.restore(engine, local, env_id, platform, paths=paths, image=image,
                                      source_name="archive", labels=labels)
        except envimage.Refused as exc:
            attempts.append(Attempt("archive", local, "refused", exc.message))
            on_warn(f"the local archive of env {env_id[:12]} was not used: {exc.message}")
        else:
            attempts.append(Attempt("archive", local, "used"))
            return Substitution(marker, "archive", local, tuple(attempts))
    for sub in substituters:
        ref = envimage.remote_ref(sub, env_id)
        on_status(f"pulling the env from {sub}")
        try:
            engine.pull_image(ref, platform=platform)
        except EngineNotFound as exc:
            attempts.append(Attempt(sub, ref, "missing", exc.message))
            on_warn(f"substituter {sub} has no env {env_id[:12]} ({_short(exc.message)})")
            continue
        except EngineError as exc:
            outcome = "refused" if "platform" in exc.message else "unreachable"
            attempts.append(Attempt(sub, ref, outcome, exc.message))
            on_warn(f"substituter {sub} was not used: {_short(exc.message)}")
            continue
        on_status(f"checking the env from {sub}")
        try:
            marker = envimage.restore(engine, ref, env_id, platform, paths=paths, image=image,
                                      source_name=sub, labels=labels)
        except envimage.Refused as exc:
            attempts.append(Attempt(sub, ref, "refused", exc.message))
            on_warn(f"substituter {sub} was not used: {exc.message}")
            with contextlib.suppress(EngineError):
                engine.remove_image(ref)
            continue
        attempts.append(Attempt(sub, ref, "used"))
        _keep_as_archive(engine, ref, env_id)
        return Substitution(marker, sub, ref, tuple(attempts))
    return Substitution(None, "", "", tuple(attempts))


def _keep_as_archive(engine: Engine, ref: str, env_id: str) -> None:
    """The pulled image (its digest checked) becomes the local archive; the registry's
    name for it is dropped, so the store holds one tag per env."""
    with contextlib.suppress(EngineError):
        engine.tag_image(ref, envimage.LOCAL_REPO, env_id)
        engine.remove_image(ref)


def _short(message: str) -> str:
    text = message.strip().splitlines()[-1] if message.strip() else message
    return text if len(text) <= 160 else text[:157] + "..."
