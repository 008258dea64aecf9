"""The engine boundary: every conversation with Docker (or Podman) happens here.

Reads that sit on the launch path (does this image exist? what version is the
engine?) use a few lines of HTTP over the engine's Unix socket, because importing the
Docker SDK alone costs about 300 ms. Everything else — builds, volumes, containers,
labels — goes through the Docker SDK, imported on first use. The engine CLI is used
only where a real TTY must be attached (:func:`aishell.request.cli_args`).

Engine errors become the typed exceptions of :mod:`aishell.errors`.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import posixpath
import shutil
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

from aishell.errors import (
    BuildFailed,
    EngineConflict,
    EngineError,
    EngineNotFound,
    EngineUnavailable,
)

if TYPE_CHECKING:
    from aishell.request import ContainerRequest

DEFAULT_SOCKET = "/var/run/docker.sock"
ARCHIVE_MOUNT = "/aishell-volume"  # where a helper container mounts a volume to archive it
LOG_LINES_KEPT = 5000
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


def _unix_request(sock_path: str, path: str, timeout: float,
                  method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    """One HTTP/1.0 request over a Unix socket: the server closes when done, so no chunking.

    http.client would do, but it drags in the email package (~10 ms) on the launch path.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(sock_path)
        request = f"{method} {path} HTTP/1.0\r\nHost: docker\r\n"
        if body is not None:
            request += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        sock.sendall((request + "\r\n").encode() + (body or b""))
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise OSError(f"malformed engine response: {head[:80]!r}")
    return int(status_line[1]), body


def _socket_path(docker_host: str | None) -> str | None:
    """The Unix socket to talk to, or None when DOCKER_HOST is not a Unix socket."""
    if not docker_host:
        return DEFAULT_SOCKET
    parsed = urlparse(docker_host)
    if parsed.scheme == "unix":
        return parsed.path
    return None


def _platform_arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


class Engine:
    """A handle on one container engine.

    Args:
        docker_host: the engine address (default: ``DOCKER_HOST`` or the local socket).
        cli: the engine CLI used for TTY attachment (default: ``docker``, else ``podman``).
    """

    def __init__(self, docker_host: str | None = None, cli: str | None = None) -> None:
        self.docker_host = docker_host if docker_host is not None else os.environ.get(
            "DOCKER_HOST"
        )
        self._cli = cli
        self._sdk: Any = None

    # -- the engine CLI -----------------------------------------------------------
    @property
    def cli(self) -> str:
        if self._cli is None:
            self._cli = "docker" if shutil.which("docker") else (
                "podman" if shutil.which("podman") else "docker"
            )
        return self._cli

    # -- fast reads over the socket --------------------------------------------
    def _get(self, path: str, timeout: float = 10.0) -> tuple[int, Any]:
        return self._request("GET", path, timeout=timeout)

    def _request(self, method: str, path: str, timeout: float = 10.0,
                 raw: bool = False, payload: Any = None) -> tuple[int, Any]:
        sock = _socket_path(self.docker_host)
        if sock is None:
            return self._sdk_request(method, path, raw=raw, payload=payload)
        sent = None if payload is None else json.dumps(payload).encode()
        try:
            status, body = _unix_request(sock, path, timeout, method=method, body=sent)
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

    def create_sandbox(self, req: ContainerRequest, environ: Mapping[str, str]) -> str:
        """Create (not start) the container ``req`` describes through the API; its id.

        One request over the socket instead of an engine CLI process (~30 ms less per
        launch). Values of variables travel in the request body, never in a command line.

        Raises:
            ValueError: ``req`` has engine CLI arguments (``extra_args``) the API cannot take.
            EngineNotFound: the image is missing (aishell never pulls).
            EngineConflict: a container with ``req.name`` exists.
        """
        query = f"?name={quote(req.name)}" if req.name else ""
        status, data = self._request("POST", f"/containers/create{query}",
                                     payload=create_body(req, environ))
        _check_status(status, data, f"creating the sandbox {req.name or ''} from {req.image}")
        return str(data["Id"])

    def start_container(self, ref: str) -> None:
        status, data = self._request("POST", f"/containers/{quote(ref, safe='')}/start")
        _check_status(status, data, f"starting {ref}")

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

    def image_inspect(self, ref: str) -> dict[str, Any] | None:
        """The image's inspect document, or None when the engine does not have it."""
        return self._inspect("image", f"/images/{quote(ref, safe='')}/json", ref)

    def image_exists(self, ref: str) -> bool:
        return self.image_inspect(ref) is not None

    # -- the SDK ------------------------------------------------------------------
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

    def build_image(
        self,
        context: Path,
        *,
        tag: str,
        labels: Mapping[str, str],
        dockerfile: str = "Dockerfile",
        buildargs: Mapping[str, str] | None = None,
        on_line: Callable[[str], None] | None = None,
        network_mode: str | None = None,
    ) -> str:
        """Build ``context``/Dockerfile as ``tag`` and return the image id.

        Args:
            context: directory holding the Dockerfile and its build context.
            tag: the tag to give the image.
            dockerfile: the Dockerfile's path relative to ``context``.
            labels: labels stamped on the image.
            buildargs: build arguments (proxy variables go here).
            on_line: called with every line of build output.
            network_mode: network for RUN steps (``host`` to reach loopback services).

        Raises:
            BuildFailed: a step failed; ``log`` holds that step's output.
            EngineUnavailable: the engine does not answer.
        """
        import docker.errors  # noqa: PLC0415

        api = self.sdk().api
        step_log: list[str] = []
        image_id = ""
        try:
            stream: Iterator[dict[str, Any]] = api.build(
                path=str(context),
                dockerfile=dockerfile,
                tag=tag,
                labels=dict(labels),
                buildargs=dict(buildargs or {}),
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
                network_mode=network_mode,
            )
            for chunk in _closing(stream):
                if "error" in chunk:
                    detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                    raise BuildFailed(
                        f"building {tag} failed: {str(detail).strip().splitlines()[-1]}",
                        log="".join(step_log),
                        hint="the log of the failing step is shown above; fix it and run again",
                    )
                text = chunk.get("stream")
                if text:
                    if text.startswith("Step "):
                        step_log = []
                    step_log.append(text)
                    if on_line:
                        for line in text.splitlines():
                            if line.strip():
                                on_line(line)
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "ID" in aux:
                    image_id = str(aux["ID"])
        except docker.errors.APIError as exc:
            raise _translate(exc, f"building {tag}") from exc
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"building {tag}: {exc}", hint=START_HINT) from exc
        if not image_id:
            data = self.image_inspect(tag)
            if data is None:
                raise BuildFailed(f"building {tag} produced no image", log="".join(step_log))
            image_id = str(data["Id"])
        return image_id

    def remove_image(self, ref: str, *, force: bool = False) -> None:
        import docker.errors  # noqa: PLC0415

        try:
            self.sdk().api.remove_image(ref, force=force, noprune=False)
        except docker.errors.APIError as exc:
            raise _translate(exc, f"removing image {ref}") from exc

    def tag_image(self, image: str, repository: str, tag: str) -> None:
        import docker.errors  # noqa: PLC0415

        try:
            self.sdk().api.tag(image, repository, tag)
        except docker.errors.APIError as exc:
            raise _translate(exc, f"tagging {image}") from exc

    def list_images(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        filters = [f"{k}={v}" if v else k for k, v in labels.items()]
        status, data = self._get("/images/json?filters=" + quote(json.dumps({"label": filters})))
        if status != 200 or not isinstance(data, list):
            raise EngineError(f"cannot list images: HTTP {status}")
        return data

    def list_containers(self, labels: Mapping[str, str], *, all: bool = True) -> list[dict[str, Any]]:
        filters = [f"{k}={v}" if v else k for k, v in labels.items()]
        query = "filters=" + quote(json.dumps({"label": filters}))
        status, data = self._get(f"/containers/json?all={int(all)}&{query}")
        if status != 200 or not isinstance(data, list):
            raise EngineError(f"cannot list containers: HTTP {status}")
        return data

    def container_inspect(self, ref: str) -> dict[str, Any] | None:
        """The container's inspect document, or None when there is no such container."""
        return self._inspect("container", f"/containers/{quote(ref, safe='')}/json", ref)

    def system_df(self) -> dict[str, Any]:
        """Disk usage (``docker system df -v``): Images with Size/SharedSize, Volumes with
        UsageData.Size, Containers with their Mounts. The engine walks every volume to size
        it, so this takes a moment on a large store; only gc and ``store ls`` call it.

        Raises:
            EngineUnavailable: the engine does not answer.
            EngineError: any other failure.
        """
        status, data = self._get("/system/df", timeout=600.0)
        if status != 200 or not isinstance(data, dict):
            raise EngineError(f"cannot read disk usage: HTTP {status} {data}")
        return data

    def remove_container(self, ref: str, *, force: bool = True) -> None:
        """Remove ``ref`` (killing it first when ``force``); anonymous volumes are kept.

        Raises:
            EngineNotFound: there is no such container.
            EngineConflict: it is running and ``force`` is false, or removal is in progress.
        """
        status, data = self._request(
            "DELETE", f"/containers/{quote(ref, safe='')}?force={int(force)}&v=0", timeout=60.0
        )
        _check_status(status, data, f"removing container {ref}")

    def stop_container(self, ref: str, *, timeout: int = 10) -> None:
        """Stop ``ref`` (SIGTERM, then SIGKILL after ``timeout`` seconds); stopped is fine.

        Raises:
            EngineNotFound: there is no such container.
        """
        status, data = self._request(
            "POST", f"/containers/{quote(ref, safe='')}/stop?t={timeout}", timeout=timeout + 30.0
        )
        if status == 304:  # already stopped
            return
        _check_status(status, data, f"stopping container {ref}")

    def read_file(self, container: str, path: str) -> bytes | None:
        """The content of regular file ``path`` inside ``container``, None when missing.

        Uses the archive endpoint: nothing is started in the container.
        """
        status, body = self._request(
            "GET", f"/containers/{quote(container, safe='')}/archive?path={quote(path)}",
            raw=True,
        )
        if status == 404:
            return None
        _check_status(status, body, f"reading {path} in {container}")
        import io  # noqa: PLC0415 - only `ps` reads files
        import tarfile  # noqa: PLC0415

        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            for member in tar:
                if member.isfile():
                    handle = tar.extractfile(member)
                    return handle.read() if handle is not None else None
        return None


    # -- volumes ------------------------------------------------------------------
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

    # -- one-off containers ----------------------------------------------------------
    def create_container(self, req: ContainerRequest) -> str:
        """Create (not start) a container for ``req`` and return its id.

        Raises:
            EngineNotFound: the image is missing (aishell never pulls).
            EngineConflict: a container with ``req.name`` exists.
        """
        import docker.errors  # noqa: PLC0415

        try:
            created = self.sdk().api.create_container(**create_params(req, os.environ))
        except docker.errors.APIError as exc:
            raise _translate(exc, f"creating a container from {req.image}") from exc
        return str(created["Id"])

    def run_to_completion(
        self,
        req: ContainerRequest,
        *,
        timeout: float | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> tuple[int, str]:
        """Run ``req`` in a new container until it exits; return (exit code, output).

        The container is removed afterwards, whatever happens (also on Ctrl-C). A process
        killed while this runs leaves the container behind: label it, so the next run can
        find and remove it.

        Args:
            req: what to run; ``ports``, ``tty`` and ``extra_args`` are not supported here.
            timeout: seconds before the container is killed and EngineError raised.
            on_line: called with every output line (stdout and stderr) as it comes.

        Returns:
            The exit code and the output (stdout and stderr interleaved; the last
            :data:`LOG_LINES_KEPT` lines).

        Raises:
            EngineNotFound: the image is missing.
            EngineError: the timeout passed, or the engine failed.
        """
        import threading  # noqa: PLC0415 - kept off the launch path

        import docker.errors  # noqa: PLC0415

        api = self.sdk().api
        container = self.create_container(req)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(docker.errors.APIError):
                api.kill(container)

        timer = threading.Timer(timeout, kill) if timeout else None
        lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
        try:
            api.start(container)
            if timer is not None:
                timer.daemon = True
                timer.start()
            streamed = 0
            partial = ""
            for chunk in api.logs(container, stream=True, follow=True):
                partial += chunk.decode("utf-8", "replace")
                *complete, partial = partial.split("\n")
                for line in complete:
                    streamed += 1
                    if on_line is not None:
                        on_line(line)
            code = int(api.wait(container)["StatusCode"])
            # A follow stream can end before the engine has copied the last output of a
            # container that just exited; once `wait` returned, the full log is complete.
            final = api.logs(container, stdout=True, stderr=True).decode("utf-8", "replace")
            all_lines = final.split("\n")
            if all_lines and all_lines[-1] == "":
                all_lines.pop()
            if on_line is not None:
                for line in all_lines[streamed:]:
                    on_line(line)
            lines.extend(all_lines)
        except docker.errors.APIError as exc:
            raise _translate(exc, f"running a container from {req.image}") from exc
        finally:
            if timer is not None:
                timer.cancel()
            with contextlib.suppress(docker.errors.APIError):
                api.remove_container(container, force=True, v=False)
        if timed_out.is_set():
            raise EngineError(f"{' '.join(req.command) or req.image} did not finish within "
                              f"{timeout:g} s and was stopped")
        return code, "\n".join(lines)

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


def _api_env(req: ContainerRequest, environ: Mapping[str, str]) -> dict[str, str]:
    """Every variable with its value; names passed through take the host's (when set)."""
    env = {n: environ[n] for n in req.env_passthrough if n in environ}
    env.update(req.env)
    return env


def _api_mounts(req: ContainerRequest) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = []
    for m in req.mounts:
        mount: dict[str, Any] = {"Type": m.kind, "Source": m.source, "Target": m.target,
                                 "ReadOnly": m.read_only}
        if m.kind == "volume" and m.no_copy:
            mount["VolumeOptions"] = {"NoCopy": True}
        mounts.append(mount)
    return mounts


def create_body(req: ContainerRequest, environ: Mapping[str, str]) -> dict[str, Any]:
    """The Docker API ``POST /containers/create`` body for ``req`` (pure), as the engine
    CLI would send it for ``docker create`` with the same arguments."""
    if req.extra_args:
        raise ValueError("engine CLI arguments (docker_args) need the engine CLI")
    env = _api_env(req, environ)
    host: dict[str, Any] = {"Mounts": _api_mounts(req), "Init": req.init,
                            "AutoRemove": req.remove}
    if req.network:
        host["NetworkMode"] = req.network
    if req.security_opts:
        host["SecurityOpt"] = list(req.security_opts)
    exposed: dict[str, Any] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in req.ports:
        key = f"{port.container_port}/{port.protocol}"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": port.host_ip, "HostPort": port.host_port})
    if bindings:
        host["PortBindings"] = bindings
    attach_stdin = req.interactive and not req.detach
    body: dict[str, Any] = {
        "Image": req.image,
        "Cmd": list(req.command) or None,
        "Env": [f"{k}={v}" for k, v in sorted(env.items())],
        "Labels": dict(req.labels),
        "WorkingDir": req.workdir or "",
        "Hostname": req.hostname or "",
        "Tty": req.tty,
        "OpenStdin": req.interactive,
        "StdinOnce": attach_stdin,
        "AttachStdin": attach_stdin,
        "AttachStdout": not req.detach,
        "AttachStderr": not req.detach,
        "ExposedPorts": exposed,
        "HostConfig": host,
    }
    if req.entrypoint is not None:
        body["Entrypoint"] = list(req.entrypoint)
    return body


def create_params(req: ContainerRequest, environ: Mapping[str, str]) -> dict[str, Any]:
    """The Docker API ``create_container`` arguments for ``req`` (pure).

    Variables passed through by name take their values from ``environ``; they travel in
    the API request body, never in a command line.
    """
    unsupported = [name for name, value in (("ports", req.ports), ("extra_args", req.extra_args),
                                            ("tty", req.tty), ("detach", req.detach)) if value]
    if unsupported:
        raise ValueError(f"one-off containers do not support {', '.join(unsupported)}")
    env = _api_env(req, environ)
    host_config: dict[str, Any] = {"Mounts": _api_mounts(req), "Init": req.init}
    if req.network:
        host_config["NetworkMode"] = req.network
    if req.security_opts:
        host_config["SecurityOpt"] = list(req.security_opts)
    params: dict[str, Any] = {
        "image": req.image,
        "command": list(req.command) or None,
        "name": req.name,
        "working_dir": req.workdir,
        "environment": [f"{k}={v}" for k, v in sorted(env.items())],
        "labels": dict(req.labels),
        "hostname": req.hostname,
        "host_config": host_config,
        "use_config_proxy": False,
        "stdin_open": False,
        "tty": False,
    }
    if req.entrypoint is not None:
        params["entrypoint"] = list(req.entrypoint)
    return params
