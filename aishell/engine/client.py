"""The connection to one engine: fast HTTP over its Unix socket, the Docker SDK on demand.

Reads that sit on the launch path (does this image exist? what version is the engine?)
use a few lines of HTTP over the engine's Unix socket, because importing the Docker SDK
alone costs about 300 ms. The SDK is imported on first use, for builds and streams.
Engine answers become the typed exceptions of :mod:`aishell.errors`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aishell import inputs
from aishell.engine.wire import DEFAULT_SOCKET, unix_request
from aishell.engine.wire import socket_path as _socket_path
from aishell.errors import EngineConflict, EngineError, EngineNotFound, EngineUnavailable

START_HINT = (
    "start it (`sudo systemctl start docker`, or `bash scripts/provision.sh` from the "
    "aishell checkout), or point DOCKER_HOST at a running engine"
)


@dataclass(frozen=True)
class EngineInfo:
    version: str
    api_version: str
    os: str
    arch: str
    rootless: bool
    podman: bool
    storage_driver: str
    cgroup_version: str


PODMAN_ROOTFUL_SOCKET = "/run/podman/podman.sock"


def _podman_socket(environ: Mapping[str, str]) -> str:
    runtime = environ.get("XDG_RUNTIME_DIR")
    if os.getuid() != 0 and runtime and Path(runtime, "podman", "podman.sock").exists():
        return f"unix://{runtime}/podman/podman.sock"  # rootless podman
    return f"unix://{PODMAN_ROOTFUL_SOCKET}"


def _context_host(environ: Mapping[str, str]) -> str | None:
    """The endpoint of the current Docker context (DOCKER_CONTEXT or `docker context use`)."""
    config = Path(environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    inputs.note(config / "config.json")  # `docker context use` changes the engine of a plan
    name = environ.get("DOCKER_CONTEXT")
    if not name:
        try:
            name = json.loads((config / "config.json").read_text()).get("currentContext")
        except (OSError, ValueError, AttributeError):
            return None
    if not name or name == "default":
        return None
    import hashlib  # noqa: PLC0415 - only with a context set

    meta = config / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
    inputs.note(meta)
    try:
        host = json.loads(meta.read_text())["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineUnavailable(f"the Docker context `{name}` has no readable endpoint ({meta})",
                                hint="`docker context ls` lists the contexts") from exc
    return str(host)


def resolve_host(engine: str | None, environ: Mapping[str, str]) -> str | None:
    """The engine address: DOCKER_HOST; for `engine = "podman"` CONTAINER_HOST or podman's
    socket; else the current Docker context; else the local socket (None), falling back to
    podman's rootful socket when there is no Docker socket but that one exists."""
    if environ.get("DOCKER_HOST"):
        return environ["DOCKER_HOST"]
    if engine == "podman":
        return environ.get("CONTAINER_HOST") or _podman_socket(environ)
    host = _context_host(environ)
    if host:
        return host
    inputs.note(DEFAULT_SOCKET, PODMAN_ROOTFUL_SOCKET)
    if not Path(DEFAULT_SOCKET).exists() and Path(PODMAN_ROOTFUL_SOCKET).exists():
        return f"unix://{PODMAN_ROOTFUL_SOCKET}"
    return None


def _platform_arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


class Client:
    """A handle on one container engine: the socket, the SDK, the engine CLI.

    Args:
        docker_host: the engine address (default: ``DOCKER_HOST`` or the local socket).
        cli: the engine CLI used for TTY attachment (default: ``docker``, else ``podman``).
    """

    def __init__(self, docker_host: str | None = None, cli: str | None = None) -> None:
        self.docker_host = docker_host if docker_host is not None else resolve_host(cli, os.environ)
        self._cli = cli
        self._sdk: Any = None

    @property
    def cli(self) -> str:
        import shutil  # noqa: PLC0415 - only launches and builds need the engine CLI

        if self._cli is None:
            sock = _socket_path(self.docker_host) or ""
            # The podman CLI reaches the same engine only as the socket's own user (rootful
            # as root, rootless as you); anyone else attaches with the docker CLI, which
            # follows DOCKER_HOST to podman's API.
            own = (sock == PODMAN_ROOTFUL_SOCKET) == (os.getuid() == 0)
            if "/podman/" in sock and own and shutil.which("podman"):
                self._cli = "podman"
            else:
                self._cli = "docker" if shutil.which("docker") else (
                    "podman" if shutil.which("podman") else "docker"
                )
        return self._cli

    def _get(self, path: str, timeout: float = 10.0) -> tuple[int, Any]:
        return self._request("GET", path, timeout=timeout)

    def _request(self, method: str, path: str, timeout: float = 10.0,
                 raw: bool = False, payload: Any = None) -> tuple[int, Any]:
        sock = _socket_path(self.docker_host)
        if sock is None:
            return self._sdk_request(method, path, raw=raw, payload=payload)
        sent = None if payload is None else json.dumps(payload).encode()
        try:
            status, body = unix_request(sock, path, timeout, method=method, body=sent)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise EngineUnavailable(
                f"the container engine is not running (no answer on {sock})", hint=START_HINT
            ) from exc
        except PermissionError as exc:
            raise EngineUnavailable(
                f"permission denied on the engine socket {sock}",
                hint="add your user to the `docker` group (then log in again), or use rootless Docker",
            ) from exc
        except OSError as exc:
            raise EngineUnavailable(f"cannot talk to the engine on {sock}: {exc}",
                                    hint=START_HINT) from exc
        if raw:
            return status, body
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = body.decode("utf-8", "replace")
        return status, data

    def _sdk_request(self, method: str, path: str, raw: bool = False,
                     payload: Any = None) -> tuple[int, Any]:
        client = self.sdk()
        call = {"GET": client.api.get, "POST": client.api.post, "DELETE": client.api.delete}[method]
        kwargs = {} if payload is None else {"data": json.dumps(payload),
                                             "headers": {"Content-Type": "application/json"}}
        resp = call(client.api.base_url + path, **kwargs)
        if raw:
            return int(resp.status_code), resp.content
        try:
            data = resp.json()
        except ValueError:
            data = resp.text
        return int(resp.status_code), data

    def arch(self) -> str:
        """The engine's CPU architecture as a platform suffix (``amd64``, ``arm64``)."""
        if _socket_path(self.docker_host) is not None and not self.podman_machine():
            # A local engine runs on this very kernel: no round-trip needed (~10 ms).
            return _platform_arch(os.uname().machine)
        status, version = self._get("/version", timeout=5.0)
        if status != 200 or not isinstance(version, dict):
            raise EngineUnavailable(f"the engine answered /version with HTTP {status}",
                                    hint=START_HINT)
        return _platform_arch(str(version.get("Arch", "?")))

    def podman_machine(self) -> bool:
        """Whether the socket leads into a VM (podman machine, Docker Desktop), whose
        architecture may differ from this host's."""
        sock = _socket_path(self.docker_host) or ""
        return "/.docker/desktop/" in sock or "/podman/machine/" in sock

    def info(self) -> EngineInfo:
        """Engine version, API version, rootless/podman. Raises EngineUnavailable."""
        status, version = self._get("/version", timeout=5.0)
        if status != 200 or not isinstance(version, dict):
            raise EngineUnavailable(f"the engine answered /version with HTTP {status}",
                                    hint=START_HINT)
        _, info = self._get("/info", timeout=10.0)
        info = info if isinstance(info, dict) else {}
        components = [str(c.get("Name", "")) for c in version.get("Components") or []]
        sec = " ".join(info.get("SecurityOptions") or [])
        return EngineInfo(
            version=str(version.get("Version", "?")),
            api_version=str(version.get("ApiVersion", "?")),
            os=str(version.get("Os", "linux")),
            arch=_platform_arch(str(version.get("Arch", "?"))),
            rootless="rootless" in sec,
            podman=any("podman" in c.lower() for c in components),
            storage_driver=str(info.get("Driver", "?")),
            cgroup_version=str(info.get("CgroupVersion", "?")),
        )

    def _inspect(self, kind: str, path: str, ref: str) -> dict[str, Any] | None:
        """An object's inspect document over the socket, or None on 404."""
        status, data = self._get(path)
        if status == 404:
            return None
        if status != 200 or not isinstance(data, dict):
            raise EngineError(f"cannot inspect {kind} {ref}: HTTP {status} {data}")
        return data

    def sdk(self) -> Any:
        """The Docker SDK client, created on first use."""
        if self._sdk is None:
            import docker  # noqa: PLC0415 - 300 ms import, kept off the launch path
            import docker.errors  # noqa: PLC0415

            try:
                kwargs: dict[str, Any] = {"version": "auto"}
                if self.docker_host:
                    kwargs["base_url"] = self.docker_host
                    self._sdk = docker.DockerClient(**kwargs)
                else:
                    self._sdk = docker.from_env(version="auto")
            except docker.errors.DockerException as exc:
                raise EngineUnavailable(f"cannot reach the container engine: {exc}",
                                        hint=START_HINT) from exc
        return self._sdk

    def close(self) -> None:
        """Release the SDK's connections (if it was ever used)."""
        if self._sdk is not None:
            self._sdk.close()
            self._sdk = None


def _closing(stream: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Iterate a streamed engine response and close it even when the consumer stops early."""
    try:
        yield from stream
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def _check_status(status: int, data: object, what: str) -> None:
    if 200 <= status < 300:
        return
    if isinstance(data, bytes):
        with contextlib.suppress(ValueError):
            data = json.loads(data)
    message = data.get("message", data) if isinstance(data, dict) else data
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    raise _typed(status, f"{what}: {str(message).strip() or f'HTTP {status}'}")


def _translate(exc: Any, what: str) -> EngineError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    explanation = getattr(exc, "explanation", None) or str(exc)
    return _typed(status, f"{what}: {explanation}")


def _typed(status: int | None, text: str) -> EngineError:
    """The typed error for an engine answer: 404 not found, 409 conflict, else generic."""
    if status == 404:
        return EngineNotFound(text)
    if status == 409:
        return EngineConflict(text)
    return EngineError(text)
