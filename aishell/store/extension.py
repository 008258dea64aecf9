"""The project's extension image: `.aishell/Dockerfile` built on the foundation.

The build context is the Dockerfile's own directory (``.aishell/`` by default), minus
what its ``.dockerignore`` excludes — small and explicit, so hashing it on every launch
costs next to nothing and a project's source tree never lands in an image by accident.

The tag ``aishell-ext:<id>`` is the BLAKE3 of the foundation id, the Dockerfile and every
context file (path, executable bit, content): a changed ``COPY``'d file rebuilds it, an
unchanged project never does. The Dockerfile names its base with the build argument
``AISHELL_FOUNDATION``::

    ARG AISHELL_FOUNDATION
    FROM ${AISHELL_FOUNDATION}
    RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from blake3 import blake3

from aishell import inputs as plan_inputs
from aishell.engine import Engine
from aishell.errors import ConfigError
from aishell.hashing import canonical_json, derive
from aishell.lock.foundation import PROXY_VARS, Foundation
from aishell.store.dockerignore import Matcher, parse

DEFAULT_DOCKERFILE = ".aishell/Dockerfile"
REPOSITORY = "aishell-ext"
ID_CONTEXT = "aishell 2026-11 extension image id v1"


@dataclass(frozen=True)
class Extension:
    dockerfile: Path
    context: Path
    id: str

    @property
    def tag(self) -> str:
        return f"{REPOSITORY}:{self.id[:32]}"


def context_files(context: Path, dockerfile: Path) -> list[tuple[str, bool, str]]:
    """(relative path, executable, content hash) of every file the build can see, sorted."""
    ignore_file = context / ".dockerignore"
    plan_inputs.note(context, ignore_file)
    matcher = Matcher(parse(ignore_file.read_text(encoding="utf-8")) if ignore_file.is_file()
                      else [])
    out: list[tuple[str, bool, str]] = []
    stack = [context]
    while stack:
        directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                rel = Path(entry.path).relative_to(context).as_posix()
                if matcher.excluded(rel):
                    continue
                st = entry.stat(follow_symlinks=False)
                plan_inputs.note(entry.path)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(Path(entry.path))
                elif stat.S_ISLNK(st.st_mode):
                    out.append((rel, False, "symlink:" + str(Path(entry.path).readlink())))
                elif stat.S_ISREG(st.st_mode) and Path(entry.path) != dockerfile:
                    hasher = blake3()
                    with open(entry.path, "rb") as fh:  # noqa: PTH123 - scandir paths are str
                        for chunk in iter(lambda: fh.read(1 << 20), b""):
                            hasher.update(chunk)
                    out.append((rel, bool(st.st_mode & 0o111), hasher.hexdigest()))
    return sorted(out)


def find(project: Path, foundation: Foundation, configured: str | None = None) -> Extension | None:
    """The project's extension, or None when it has no Dockerfile."""
    dockerfile = (project / (configured or DEFAULT_DOCKERFILE)).resolve()
    plan_inputs.note(dockerfile, dockerfile.parent)
    if not dockerfile.is_file():
        if configured:
            raise ConfigError(f"[foundation] dockerfile {configured!r} does not exist",
                              path=project / "aishell.toml",
                              hint=f"create it or remove the key (default: {DEFAULT_DOCKERFILE})")
        return None
    context = dockerfile.parent
    inputs = {
        "foundation": foundation.id,
        "dockerfile": blake3(dockerfile.read_bytes()).hexdigest(),
        "context": context_files(context, dockerfile),
    }
    return Extension(dockerfile, context, derive(ID_CONTEXT, canonical_json(inputs)))


def ensure_extension(engine: Engine, ext: Extension, foundation_tag: str, project: Path, *,
                     force: bool = False, on_line: Callable[[str], None] | None = None) -> bool:
    """Build the extension image unless its tag exists. True when it was built."""
    if not force and engine.image_exists(ext.tag):
        return False
    buildargs = {k: v for k, v in os.environ.items() if k in PROXY_VARS}
    buildargs["AISHELL_FOUNDATION"] = foundation_tag
    engine.build_image(
        ext.context,
        dockerfile=str(ext.dockerfile.relative_to(ext.context)),
        tag=ext.tag,
        labels={
            "dev.aishell.managed": "1",
            "dev.aishell.kind": "extension",
            "dev.aishell.store.extension-id": ext.id,
            "dev.aishell.lock.foundation": foundation_tag,
            "dev.aishell.project": str(project),
        },
        buildargs=buildargs,
        on_line=on_line,
    )
    return True
