"""`aishell verify`: recompute env volumes' tree digests and compare with their markers."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aishell.engine import Engine
from aishell.errors import AishellError
from aishell.paths import Paths
from aishell.store import envs as envstore
from aishell.store import storelock
from aishell.store.envlock import WaitHook

Status = Literal["ok", "mismatch", "incomplete"]


@dataclass(frozen=True)
class EnvCheck:
    """One env volume's verification.

    ``incomplete``: no valid marker, so the volume is never mounted and ``sync``
    rebuilds it; it is reported, not counted as a failure.
    """

    env_id: str
    volume: str
    platform: str
    status: Status
    recorded: str | None
    actual: str | None
    files: int
    bytes: int
    seconds: float


@dataclass(frozen=True)
class VerifyReport:
    envs: tuple[EnvCheck, ...]

    @property
    def ok(self) -> bool:
        return all(e.status != "mismatch" for e in self.envs)


def select_volumes(engine: Engine, wanted: Sequence[str] | None,
                   labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Env volumes to verify: all (``wanted`` None) or those matching an env id or volume
    name (or a prefix of either) in ``wanted``.

    Raises:
        AishellError: an item of ``wanted`` matches no env volume.
    """
    volumes = engine.list_volumes({"dev.aishell.managed": "1", "dev.aishell.kind": "env",
                                   **(labels or {})})
    volumes.sort(key=lambda v: str(v.get("Name")))
    if wanted is None:
        return volumes
    chosen: dict[str, dict[str, Any]] = {}
    for item in wanted:
        hits = [v for v in volumes
                if str(v["Name"]).startswith(item)
                or str((v.get("Labels") or {}).get("dev.aishell.env-id", "")).startswith(item)]
        if not hits:
            raise AishellError(f"no env volume matches {item!r}",
                               hint="`aishell verify --all` checks every env volume")
        chosen.update((str(v["Name"]), v) for v in hits)
    return [chosen[name] for name in sorted(chosen)]


def verify(
    engine: Engine,
    paths: Paths,
    *,
    wanted: Sequence[str] | None = None,
    image: str | None = None,
    labels: Mapping[str, str] | None = None,
    on_wait: WaitHook | None = None,
    on_env: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Recompute the tree digest of each selected env volume and compare with its marker.

    Holds the store lock shared, so ``gc`` cannot remove a volume while it is read.

    Args:
        engine: the engine.
        paths: host paths (for the store lock).
        wanted: env ids or volume names (prefixes allowed); None for every env volume.
        image: the image helper containers are created from (default: the foundation).
        labels: extra label filter (tests restrict themselves to their own volumes).
        on_wait: told when gc holds the store.
        on_env: told each volume name as its check starts.
    """
    checks: list[EnvCheck] = []
    with storelock.shared(paths, on_wait=on_wait):
        volumes = select_volumes(engine, wanted, labels)
        helper = image or (envstore.helper_image(engine) if volumes else "")
        for volume in volumes:
            if on_env is not None:
                on_env(str(volume["Name"]))
            checks.append(_check(engine, volume, helper, labels))
    return VerifyReport(tuple(checks))


def _check(engine: Engine, volume: Mapping[str, Any], image: str,
           labels: Mapping[str, str] | None) -> EnvCheck:
    name = str(volume["Name"])
    vol_labels = volume.get("Labels") or {}
    env_id = str(vol_labels.get("dev.aishell.env-id", ""))
    platform = str(vol_labels.get("dev.aishell.platform", ""))
    started = time.monotonic()
    marker = envstore.read_marker(engine, name, image=image, labels=labels)
    if marker is None or marker.env_id != env_id:
        return EnvCheck(env_id, name, platform, "incomplete", None, None, 0, 0,
                        time.monotonic() - started)
    digest = envstore.compute_digest(engine, name, image=image, labels=labels)
    status: Status = "ok" if marker.matches(digest) else "mismatch"
    return EnvCheck(env_id, name, platform, status, marker.tree_digest, digest.digest,
                    digest.files, digest.bytes, time.monotonic() - started)
