"""The project's configuration: ``aishell.toml`` merged over the global config.

SPEC 3.1: lists concatenate (global first), maps merge (the project wins), scalars are
replaced; ``extends = "none"`` ignores the global file. Reading and checking each file is
:mod:`aishell.project.source`; the original tool's YAML is :mod:`aishell.project.compat`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aishell import inputs
from aishell.project.source import (
    GLOBAL_TABLES,
    LEGACY_PROJECT_FILES,
    LOCKFILE,
    MANIFEST,
    PROJECT_TABLES,
    Source,
    read_toml,
    validate,
)

__all__ = ["GLOBAL_TABLES", "LEGACY_PROJECT_FILES", "LOCKFILE", "MANIFEST", "PROJECT_TABLES",
           "Config", "Source", "find_project",
           "load", "merge", "read_toml", "validate"]


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """SPEC 3.1 merge: lists concatenate (base first), maps merge (over wins), scalars replace."""
    out: dict[str, Any] = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if isinstance(old, list) and isinstance(value, list):
            out[key] = old + value
        elif isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge(old, value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Config:
    """The effective configuration of one project (global merged in when extended)."""

    project: Path
    manifest: Source | None
    data: dict[str, Any] = field(default_factory=dict)
    sources: tuple[Source, ...] = ()  # every file read, global first
    legacy: Path | None = None  # the original tool's YAML, read because there is no aishell.toml

    def table(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        return value if isinstance(value, dict) else {}

    @property
    def manifest_path(self) -> Path:
        return self.project / MANIFEST

    @property
    def lock_path(self) -> Path:
        return self.project / LOCKFILE


def load(project: Path, global_config: Path | None, legacy_global: Path | None = None) -> Config:
    """Load ``project``'s manifest (if any) merged with the global config.

    Without ``aishell.toml``, the original tool's ``.aishell/config.yaml`` (or
    ``.sandbox/config.yaml``) is read instead, and then ``legacy_global``
    (``~/.aishell/config.yaml``) stands in for a missing global ``config.toml``.
    """
    manifest_path = project / MANIFEST
    inputs.note(manifest_path, *(project / p for p in LEGACY_PROJECT_FILES))
    if global_config is not None:
        inputs.note(global_config)
    if legacy_global is not None:
        inputs.note(legacy_global)
    manifest: Source | None = None
    legacy: Path | None = None
    data: dict[str, Any] = {}
    sources: list[Source] = []
    if manifest_path.is_file():
        manifest = read_toml(manifest_path)
    else:
        from aishell.project import compat  # noqa: PLC0415 - YAML only for unmigrated projects

        legacy = compat.find_project_yaml(project)
        if legacy is not None:
            manifest = compat.read_yaml(legacy)
    if manifest is not None:
        validate(manifest, PROJECT_TABLES)
        for key in manifest.data.get("store", {}):
            if key != "substituters":  # the rest of [store] is this machine's: global only
                raise manifest.error(f"[store] {key} is a setting of this machine's store, "
                                     "not of a project", "store", key,
                                     hint="move it to the global config.toml (`aishell info` "
                                     "shows where it is)")
        data = manifest.data
        sources.append(manifest)
    extends = data.get("extends", "global")
    if extends == "global":
        global_source: Source | None = None
        if global_config is not None and global_config.is_file():
            global_source = read_toml(global_config)
        elif legacy is not None and legacy_global is not None and legacy_global.is_file():
            from aishell.project import compat  # noqa: PLC0415

            global_source = compat.read_yaml(legacy_global, is_global=True)
        if global_source is not None:
            validate(global_source, GLOBAL_TABLES)
            data = merge(global_source.data, {k: v for k, v in data.items() if k != "extends"})
            sources.insert(0, global_source)
    return Config(project=project, manifest=manifest, data=data, sources=tuple(sources),
                  legacy=legacy)


def find_project(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding aishell.toml, else ``start``."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        inputs.note(candidate / MANIFEST, *(candidate / p for p in LEGACY_PROJECT_FILES))
        if (candidate / MANIFEST).is_file():
            return candidate
    home = Path.home()
    for candidate in (start, *start.parents):
        # the original tool's project config; ~/.aishell is its *global* config
        if candidate != home and any((candidate / p).is_file() for p in LEGACY_PROJECT_FILES):
            return candidate
    return start
