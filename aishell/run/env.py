"""Which env volume a launch mounts at ``/tools``: the seam between `run` and `sync`."""

from __future__ import annotations

from aishell.errors import ConfigError
from aishell.lock.catalog import Harness
from aishell.project.context import Context


def resolve_env(ctx: Context, harness: Harness | None, *, locked: bool = False,
                frozen: bool = False, offline: bool = False,
                substituters: tuple[str, ...] = (), no_substitute: bool = False) -> str | None:
    """The env volume to mount read-only at ``/tools`` for ``harness`` (None: a shell).

    A project that locks harnesses is synced first (an implicit `aishell lock` when the
    manifest changed, unless ``locked``/``frozen``; a no-op when the env is complete) and
    its env volume is returned. A project with neither harnesses nor ``aishell.lock``
    has no env (None): its sandboxes run on the image alone, without touching the
    store. The launch calls this with the store lock held shared and creates the
    container before releasing it.

    Raises:
        ConfigError: ``harness`` is not among the project's locked harnesses.
    """
    harnesses = ctx.config.table("harnesses")
    if not harnesses and not frozen and not ctx.config.lock_path.is_file():
        return None
    if harness is not None and harnesses and harness.name not in harnesses:
        source = ctx.config.manifest
        raise ConfigError(
            f"harness `{harness.name}` is not in this project's aishell.toml (nor its lock)",
            path=source.path if source else ctx.config.manifest_path,
            line=source.line_of("harnesses") if source else None,
            hint=f"`aishell add {harness.name}` adds and locks it",
        )
    from aishell.store import sync  # noqa: PLC0415 - the resolver stays off other launches

    return sync.ensure_env(ctx, locked=locked, frozen=frozen, offline=offline,
                           substituters=substituters, no_substitute=no_substitute)
