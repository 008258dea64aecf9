"""Which packages of a locked closure a platform installs (npm's rules, no npm needed)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

PLATFORM_TRIPLES = {"linux/amd64": ("linux", "x64", "glibc"), "linux/arm64": ("linux", "arm64", "glibc")}


def _check_list(value: str, items: Iterable[str]) -> bool:
    """npm-install-checks' rule for os/cpu/libc lists (``!x`` excludes)."""
    entries = list(items)
    if not entries or entries == ["any"]:
        return True
    negated = 0
    match = False
    for entry in entries:
        if entry.startswith("!"):
            negated += 1
            if value == entry[1:]:
                return False
        else:
            match = match or value == entry
    return match or negated == len(entries)


def fits(pkg: Mapping[str, Any], platform: str) -> bool:
    os_name, cpu, libc = PLATFORM_TRIPLES[platform]
    return (_check_list(os_name, pkg.get("os", ()))
            and _check_list(cpu, pkg.get("cpu", ()))
            and _check_list(libc, pkg.get("libc", ())))


def locate(packages: Mapping[str, Mapping[str, Any]], from_path: str, dep: str) -> str | None:
    """Node's module resolution inside a lock: the nearest node_modules/dep above from_path."""
    base = from_path
    while True:
        candidate = f"{base}/node_modules/{dep}" if base else f"node_modules/{dep}"
        if candidate in packages:
            return candidate
        if not base:
            return None
        cut = base.rfind("/node_modules/")
        base = base[:cut] if cut >= 0 else ""


def installed(packages: Sequence[Mapping[str, Any]], package: str,
              platform: str) -> list[Mapping[str, Any]]:
    """The entries of ``packages`` (one harness's closure) npm installs on ``platform``:
    reachable from ``node_modules/<package>``, skipping optional packages whose
    os/cpu/libc do not fit (and what only they pull in)."""
    by_path = {p["path"]: p for p in packages}
    root = f"node_modules/{package}"
    if root not in by_path:
        return []
    seen: set[str] = set()
    stack = [root]
    while stack:
        path = stack.pop()
        if path in seen:
            continue
        pkg = by_path[path]
        if pkg.get("optional") and not fits(pkg, platform):
            continue
        seen.add(path)
        deps = {**pkg.get("dependencies", {}), **pkg.get("optional_dependencies", {}),
                **pkg.get("peer_dependencies", {})}
        for dep in deps:
            found = locate(by_path, path, dep)
            if found is not None and found not in seen:
                stack.append(found)
    return [by_path[p] for p in sorted(seen)]


_FOREIGN = re.compile(r"darwin|win32|windows|freebsd|openbsd|android|sunos|aix")


def missing_optional(packages: Sequence[Mapping[str, Any]]) -> list[str]:
    """Optional dependencies npm left out because the registry has no such version:
    a platform whose native package is missing would install without it. Names that
    say they are for another OS are ignored (the lock only covers Linux)."""
    by_path = {p["path"]: p for p in packages}
    out = []
    for pkg in packages:
        for dep, wanted in sorted(pkg.get("optional_dependencies", {}).items()):
            if _FOREIGN.search(dep):
                continue
            if locate(by_path, pkg["path"], dep) is None:
                out.append(f"{dep}@{wanted}")
    return out
