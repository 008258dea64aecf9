"""Round-trip edits of ``aishell.toml`` (tomlkit keeps comments and layout)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.items import Table

from aishell.errors import UsageError
from aishell.lock import catalog
from aishell.lock.manifest import NAME_RE, PACKAGE_RE, check_spec

STARTER = """\
# aishell.toml: what this project runs. `aishell lock` pins it in aishell.lock (commit both).
# Reference: docs/configuration.md and docs/lockfile.md in aishell's documentation.

[harnesses]
# name = npm semver range, exact version, or "latest"; any npm package as a table:
# mytool = {{ npm = "@acme/agent", version = "~1.4", bin = ["acme"] }}
{harnesses}
[runtime]
node = "24"  # Node.js range, resolved and pinned like a package

# [foundation]
# base = "debian:trixie-slim"     # pinned by digest in the lock
# packages = ["postgresql-client"]  # extra Debian packages

# [settings]
# platforms = ["linux/amd64", "linux/arm64"]  # what the lock covers
# registry = "https://registry.npmjs.org/"
"""


@dataclass(frozen=True)
class Addition:
    name: str
    value: str | dict[str, Any]


def parse_spec(text: str) -> Addition:
    """``claude``, ``claude@^2.1``, ``npm:@scope/pkg@range``, ``name=npm:pkg@range``."""
    name: str | None = None
    rest = text.strip()
    if "=" in rest and not rest.startswith("npm:"):
        name, _, rest = rest.partition("=")
        name = name.strip()
        if not rest.startswith("npm:"):
            raise UsageError(f"invalid spec {text!r}", hint="NAME=npm:PACKAGE[@RANGE]")
    if rest.startswith("npm:"):
        body = rest[4:]
        at = body.find("@", 1)
        package, version = (body, "latest") if at < 0 else (body[:at], body[at + 1:])
        if not PACKAGE_RE.match(package):
            raise UsageError(f"invalid npm package name {package!r} in {text!r}")
        if problem := check_spec(version):
            raise UsageError(f"{text!r}: {problem}", hint='e.g. "^1.2", "1.4.0" or "latest"')
        known = next((h for h in catalog.CATALOG.values() if h.package == package), None)
        if name is None:
            name = known.name if known else package.rsplit("/", 1)[-1]
        if known is not None and known.name == name:
            return Addition(name, version)
        _check_name(name, text)
        return Addition(name, {"npm": package, "version": version})
    name, _, version = rest.partition("@")
    version = version or "latest"
    _check_name(name, text)
    if name not in catalog.CATALOG:
        near = catalog.nearest(name)
        raise UsageError(f"unknown harness {name!r}",
                         hint=(f"did you mean {near!r}? " if near else "")
                         + f"for any npm package: aishell add npm:PACKAGE or {name}=npm:PACKAGE")
    if problem := check_spec(version):
        raise UsageError(f"{text!r}: {problem}", hint='e.g. "claude@^2.1", "codex@0.169.0"')
    return Addition(name, version)


def _check_name(name: str, text: str) -> None:
    if not NAME_RE.match(name):
        raise UsageError(f"invalid harness name {name!r} in {text!r}",
                         hint="lowercase letters, digits, '.', '_' or '-'")


def _harnesses(doc: tomlkit.TOMLDocument) -> Table:
    table = doc.get("harnesses")
    if table is None:
        table = tomlkit.table()
        doc["harnesses"] = table
    if not isinstance(table, Table):
        raise UsageError("[harnesses] in aishell.toml is not a table")
    return table


def add(text: str, additions: list[Addition]) -> str:
    """``text`` (a manifest, maybe empty) with ``additions`` set in [harnesses]."""
    doc = tomlkit.parse(text)
    table = _harnesses(doc)
    for item in additions:
        if isinstance(item.value, dict):
            inline = tomlkit.inline_table()
            inline.update(item.value)
            table[item.name] = inline
        else:
            table[item.name] = item.value
    return tomlkit.dumps(doc)


def remove(text: str, names: list[str]) -> str:
    doc = tomlkit.parse(text)
    table = _harnesses(doc)
    for name in names:
        if name not in table:
            present = [str(k) for k in table]
            near = [n for n in present if n.startswith(name[:2])]
            raise UsageError(f"{name!r} is not in [harnesses]",
                             hint=f"present: {', '.join(present) or 'none'}" if not near
                             else f"did you mean {near[0]!r}?")
        del table[name]
    return tomlkit.dumps(doc)


def starter(additions: list[Addition]) -> str:
    lines = "".join(
        f"{a.name} = {tomlkit.item(a.value).as_string()}\n" for a in additions
    )
    text = STARTER.format(harnesses=lines)
    return re.sub(r"\n{3,}", "\n\n", text)
