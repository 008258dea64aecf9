"""What the user asks for: the lock-relevant part of ``aishell.toml``, validated.

Reads [harnesses], [runtime], [foundation] and [settings] from the loaded
:class:`aishell.project.config.Config`; every bad value is a ConfigError with file and line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aishell.errors import ConfigError
from aishell.lock import catalog, semver
from aishell.lock.foundation import DEFAULT_BASE
from aishell.project.config import Config, Source

DEFAULT_NODE = "24"
PLATFORMS = ("linux/amd64", "linux/arm64")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PACKAGE_RE = re.compile(r"^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
TABLE_KEYS = ("npm", "version", "bin", "allow-network-install")


@dataclass(frozen=True)
class HarnessSpec:
    """One [harnesses] entry: ``requested`` is the version spec as written."""

    name: str
    package: str
    requested: str
    bins: tuple[str, ...] = ()  # empty: every bin the package declares
    # its install scripts may use the network at population (not reproducible)
    network_install: bool = False
    # "aishell.toml:3", where the entry is written: every error about it starts there
    where: str = field(default="", compare=False)

    def at(self, message: str) -> str:
        """``message`` located at this entry (``file:line: message``)."""
        return f"{self.where}: {message}" if self.where else message

    def key(self) -> dict[str, Any]:
        """What freshness compares for this harness."""
        return {"package": self.package, "requested": self.requested, "bins": list(self.bins),
                "network_install": self.network_install}


@dataclass(frozen=True)
class Manifest:
    harnesses: tuple[HarnessSpec, ...] = ()
    node: str = DEFAULT_NODE
    base: str = DEFAULT_BASE
    packages: tuple[str, ...] = ()
    platforms: tuple[str, ...] = PLATFORMS
    registry: str | None = None
    # "table.key" -> "file:line" of the setting (the manifest's path when it is a default)
    where: Mapping[str, str] = field(default_factory=dict, compare=False)

    def harness(self, name: str) -> HarnessSpec | None:
        return next((h for h in self.harnesses if h.name == name), None)

    def at(self, key: str, message: str) -> str:
        """``message`` located at the setting ``key`` ("runtime.node", "foundation.base")."""
        where = self.where.get(key) or self.where.get("")
        return f"{where}: {message}" if where else message


def locate(config: Config, table: str, key: str | None = None) -> str:
    """``file:line`` of ``[table] key`` in the file that sets it (the project's manifest
    over the global config), else the manifest's path, else ""."""
    for source in reversed(config.sources):
        line = source.line_of(table, key)
        if line is not None and (key is None or key in (source.data.get(table) or {})):
            return f"{source.path}:{line}"
    return str(config.manifest.path) if config.manifest is not None else ""


def check_spec(spec: str) -> str | None:
    """None when ``spec`` is a usable version spec, else what is wrong with it."""
    if spec in ("", "latest") or semver.valid_range(spec):
        return None
    if semver.TAG_RE.match(spec):
        return None  # a dist-tag such as "next"
    return f"{spec!r} is not an npm version range"


def _harness(source: Source | None, name: str, value: Any) -> HarnessSpec:
    def fail(message: str, hint: str | None = None) -> ConfigError:
        if source is None:
            return ConfigError(message, hint=hint)
        return source.error(message, "harnesses", name, hint=hint)

    line = source.line_of("harnesses", name) if source is not None else None
    where = f"{source.path}:{line}" if source is not None and line else \
        str(source.path) if source is not None else ""
    if not NAME_RE.match(name):
        raise fail(f"invalid harness name {name!r}", "use lowercase letters, digits, '.', '_' or '-'")
    valid_spec = 'a range like "^2.1", an exact version like "0.169.0", or "latest"'
    if isinstance(value, str):
        known = catalog.CATALOG.get(name)
        if known is None:
            near = catalog.nearest(name)
            raise fail(
                f"unknown harness `{name}`",
                f"did you mean `{near}`? " if near else ""
                f'for any npm package write {name} = {{ npm = "package", version = "latest" }}',
            )
        if problem := check_spec(value.strip()):
            raise fail(f"[harnesses] {name}: {problem}", f"use {valid_spec}")
        return HarnessSpec(name, known.package, value.strip() or "latest", known.bins,
                           where=where)
    if isinstance(value, dict):
        for key in value:
            if key not in TABLE_KEYS:
                import difflib  # noqa: PLC0415 - only on this path (keeps lock --check lean)

                close = difflib.get_close_matches(key, TABLE_KEYS, n=1)
                raise fail(f"unknown key `{key}` in harness `{name}`",
                           f"did you mean `{close[0]}`?" if close else
                           "valid keys: " + ", ".join(TABLE_KEYS))
        known = catalog.CATALOG.get(name)
        package = value.get("npm", known.package if known else None)
        if not isinstance(package, str) or not PACKAGE_RE.match(package):
            raise fail(f"harness `{name}` needs `npm = \"package-name\"`",
                       'e.g. { npm = "@acme/agent", version = "~1.4" }')
        version = value.get("version", "latest")
        if not isinstance(version, str) or (problem := check_spec(version.strip())):
            raise fail(f"[harnesses] {name}: version must be {valid_spec}")
        bins: Any = value.get("bin", list(known.bins) if known and package == known.package else [])
        if isinstance(bins, str):
            bins = [bins]
        if not isinstance(bins, list) or not all(isinstance(b, str) and b for b in bins):
            raise fail(f"[harnesses] {name}: bin must be a list of command names")
        network = value.get("allow-network-install", False)
        if not isinstance(network, bool):
            raise fail(f"[harnesses] {name}: allow-network-install must be true or false")
        return HarnessSpec(name, package, version.strip() or "latest", tuple(bins),
                           network_install=network, where=where)
    raise fail(f"[harnesses] {name} must be {valid_spec}, or a table {{ npm = …, version = … }}")


def from_config(config: Config) -> Manifest:
    """The validated manifest of ``config`` (defaults where the file is silent)."""
    source = config.manifest
    harnesses = tuple(
        _harness(source, name, value) for name, value in sorted(config.table("harnesses").items())
    )
    node = str(config.table("runtime").get("node", DEFAULT_NODE)).strip()
    if not semver.valid_range(node) or node in ("", "*"):
        raise _error(source, "runtime", "node", f"[runtime] node: {node!r} is not a Node.js version range",
                     'use a major version like "24" or a range like ">=22 <25"')
    foundation = config.table("foundation")
    settings = config.table("settings")
    platforms = tuple(settings.get("platforms", PLATFORMS))
    for platform in platforms:
        if platform not in PLATFORMS:
            raise _error(source, "settings", "platforms", f"unsupported platform {platform!r}",
                         f"supported: {', '.join(PLATFORMS)}")
    if not platforms:
        raise _error(source, "settings", "platforms", "[settings] platforms is empty",
                     f"list at least one of {', '.join(PLATFORMS)}")
    return Manifest(
        harnesses=harnesses,
        node=node,
        base=str(foundation.get("base", DEFAULT_BASE)),
        packages=tuple(sorted(set(foundation.get("packages", ())))),
        platforms=tuple(sorted(set(platforms))),
        registry=settings.get("registry"),
        where={"": str(source.path) if source is not None else "",
               **{f"{t}.{k}": locate(config, t, k) for t, k in LOCATED}},
    )


# The settings resolution can fail on (beside each harness): their errors point here.
LOCATED = (("runtime", "node"), ("foundation", "base"), ("foundation", "packages"),
           ("settings", "platforms"), ("settings", "registry"))


def _error(source: Source | None, table: str, key: str, message: str, hint: str) -> ConfigError:
    if source is None:
        return ConfigError(message, hint=hint)
    return source.error(message, table, key, hint=hint)
