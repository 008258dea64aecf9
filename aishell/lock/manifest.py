"""What the user asks for: the lock-relevant part of ``aishell.toml``, validated.

Reads [harnesses], [runtime], [foundation] and [settings] from the loaded
:class:`aishell.project.config.Config`; every bad value is a ConfigError with file and line.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from aishell.errors import ConfigError
from aishell.lock import catalog, semver
from aishell.lock.foundation import DEFAULT_BASE
from aishell.project.config import Config, Source

DEFAULT_NODE = "24"
PLATFORMS = ("linux/amd64", "linux/arm64")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PACKAGE_RE = re.compile(r"^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
TABLE_KEYS = ("npm", "version", "bin")


@dataclass(frozen=True)
class HarnessSpec:
    """One [harnesses] entry: ``requested`` is the version spec as written."""

    name: str
    package: str
    requested: str
    bins: tuple[str, ...] = ()  # empty: every bin the package declares

    def key(self) -> dict[str, Any]:
        """What freshness compares for this harness."""
        return {"package": self.package, "requested": self.requested, "bins": list(self.bins)}


@dataclass(frozen=True)
class Manifest:
    harnesses: tuple[HarnessSpec, ...] = ()
    node: str = DEFAULT_NODE
    base: str = DEFAULT_BASE
    packages: tuple[str, ...] = ()
    platforms: tuple[str, ...] = PLATFORMS
    registry: str | None = None

    def harness(self, name: str) -> HarnessSpec | None:
        return next((h for h in self.harnesses if h.name == name), None)


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
        return HarnessSpec(name, known.package, value.strip() or "latest", known.bins)
    if isinstance(value, dict):
        for key in value:
            if key not in TABLE_KEYS:
                close = difflib.get_close_matches(key, TABLE_KEYS, n=1)
                raise fail(f"unknown key `{key}` in harness `{name}`",
                           f"did you mean `{close[0]}`?" if close else "valid keys: npm, version, bin")
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
        return HarnessSpec(name, package, version.strip() or "latest", tuple(bins))
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
    )


def _error(source: Source | None, table: str, key: str, message: str, hint: str) -> ConfigError:
    if source is None:
        return ConfigError(message, hint=hint)
    return source.error(message, table, key, hint=hint)
