"""The engine boundary: every conversation with Docker (or Podman) happens here.

The only package that talks to the engine; every stage above it is handed an
:class:`Engine`. Split by resource: :mod:`.client` (the socket, the SDK, errors),
:mod:`.images`, :mod:`.transfer` (import, push, pull), :mod:`.containers`,
:mod:`.volumes`. The engine CLI is used only where a real TTY must be attached
(:func:`aishell.request.cli_args`).

May import: the core only (``aishell.errors``, and ``aishell.request``, the vocabulary of
what to run).
"""

from __future__ import annotations

from aishell.engine.client import DEFAULT_SOCKET, START_HINT, EngineInfo
from aishell.engine.containers import LOG_LINES_KEPT, create_body, create_params
from aishell.engine.images import Images
from aishell.engine.transfer import Transfer
from aishell.engine.volumes import ARCHIVE_MOUNT, Volumes

__all__ = ["ARCHIVE_MOUNT", "DEFAULT_SOCKET", "LOG_LINES_KEPT", "START_HINT", "Engine",
           "EngineInfo", "create_body", "create_params"]


class Engine(Images, Transfer, Volumes):
    """A handle on one container engine (images, containers, volumes).

    Args:
        docker_host: the engine address (default: ``DOCKER_HOST`` or the local socket).
        cli: the engine CLI used for TTY attachment (default: ``docker``, else ``podman``).
    """
