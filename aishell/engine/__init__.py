"""The engine boundary: every conversation with Docker (or Podman) happens here.

The only package that talks to the engine; every stage above it is handed an
:class:`Engine`. Split by resource: :mod:`.client` (the socket, the SDK, errors),
:mod:`.images`, :mod:`.transfer` (import, push, pull), :mod:`.containers`, :mod:`.volumes`,
and :mod:`.wire`, the bare socket request a launch from a cached plan uses. The engine
CLI is used only where a real TTY must be attached (:func:`aishell.request.cli_args`).

May import: the core only (``aishell.errors``, and ``aishell.request``, the vocabulary of
what to run).

The names below are loaded on first use, so that importing :mod:`aishell.engine.wire`
costs only ``socket``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from typing import Any

    from aishell.engine.client import START_HINT, EngineInfo
    from aishell.engine.containers import LOG_LINES_KEPT, create_body, create_params
    from aishell.engine.engine import Engine
    from aishell.engine.volumes import ARCHIVE_MOUNT
    from aishell.engine.wire import DEFAULT_SOCKET

__all__ = ["ARCHIVE_MOUNT", "DEFAULT_SOCKET", "LOG_LINES_KEPT", "START_HINT", "Engine",
           "EngineInfo", "create_body", "create_params"]

_HOMES = {
    "ARCHIVE_MOUNT": "volumes", "DEFAULT_SOCKET": "wire", "LOG_LINES_KEPT": "containers",
    "START_HINT": "client", "Engine": "engine", "EngineInfo": "client",
    "create_body": "containers", "create_params": "containers",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'aishell.engine' has no attribute {name!r}")
    from importlib import import_module  # noqa: PLC0415

    return getattr(import_module(f"aishell.engine.{home}"), name)
