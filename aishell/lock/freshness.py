"""Is ``aishell.lock`` still what ``aishell.toml`` asks for? (uv's rule, no network.)

Stale only when the harness set, a requested spec, the runtime range, the foundation
inputs or the platforms differ. A new upstream release never makes a lock stale.
"""

from __future__ import annotations

from pathlib import Path

from aishell import inputs
from aishell.errors import ConfigError
from aishell.lock import lockfile
from aishell.lock.foundation import Foundation
from aishell.lock.lockfile import Lock
from aishell.lock.manifest import Manifest
from aishell.project.config import read_toml


def read_lock(path: Path) -> Lock | None:
    """The lock at ``path`` (None when absent), checked for hand edits.

    Raises ConfigError with file:line for conflict markers, malformed content, a future
    format version, or an env id that no longer matches the content.
    """
    inputs.note(path)
    if not path.is_file():
        return None
    source = read_toml(path)
    lock = lockfile.parse(source)
    for platform in lock.platforms:
        recorded = lock.recorded_env_ids.get(platform)
        actual = lockfile.env_id(lock, platform)
        if recorded != actual:
            header = f'[env."{platform}"]'
            line = next((n for n, text in enumerate(source.text.splitlines(), 1)
                         if text.strip() == header), None)
            raise ConfigError(
                f"the env id for {platform} does not match the lock's content "
                "(edited by hand, or corrupted)",
                path=path, line=line,
                hint=lockfile.REBUILD_HINT,
            )
    return lock


def stale_reasons(manifest: Manifest, lock: Lock) -> list[str]:
    """Why ``lock`` does not answer ``manifest``; empty when it is fresh."""
    reasons: list[str] = []
    wanted = {h.name: h for h in manifest.harnesses}
    locked = {h.name: h for h in lock.harnesses}
    for name in sorted(set(wanted) - set(locked)):
        reasons.append(f"harness {name} is not locked yet")
    for name in sorted(set(locked) - set(wanted)):
        reasons.append(f"harness {name} was removed from aishell.toml")
    for name in sorted(set(wanted) & set(locked)):
        w, lk = wanted[name], locked[name]
        if w.package != lk.package:
            reasons.append(f"{name}: package changed ({lk.package} -> {w.package})")
        if w.requested != lk.requested:
            reasons.append(f"{name}: requested {lk.requested!r} -> {w.requested!r}")
        if w.bins != lk.wanted_bins:
            reasons.append(f"{name}: bin list changed")
        if w.network_install != lk.network_install:
            reasons.append(f"{name}: allow-network-install changed")
    if manifest.node != lock.node_requested:
        reasons.append(f"runtime node {lock.node_requested!r} -> {manifest.node!r}")
    if tuple(sorted(manifest.platforms)) != tuple(sorted(lock.platforms)):
        reasons.append(f"platforms {', '.join(lock.platforms)} -> {', '.join(manifest.platforms)}")
    foundation = Foundation.from_settings(base=manifest.base, extra_packages=manifest.packages)
    inputs = foundation.inputs()
    if manifest.base != lock.base:
        reasons.append(f"foundation base {lock.base} -> {manifest.base}")
    if tuple(manifest.packages) != tuple(lock.extra_packages):
        reasons.append("foundation packages changed")
    if inputs["template"] != lock.template or inputs["entrypoint"] != lock.entrypoint:
        reasons.append("the foundation template changed (a new aishell release)")
    return reasons
