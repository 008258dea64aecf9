"""Images in and out of the engine: import a tar as an image, push and pull by reference.

Push and pull are the engine's own (``POST /images/{name}/push``, ``POST /images/create``),
so its mirrors, proxies and insecure-registry settings apply. Credentials: the engine API
takes them per request in ``X-Registry-Auth``; the Docker SDK fills that header from the
user's docker config (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``):
``auths`` entries, ``credsStore`` and ``credHelpers`` — the lookup the docker CLI does —
so a ``docker login`` applies here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from aishell.engine.client import START_HINT, Client, _closing, _translate, _typed
from aishell.errors import EngineError, EngineNotFound, EngineUnavailable

Progress = Callable[[str], None]

# What a registry answers when the reference has no manifest (distribution, Docker Hub,
# GHCR, Harbor word it differently).
_MISSING = ("manifest unknown", "not found", "name unknown", "does not exist")


def split_ref(ref: str) -> tuple[str, str]:
    """``host:port/repo:tag`` -> (``host:port/repo``, ``tag``); the tag defaults to latest."""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, "latest"


def _error(message: str) -> EngineError:
    text = message.strip().splitlines()[-1] if message.strip() else "the engine gave no reason"
    if any(m in text.lower() for m in _MISSING):
        return EngineNotFound(text)
    return EngineError(text)


class Transfer(Client):
    def import_image(self, chunks: Iterable[bytes], *, ref: str, changes: Iterable[str] = (),
                     platform: str | None = None) -> str:
        """Create the image ``ref`` from a tar stream (one layer) and return its id.

        Args:
            chunks: the layer tar, as chunks (sent as a chunked request body).
            ref: ``repository:tag`` to give the image.
            changes: Dockerfile instructions applied to its config (``LABEL k=v``).
            platform: ``os/arch`` recorded in the image config.

        Raises:
            EngineError: the engine refused the stream.
            EngineUnavailable: the engine does not answer.
        """
        import docker.errors  # noqa: PLC0415
        import requests  # noqa: PLC0415

        repo, tag = split_ref(ref)
        params: dict[str, Any] = {"fromSrc": "-", "repo": repo, "tag": tag,
                                  "changes": list(changes)}
        if platform:
            params["platform"] = platform
        api = self.sdk().api
        try:
            resp = api.post(api.base_url + "/images/create", params=params, data=iter(chunks),
                            headers={"Content-Type": "application/tar"}, stream=True)
            body = resp.content
        except requests.RequestException as exc:
            raise EngineUnavailable(f"importing {ref}: {exc}", hint=START_HINT) from exc
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"importing {ref}: {exc}", hint=START_HINT) from exc
        if resp.status_code >= 300:
            raise _typed(resp.status_code, f"importing {ref}: {body.decode(errors='replace')}")
        for line in body.splitlines():
            with_error = json.loads(line) if line.strip() else {}
            if "error" in with_error:
                raise EngineError(f"importing {ref}: {with_error['error']}")
        info = self._inspect("image", f"/images/{ref}/json", ref)
        if info is None:
            raise EngineError(f"importing {ref} left no image")
        return str(info["Id"])

    def push_image(self, ref: str, *, on_status: Progress | None = None) -> str:
        """Push ``ref`` with the engine; returns the manifest digest the registry stored.

        Raises:
            EngineNotFound: the image is not on the engine, or the registry has no such
                repository and refuses to create it.
            EngineError: the registry refused or could not be reached (the engine's text).
        """
        import docker.errors  # noqa: PLC0415

        repo, tag = split_ref(ref)
        digest = ""
        try:
            stream = self.sdk().api.push(repo, tag, stream=True, decode=True)
            for chunk in _progress(stream, on_status):
                aux = chunk.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = str(aux["Digest"])
        except docker.errors.APIError as exc:
            raise _translate(exc, f"pushing {ref}") from exc
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"pushing {ref}: {exc}", hint=START_HINT) from exc
        return digest

    def pull_image(self, ref: str, *, platform: str | None = None,
                   on_status: Progress | None = None) -> None:
        """Pull ``ref`` with the engine (for ``platform`` when given).

        Raises:
            EngineNotFound: the registry has no such tag (or repository).
            EngineError: the registry could not be reached, refused, or has the tag only
                for another platform (the engine's text).
        """
        import docker.errors  # noqa: PLC0415

        repo, tag = split_ref(ref)
        try:
            stream = self.sdk().api.pull(repo, tag, stream=True, decode=True, platform=platform)
            for _chunk in _progress(stream, on_status):
                pass
        except docker.errors.APIError as exc:
            error = _translate(exc, f"pulling {ref}")
            raise _error(error.message) if not isinstance(error, EngineNotFound) else error \
                from exc
        except docker.errors.DockerException as exc:
            raise EngineUnavailable(f"pulling {ref}: {exc}", hint=START_HINT) from exc


def _progress(stream: Iterator[Mapping[str, Any]],
              on_status: Progress | None) -> Iterator[Mapping[str, Any]]:
    """The engine's JSON progress stream; an ``error`` record becomes a typed error."""
    for chunk in _closing(stream):  # type: ignore[arg-type]
        if "error" in chunk:
            detail = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
            raise _error(str(detail))
        if on_status is not None and chunk.get("status") and not chunk.get("progressDetail"):
            shown = f"{chunk.get('id', '')}: {chunk['status']}" if chunk.get("id") else chunk["status"]
            on_status(str(shown))
        yield chunk
