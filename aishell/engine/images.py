"""Images: inspect, build, tag, list, remove, and the engine's disk-usage report."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aishell.engine.client import START_HINT, Client, _closing, _translate
from aishell.engine.wire import socket_path
from aishell.errors import BuildFailed, EngineError, EngineUnavailable


class Images(Client):
    def image_inspect(self, ref: str) -> dict[str, Any] | None:
        """The image's inspect document, or None when the engine does not have it."""
        return self._inspect("image", f"/images/{quote(ref, safe='')}/json", ref)

    def image_exists(self, ref: str) -> bool:
        return self.image_inspect(ref) is not None

    def single_layer_dir(self, info: Mapping[str, Any]) -> Path | None:
        """The directory holding the content of a single-layer image, when this process
        can read it directly: a local engine whose overlay storage driver names the layer's
        directory in the inspect document (``GraphDriver.Data.UpperDir``, Docker and
        Podman alike). None for remote engines, other drivers, images of several layers,
        or a directory this process cannot read.
        """
        if socket_path(self.docker_host) is None:
            return None
        driver = info.get("GraphDriver") or {}
        layers = (info.get("RootFS") or {}).get("Layers") or []
        upper = str((driver.get("Data") or {}).get("UpperDir") or "")
        if driver.get("Name") not in ("overlay2", "overlay") or len(layers) != 1 or not upper:
            return None
        path = Path(upper)
        try:
            readable = path.is_absolute() and path.is_dir() and os.access(path, os.R_OK | os.X_OK)
        except OSError:
            return None
        return path if readable else None

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

    def system_df(self) -> dict[str, Any]:
        """Disk usage (``docker system df -v``): Images with Size/SharedSize, Volumes with
        UsageData.Size, Containers with their Mounts. The engine walks every volume to size
        it, so this takes a moment on a large store; only gc and ``store ls`` call it.

        Raises:
            EngineUnavailable: the engine does not answer.
            EngineError: any other failure.
        """
        import time  # noqa: PLC0415

        for wait in (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 0.0):
            status, data = self._get("/system/df", timeout=600.0)
            # The engine runs one disk-usage walk at a time and refuses a second one (HTTP
            # 500, "already running") while another user's gc or `docker system df` runs.
            if not (status == 500 and "already running" in str(data)) or not wait:
                break
            time.sleep(wait)
        if status != 200 or not isinstance(data, dict):
            raise EngineError(f"cannot read disk usage: HTTP {status} {data}")
        return data
