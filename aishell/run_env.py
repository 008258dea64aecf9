"""Which env volume a launch mounts at ``/tools``: the seam between `run` and `sync`."""

from __future__ import annotations

from aishell.catalog import Harness
from aishell.context import Context


def resolve_env(ctx: Context, harness: Harness | None) -> str | None:
    """The env volume to mount read-only at ``/tools`` for ``harness`` (None: a shell).

    `aishell sync` fills this in: it makes sure the project's locked env exists with a
    valid completion marker and returns its volume name. Until a project has an env,
    sandboxes run without ``/tools`` (the foundation image alone). The launch calls it
    with the store lock held shared and creates the container before releasing it.
    """
    del ctx, harness
    return None
