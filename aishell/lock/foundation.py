"""The foundation image: its inputs, its content-addressed tag, and building it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from aishell.hashing import canonical_json, derive, plain

if TYPE_CHECKING:
    from aishell.project.config import Config

DEFAULT_BASE = "debian:trixie-slim"
BASE_PACKAGES = (
    "ca-certificates",
    "curl",
    "fd-find",
    "git",
    "gitleaks",
    "gosu",
    "jq",
    "less",
    "ncurses-term",
    "openssh-client",
    "procps",
    "python3",
    "ripgrep",
    "socat",
    "tmux",
)
REPOSITORY = "aishell-foundation"
ID_CONTEXT = "aishell 2026-11 foundation image id v1"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def _resource(name: str) -> bytes:
    # A plain read when the package is on disk: importlib.resources.files() imports zipfile
    # (~40 ms) on first use, which `aishell lock --check` and launches would pay.
    path = Path(__file__).parent.parent / "resources" / name
    if path.is_file():
        return path.read_bytes()
    from importlib import resources  # noqa: PLC0415 - zipped installs only (~3 ms to import)

    return resources.files("aishell.resources").joinpath(name).read_bytes()


@dataclass(frozen=True)
class Foundation:
    """Every input of the foundation image; ``id`` is their BLAKE3."""

    base: str
    packages: tuple[str, ...]
    template: bytes
    entrypoint: bytes

    @classmethod
    def from_settings(cls, base: str = DEFAULT_BASE, extra_packages: Sequence[str] = (),
                      *, sudo: bool = False) -> Foundation:
        """``sudo``: include sudo (``[run] sudo = true``); absent otherwise, so nothing
        inside can gain root."""
        packages = tuple(sorted(set(BASE_PACKAGES) | set(extra_packages)
                                | ({"sudo"} if sudo else set())))
        return cls(base, packages, _resource("Dockerfile.foundation"), _resource("entrypoint.sh"))

    def inputs(self) -> dict[str, object]:
        return {
            "base": self.base,
            "packages": list(self.packages),
            "template": plain(self.template),
            "entrypoint": plain(self.entrypoint),
        }

    @property
    def id(self) -> str:
        return derive(ID_CONTEXT, canonical_json(self.inputs()))

    @property
    def tag(self) -> str:
        return f"{REPOSITORY}:{self.id[:32]}"

    def dockerfile(self) -> str:
        return Template(self.template.decode()).substitute(
            base=self.base, packages=" ".join(self.packages)
        )

    def labels(self, base_image_id: str) -> dict[str, str]:
        inputs = self.inputs()
        return {
            "dev.aishell.managed": "1",
            "dev.aishell.kind": "foundation",
            "dev.aishell.lock.foundation-id": self.id,
            "dev.aishell.base": self.base,
            "dev.aishell.base-id": base_image_id,
            "dev.aishell.template-hash": str(inputs["template"]),
            "dev.aishell.entrypoint-hash": str(inputs["entrypoint"]),
            "dev.aishell.packages": ",".join(self.packages),
        }


def foundation_for(config: Config) -> Foundation:
    """The foundation a project's ``[foundation]`` (and ``[run] sudo``) asks for."""
    table = config.table("foundation")
    return Foundation.from_settings(
        base=table.get("base", DEFAULT_BASE),
        extra_packages=table.get("packages", ()),
        sudo=config.table("run").get("sudo", False) is True,
    )
