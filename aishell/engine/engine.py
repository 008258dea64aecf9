"""The engine handle: one object for images, containers and volumes."""

from __future__ import annotations

from aishell.engine.images import Images
from aishell.engine.networks import Networks
from aishell.engine.transfer import Transfer


class Engine(Images, Transfer, Networks):
    """A handle on one container engine (images, containers, volumes, networks).

    Args:
        docker_host: the engine address (default: ``DOCKER_HOST`` or the local socket).
        cli: the engine CLI used for TTY attachment (default: ``docker``, else ``podman``).
    """
