"""The egress service's image: Debian's tinyproxy and socat on the foundation image.

A store item like the extension image: tagged ``aishell-proxy:<id>`` where the id is
the BLAKE3 of the foundation id, the Dockerfile and the service's supervisor, and
labelled ``dev.aishell.managed=1``, ``dev.aishell.kind=proxy``. A launch in
``[network] mode = "allowlist"`` builds it when missing and records it among the images
the project runs (a gc root); the running egress service keeps it alive as every
container does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from aishell.hashing import canonical_json, derive, plain
from aishell.lock.foundation import PROXY_VARS, Foundation, _resource
from aishell.project.context import Context
from aishell.store import images

REPOSITORY = "aishell-proxy"
ID_CONTEXT = "aishell 2026-12 egress service image id v1"
SUPERVISOR = "egress-service.py"
KIND = "proxy"


@dataclass(frozen=True)
class ProxyImage:
    id: str
    foundation_tag: str
    dockerfile: bytes
    supervisor: bytes

    @property
    def tag(self) -> str:
        return f"{REPOSITORY}:{self.id[:32]}"


def proxy_image(foundation: Foundation) -> ProxyImage:
    dockerfile = _resource("Dockerfile.proxy")
    script = _resource(SUPERVISOR)
    inputs = {"foundation": foundation.id, "dockerfile": plain(dockerfile),
              "supervisor": plain(script)}
    return ProxyImage(derive(ID_CONTEXT, canonical_json(inputs)), foundation.tag, dockerfile,
                      script)


def ensure_proxy_image(ctx: Context) -> tuple[str, str, str]:
    """(role, image id, tag) of the project's proxy image, built when missing (and the
    foundation first, when that is missing too)."""
    foundation = images.foundation_for(ctx)
    image = proxy_image(foundation)
    found = ctx.engine.image_inspect(image.tag)
    if found is not None:
        return (KIND, str(found["Id"]), image.tag)
    if ctx.engine.image_inspect(foundation.tag) is None:
        images.ensure_images(ctx, record=False)
    import tempfile  # noqa: PLC0415 - only when building
    from pathlib import Path  # noqa: PLC0415

    title = f"building the egress proxy image {image.tag}"
    with tempfile.TemporaryDirectory(prefix="aishell-proxy-") as tmp, \
            images.building(ctx, title) as on_line:
        context = Path(tmp)
        (context / "Dockerfile").write_bytes(image.dockerfile)
        (context / SUPERVISOR).write_bytes(image.supervisor)
        buildargs = {k: v for k, v in os.environ.items() if k in PROXY_VARS}
        buildargs["AISHELL_FOUNDATION"] = foundation.tag
        image_id = ctx.engine.build_image(
            context, tag=image.tag, buildargs=buildargs, on_line=on_line,
            labels={"dev.aishell.managed": "1", "dev.aishell.kind": KIND,
                    "dev.aishell.store.proxy-id": image.id,
                    "dev.aishell.lock.foundation": foundation.tag},
        )
    return (KIND, image_id, image.tag)

