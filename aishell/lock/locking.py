"""`aishell lock`, `add`, `remove`, `init` and `tree`: the manifest and its lock."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aishell import certs
from aishell.errors import AishellError, ConfigError, UsageError
from aishell.lock import lockfile
from aishell.lock.closure import installed, missing_optional
from aishell.lock.freshness import read_lock, stale_reasons
from aishell.lock.lockfile import Lock
from aishell.lock.manifest import Manifest, from_config
from aishell.project import config
from aishell.project.context import Context


@dataclass(frozen=True)
class Change:
    name: str
    old: str | None  # None: added
    new: str | None  # None: removed


@dataclass(frozen=True)
class LockResult:
    path: Path
    status: str  # "fresh" | "stale" | "missing" | "written" | "unchanged" | "dry-run"
    reasons: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()
    env_ids: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    requests: int = 0  # registry requests made
    warnings: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return 1 if self.status in ("stale", "missing") else 0


def manifest_of(ctx: Context) -> Manifest:
    return from_config(ctx.config)


def parse_upgrade_packages(items: Sequence[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for item in items:
        name, _, version = item.partition("@")
        if not name:
            raise UsageError(f"--upgrade-package {item!r}: expected NAME or NAME@VERSION")
        out[name] = version or None
    return out


def changes(old: Lock | None, new: Lock) -> tuple[Change, ...]:
    """What moved, by name: harnesses, Node.js, npm and every closure package."""
    def versions(lock: Lock | None) -> dict[str, str]:
        if lock is None:
            return {}
        out = {"node (runtime)": next(iter(lock.node.values())).version if lock.node else "?",
               "npm (runtime)": lock.npm.version}
        for h in lock.harnesses:
            out[h.name] = f"{h.package}@{h.version}"
            for p in h.packages:
                out[f"{h.name}: {p['path'].removeprefix('node_modules/')}"] = str(p.get("version"))
        return out

    before, after = versions(old), versions(new)
    return tuple(
        Change(k, before.get(k), after.get(k))
        for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)
    )


# The image npm resolves in (the foundation's tag, built when missing). The store builds
# images, so the caller hands this stage a function that returns one.
ImageFn = Callable[[], str]
# Records what install scripts download (aishell.store.fetch.recorder): (new lock,
# previous lock, manifest, on_status) -> (the lock with its fetches, warnings).
CaptureFn = Callable[[Lock, "Lock | None", Manifest, Callable[[str], None]],
                     tuple[Lock, list[str]]]


def _environment(ctx: Context, manifest: Manifest, on_status: Callable[[str], None],
                 image: ImageFn | None) -> Any:
    # Imported here: `lock --check` and a fresh re-lock never need the resolver's imports.
    from aishell.lock.registry import Registry, registry_url  # noqa: PLC0415
    from aishell.lock.resolver import Environment  # noqa: PLC0415

    if image is None:
        raise ValueError("resolving runs npm in a container: the caller must pass `image`")

    bundle = certs.find_bundle(ctx.config.table("settings").get("ca_bundle"))
    return Environment(
        registry=Registry(registry_url(manifest.registry), ca_bundle=bundle),
        cache=ctx.paths.cache,
        engine=lambda: ctx.engine,
        image=image,
        ca_bundle=bundle,
        on_status=on_status,
    )


def lock(ctx: Context, *, check: bool = False, upgrade: bool = False,
         upgrade_packages: Sequence[str] = (), dry_run: bool = False,
         on_status: Callable[[str], None] = lambda _m: None,
         image: ImageFn | None = None, capture: CaptureFn | None = None) -> LockResult:
    started = time.monotonic()
    manifest = manifest_of(ctx)
    path = ctx.config.lock_path
    warnings: list[str] = []
    try:
        previous = read_lock(path)
    except lockfile.LockTooNew:
        raise
    except ConfigError as exc:
        if check:
            raise
        # uv's rule: a lock that cannot be read is rebuilt, not a wall. Nothing of it is
        # reused, so every harness resolves afresh.
        warnings.append(f"{exc.message}; rebuilding it from aishell.toml")
        on_status(f"{path} cannot be read: rebuilding it from aishell.toml")
        previous = None
    if check:
        if previous is None:
            return LockResult(path, "missing", ("aishell.lock does not exist",))
        reasons = stale_reasons(manifest, previous)
        return LockResult(path, "stale" if reasons else "fresh", tuple(reasons),
                          env_ids=previous.env_ids(), seconds=time.monotonic() - started)
    wanted = parse_upgrade_packages(upgrade_packages)
    requests = 0
    if previous is not None and not upgrade and not wanted and not stale_reasons(manifest, previous):
        new = previous  # fresh: nothing to resolve, only re-written canonically
    else:
        from aishell.lock.resolver import Options, resolve  # noqa: PLC0415

        env = _environment(ctx, manifest, on_status, image)
        new = resolve(manifest, previous, env, Options(upgrade=upgrade, upgrade_packages=wanted))
        requests = env.registry.requests
        if capture is not None:
            new, recorded = capture(new, previous, manifest, on_status)
            warnings += recorded
    moved = changes(previous, new)
    for h in new.harnesses:
        if missing := missing_optional(h.packages):
            missing.sort(key=lambda d: ("linux" not in d, d))
            shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
            warnings.append(f"{h.name}: the registry lacks {len(missing)} optional dependenc"
                            f"{'y' if len(missing) == 1 else 'ies'} of {h.package}@{h.version} "
                            f"({shown}); a platform may miss its native package")
    status = "dry-run" if dry_run else "written" if lockfile.write(path, new) else "unchanged"
    return LockResult(path, status, (), moved, new.env_ids(), time.monotonic() - started,
                      requests, tuple(warnings))


# -- editing the manifest ----------------------------------------------------------------

@dataclass(frozen=True)
class EditResult:
    manifest: Path
    names: tuple[str, ...]
    lock: LockResult | None


def _transaction(ctx: Context, new_text: str, *, relock: bool,
                 on_status: Callable[[str], None], image: ImageFn | None = None,
                 capture: CaptureFn | None = None) -> LockResult | None:
    """Write the manifest, re-lock; on failure put the old manifest back (uv add does too)."""
    path = ctx.project / config.MANIFEST
    old_text = path.read_text(encoding="utf-8") if path.exists() else None
    path.write_text(new_text, encoding="utf-8")
    fresh = Context(project=ctx.project, paths=ctx.paths, verbose=ctx.verbose, quiet=ctx.quiet,
                    color=ctx.color, json=ctx.json)
    try:
        manifest_of(fresh)  # validate before anything else
        return lock(fresh, on_status=on_status, image=image, capture=capture) if relock else None
    except BaseException as exc:
        if old_text is None:
            path.unlink()
        else:
            path.write_text(old_text, encoding="utf-8")
        located = re.compile(re.escape(f"{path}:") + r"\d+: ")
        if isinstance(exc, AishellError) and located.match(exc.message):
            # The line was in the edit just rolled back: it no longer exists in the file.
            exc.message = located.sub("", exc.message, count=1) + \
                f" ({path.name} was left unchanged)"
        raise


def add(ctx: Context, specs: Sequence[str], *, relock: bool = True,
        on_status: Callable[[str], None] = lambda _m: None,
        image: ImageFn | None = None, capture: CaptureFn | None = None) -> EditResult:
    from aishell.lock import edit as manifest_edit  # noqa: PLC0415

    if not specs:
        raise UsageError("nothing to add", hint="aishell add claude codex@^0.169 npm:@acme/agent")
    additions = [manifest_edit.parse_spec(s) for s in specs]
    path = ctx.project / config.MANIFEST
    text = path.read_text(encoding="utf-8") if path.exists() else manifest_edit.starter([])
    result = _transaction(ctx, manifest_edit.add(text, additions), relock=relock,
                          on_status=on_status, image=image, capture=capture)
    return EditResult(path, tuple(a.name for a in additions), result)


def remove(ctx: Context, names: Sequence[str], *, relock: bool = True,
           on_status: Callable[[str], None] = lambda _m: None,
        image: ImageFn | None = None, capture: CaptureFn | None = None) -> EditResult:
    from aishell.lock import edit as manifest_edit  # noqa: PLC0415

    path = ctx.project / config.MANIFEST
    if not path.exists():
        raise AishellError(f"no aishell.toml in {ctx.project}", hint="aishell init")
    if not names:
        raise UsageError("nothing to remove", hint="aishell remove NAME…")
    text = manifest_edit.remove(path.read_text(encoding="utf-8"), list(names))
    return EditResult(path, tuple(names), _transaction(ctx, text, relock=relock,
                                                       on_status=on_status, image=image, capture=capture))


def init(ctx: Context, harnesses: Sequence[str]) -> EditResult:
    from aishell.lock import edit as manifest_edit  # noqa: PLC0415

    path = ctx.project / config.MANIFEST
    if path.exists():
        raise AishellError(f"{path} already exists", hint="edit it, or use `aishell add`")
    additions = [manifest_edit.parse_spec(s) for s in harnesses]
    _transaction(ctx, manifest_edit.starter(additions), relock=False, on_status=lambda _m: None)
    return EditResult(path, tuple(a.name for a in additions), None)


# -- tree ------------------------------------------------------------------------------

def tree(ctx: Context) -> dict[str, Any]:
    """The locked closure per harness (the `--json` payload; people get a rendering of it)."""
    path = ctx.config.lock_path
    locked = read_lock(path)
    if locked is None:
        raise AishellError(f"no aishell.lock in {ctx.project}", hint="run `aishell lock`")
    return {
        "lock": str(path),
        "platforms": list(locked.platforms),
        "env_ids": locked.env_ids(),
        "runtime": {
            "node": {p: {"version": a.version, "integrity": a.integrity}
                     for p, a in sorted(locked.node.items())},
            "npm": {"version": locked.npm.version, "integrity": locked.npm.integrity},
        },
        "harnesses": [_tree_harness(h, locked.platforms) for h in locked.harnesses],
    }


def _tree_harness(h: lockfile.LockedHarness, platforms: Sequence[str]) -> dict[str, Any]:
    where = {pl: {p["path"] for p in installed(h.packages, h.package, pl)} for pl in platforms}
    return {
        "name": h.name, "package": h.package, "version": h.version,
        "requested": h.requested, "bins": list(h.bins),
        "packages": [
            {"path": p["path"], "version": p.get("version"), "integrity": p.get("integrity"),
             "platforms": [pl for pl in platforms if p["path"] in where[pl]]}
            for p in h.packages
        ],
    }
