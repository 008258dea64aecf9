"""Volumes: inspect, list, create, remove, and a read-only tar stream of one."""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aishell.engine.client import _translate
from aishell.engine.containers import Containers
from aishell.engine.wire import socket_path as _socket_path
from aishell.errors import EngineError, EngineNotFound

ARCHIVE_MOUNT = "/aishell-volume"  # where a helper container mounts a volume to archive it


class Volumes(Containers):
    def volume_inspect(self, name: str) -> dict[str, Any] | None:
        """The volume's inspect document (Name, Labels, CreatedAt, …), or None when absent.

        A fast read over the socket: sync and launches call it on every run.

        Raises:
            EngineUnavailable: the engine does not answer.
            EngineError: any other answer than the document or 404.
        """
        return self._inspect("volume", f"/volumes/{quote(name, safe='')}", name)

    def volume_host_path(self, name: str) -> Path | None:
        """The volume's directory when this process can read it directly, else None.

        True for a local engine (Unix socket) with the ``local`` driver when the
        directory exists here and is readable (root, or rootless engines); None for
        remote and VM-based engines (Docker Desktop), where only
        :meth:`volume_archive` can read a volume.
        """
        if _socket_path(self.docker_host) is None:
            return None
        info = self.volume_inspect(name)
        if info is None or info.get("Driver") != "local" or info.get("Options"):
            return None
        mountpoint = Path(str(info.get("Mountpoint") or ""))
        if not mountpoint.is_absolute():
            return None
        try:
            readable = mountpoint.is_dir() and os.access(mountpoint, os.R_OK | os.X_OK)
        except OSError:
            return None
        return mountpoint if readable else None

    def list_volumes(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every volume carrying all of ``labels`` (an empty value matches any value).

        Raises:
            EngineUnavailable: the engine does not answer.
        """
        filters = [f"{k}={v}" if v else k for k, v in labels.items()]
        status, data = self._get("/volumes?filters=" + quote(json.dumps({"label": filters})))
        if status != 200 or not isinstance(data, dict):
            raise EngineError(f"cannot list volumes: HTTP {status}")
        return list(data.get("Volumes") or [])

    def create_volume(self, name: str, labels: Mapping[str, str]) -> dict[str, Any]:
        """Create the local volume ``name`` with ``labels`` and return its inspect document.

        The engine answers a create of an existing name with the existing volume, labels
        unchanged; callers that need a fresh volume remove the old one first.

        Raises:
            EngineUnavailable: the engine does not answer.
            EngineError: the engine refused (bad name, driver error).
        """
        import docker.errors  # noqa: PLC0415

        try:
            data = self.sdk().api.create_volume(name=name, driver="local", labels=dict(labels))
        except docker.errors.APIError as exc:
            raise _translate(exc, f"creating volume {name}") from exc
        return dict(data)

    def remove_volume(self, name: str, *, missing_ok: bool = True) -> None:
        """Remove the volume ``name``.

        Args:
            name: the volume.
            missing_ok: an absent volume is not an error.

        Raises:
            EngineConflict: a container (running or stopped) still uses the volume.
            EngineNotFound: the volume does not exist and ``missing_ok`` is false.
        """
        import docker.errors  # noqa: PLC0415

        try:
            self.sdk().api.remove_volume(name, force=False)
        except docker.errors.APIError as exc:
            error = _translate(exc, f"removing volume {name}")
            if isinstance(error, EngineNotFound) and missing_ok:
                return
            raise error from exc

    @contextlib.contextmanager
    def volume_archive(
        self, volume: str, *, image: str, labels: Mapping[str, str] | None = None,
        path: str = "",
    ) -> Iterator[tuple[Iterator[bytes], str]]:
        """Stream a tar of ``path`` inside ``volume``, read-only, through a helper container.

        The helper container is created (never started, no network) from ``image`` with
        the volume mounted read-only, the engine's archive endpoint streams the tree, and
        the container is removed on exit from the ``with`` block. It is labelled
        ``dev.aishell.kind=helper`` and ``dev.aishell.volume=<volume>``, so one left by a
        killed process can be found (it would keep the volume from being removed). This works with remote
        engines and needs no access to the engine's data directory.

        Args:
            volume: the volume name.
            image: any local image (the foundation image); it is not run.
            labels: extra labels for the helper container.
            path: a path relative to the volume root (default: the whole volume).

        Yields:
            The archive as an iterator of byte chunks, and the name of the tree's root
            inside it (members are ``root``, ``root/...``).

        Raises:
            EngineNotFound: the image, the volume or ``path`` does not exist.
        """
        import uuid  # noqa: PLC0415 - kept off the launch path

        import docker.errors  # noqa: PLC0415

        from aishell.request import ContainerRequest, Mount  # noqa: PLC0415

        if self.volume_inspect(volume) is None:
            # The engine would silently create it at mount time.
            raise EngineNotFound(f"volume {volume} does not exist")
        target = posixpath.normpath(posixpath.join(ARCHIVE_MOUNT, path.strip("/")))
        if target != ARCHIVE_MOUNT and not target.startswith(ARCHIVE_MOUNT + "/"):
            raise ValueError(f"path {path!r} leaves the volume")
        req = ContainerRequest(
            image=image,
            command=("true",),
            name=f"aishell-helper-{uuid.uuid4().hex[:12]}",
            mounts=(Mount(volume, ARCHIVE_MOUNT, read_only=True, kind="volume", no_copy=True),),
            labels={"dev.aishell.managed": "1", "dev.aishell.kind": "helper",
                    "dev.aishell.volume": volume, **(labels or {})},
            network="none",
            init=False,
            interactive=False,
            entrypoint=("true",),
        )
        api = self.sdk().api
        container = self.create_container(req)
        try:
            try:
                chunks, _stat = api.get_archive(container, target)
            except docker.errors.APIError as exc:
                raise _translate(exc, f"reading {path or '/'} in volume {volume}") from exc
            yield chunks, posixpath.basename(target)
        finally:
            with contextlib.suppress(docker.errors.APIError):
                api.remove_container(container, force=True, v=False)
