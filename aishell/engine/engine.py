"""The engine handle: one object for images, containers and volumes."""

from __future__ import annotations

from aishell.engine.images import Images
from aishell.engine.transfer import Transfer
from aishell.engine.volumes import Volumes


class Engine(Images, Transfer, Volumes):
    """A handle on one container engine (images, containers, volumes).

    Args:
        docker_host: the engine address (default: ``DOCKER_HOST`` or the local socket).
        cli: the engine CLI used for TTY attachment (default: ``docker``, else ``podman``).
    """
