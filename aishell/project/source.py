"""The project's TOML files as sources: parsed strictly, every key checked, lines kept.

The files are parsed with :mod:`tomllib`; every table and key is checked against
:data:`SCHEMA`. An unknown key names the nearest known one; a wrong type says what
would be valid. Values whose syntax belongs to another module (ports, mounts, version
ranges) are checked there, using :meth:`Source.line_of` for the location.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aishell import inputs
from aishell.errors import ConfigError

MANIFEST = "aishell.toml"
LOCKFILE = "aishell.lock"
LOCK_REBUILD_HINT = ("`aishell lock` rebuilds a lock it cannot read from aishell.toml "
                     "(or restore it: `git checkout aishell.lock`)")
LEGACY_PROJECT_FILES = (".aishell/config.yaml", ".sandbox/config.yaml")

Check = Callable[[Any], bool]


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _list_of(check: Check) -> Check:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _map_of(check: Check) -> Check:
    return lambda v: isinstance(v, dict) and all(_is_str(k) and check(x) for k, x in v.items())


def _str_or_list(v: Any) -> bool:
    return _is_str(v) or _list_of(_is_str)(v)


def _harness_spec(v: Any) -> bool:
    return _is_str(v) or isinstance(v, dict)


def _allow_entry(v: Any) -> bool:
    return isinstance(v, dict) and _is_str(v.get("path")) and set(v) <= {"path", "reason"}


# table -> key -> (check, description of a valid value)
SCHEMA: dict[str, dict[str, tuple[Check, str]]] = {
    "harnesses": {},  # any key: validated by aishell.lock.manifest
    "credentials": {},  # mode and key sources: validated by aishell.run.credentials
    "runtime": {"node": (_is_str, 'a Node.js version range such as "24"')},
    "foundation": {
        "base": (_is_str, 'an image reference such as "debian:trixie-slim"'),
        "packages": (_list_of(_is_str), "a list of Debian package names"),
        "dockerfile": (_is_str, 'a path such as ".aishell/Dockerfile"'),
    },
    "run": {
        "mounts": (_list_of(_is_str), 'a list like ["~/.aws:ro", "/data:/data"]'),
        "env": (_map_of(lambda x: _is_str(x) or x is True), 'a table of NAME = "value" or NAME = true'),
        "ports": (_list_of(_is_str), 'a list like ["127.0.0.1:8080:8080"]'),
        "docker_args": (_list_of(_is_str), 'a list like ["--memory=8g"]'),
        "pre_start": (_str_or_list, "a command string or a list of them"),
        "harness_args": (_map_of(_list_of(_is_str)), 'a table like { claude = ["--model", "sonnet"] }'),
        "skip_permissions": (_is_bool, "true or false"),
        "sudo": (_is_bool, "true or false"),
    },
    "security": {
        "detection": (_is_bool, "true or false"),
        "strict": (_is_bool, "true or false"),
        "allowlist": (_list_of(_allow_entry), 'a list of { path = "…", reason = "…" }'),
        "custom_patterns": (_map_of(lambda x: x in ("high", "medium", "low")),
                            'a table of glob = "high" | "medium" | "low"'),
        "gitleaks_freshness_days": (_is_int, "a whole number of days"),
    },
    "settings": {
        "platforms": (_list_of(_is_str), 'a list like ["linux/amd64", "linux/arm64"]'),
        "registry": (_is_str, 'a URL such as "https://registry.npmjs.org/"'),
        "engine": (lambda v: v in ("docker", "podman"), '"docker" or "podman"'),
        "ca_bundle": (_is_str, "a path to a PEM file"),
    },
    "network": {
        "mode": (lambda v: v in ("open", "allowlist", "none"), '"open", "allowlist" or "none"'),
        "allow": (_list_of(_is_str), 'a list of host names like ["api.anthropic.com", "*.openai.com"]'),
        "upstream": (_is_str, 'a proxy address such as "proxy.corp.example:3128"'),
    },
    "store": {
        "keep_generations": (_is_int, "a whole number"),
        "gc_grace": (_is_str, 'a duration such as "1h"'),
        "gc_home_ttl": (_is_str, 'a duration such as "30d"'),
        "substituters": (_list_of(_is_str), 'a list like ["localhost:5000/aishell"]'),
        "keep_archive": (_is_bool, "true or false"),
    },
}
TOP_LEVEL: dict[str, tuple[Check, str]] = {
    "extends": (lambda v: v in ("global", "none"), '"global" or "none"'),
}
GLOBAL_TABLES = ("run", "security", "settings", "network", "store", "credentials")
PROJECT_TABLES = ("harnesses", "runtime", "foundation", "run", "security", "settings", "network",
                  "store", "credentials")



@dataclass(frozen=True)
class Source:
    """A parsed TOML file and its text, so errors can point at lines."""

    path: Path
    text: str
    data: dict[str, Any]

    def item_line(self, table: str, key: str, item: str) -> int | None:
        """The line of ``item`` in the list ``[table] key`` (else the key's line)."""
        start = self.line_of(table, key)
        if start is None:
            return None
        lines = self.text.splitlines()
        for number in range(start, min(len(lines), start + 200) + 1):
            if item in lines[number - 1]:
                return number
        return start

    def line_of(self, table: str | None, key: str | None = None) -> int | None:
        """The 1-based line where ``[table]`` (or ``key`` within it) is written."""
        current: str | None = None
        header_line: int | None = None
        key_re = re.compile(r'^\s*("?)' + re.escape(key) + r'\1\s*=') if key else None
        for number, line in enumerate(self.text.splitlines(), start=1):
            header = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", line)
            if header and not line.lstrip().startswith("[["):
                current = header.group(1).strip().strip('"')
                if current == table and key is None:
                    return number
                if current == table:
                    header_line = number
                continue
            if key_re is None:
                continue
            if current == table and key_re.match(line):
                return number
            # dotted form at top level: table.key = …
            if current is None and table and re.match(
                r"^\s*" + re.escape(table) + r"\s*\.\s*" + re.escape(key or "") + r"\s*=", line
            ):
                return number
            if current is None and table is None and key_re.match(line):
                return number
        return header_line

    def error(self, message: str, table: str | None, key: str | None = None,
              hint: str | None = None) -> ConfigError:
        return ConfigError(message, path=self.path, line=self.line_of(table, key), hint=hint)


def read_toml(path: Path) -> Source:
    """Parse ``path``; a syntax error becomes a ConfigError with its line."""
    inputs.note(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("file not found", path=path) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from exc
    conflict = re.search(r"^(<<<<<<<|=======|>>>>>>>)( |$)", text, re.MULTILINE)
    if conflict:
        raise ConfigError(
            "unresolved merge-conflict markers", path=path,
            line=text.count("\n", 0, conflict.start()) + 1,
            hint="`aishell lock` rebuilds a conflicted aishell.lock from aishell.toml"
            if path.name == LOCKFILE else "resolve the conflict: keep one side, delete the markers",
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise toml_error(path, text, exc) from exc
    return Source(path, text, data)


def toml_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    """A TOML syntax error as file:line plus a hint that fits the file."""
    msg = str(exc)
    m = re.search(r"\(at line (\d+), column \d+\)", msg)
    line = int(m.group(1)) if m else None
    at_end = "(at end of document)" in msg
    msg = re.sub(r"\s*\((at line \d+, column \d+|at end of document)\)", "", msg)
    if at_end:
        # tomllib names no line here: the file ends inside a value, so point at its end.
        line = max(1, len(text.splitlines()))
        msg += " at the end of the file (is it cut short?)"
    if path.name == LOCKFILE:
        hint = LOCK_REBUILD_HINT
    elif at_end:
        hint = "a string, array or inline table opened earlier is never closed"
    else:
        hint = "fix the TOML syntax on that line (https://toml.io)"
    return ConfigError(f"invalid TOML: {msg}", path=path, line=line, hint=hint)


def _nearest(word: str, options: list[str]) -> str | None:
    import difflib  # noqa: PLC0415 - only on this path (keeps lock --check lean)

    found = difflib.get_close_matches(word, options, n=1, cutoff=0.5)
    return found[0] if found else None


def validate(source: Source, tables: tuple[str, ...]) -> None:
    """Check every table and key of ``source`` against :data:`SCHEMA`."""
    for name, value in source.data.items():
        if name in TOP_LEVEL:
            check, valid = TOP_LEVEL[name]
            if not check(value):
                raise source.error(f"`{name}` must be {valid}", None, name)
            continue
        if name not in tables:
            near = _nearest(name, list(tables) + list(TOP_LEVEL))
            raise source.error(
                f"unknown table [{name}]", name, None,
                hint=f"did you mean [{near}]?" if near else f"valid tables: {', '.join(tables)}",
            )
        if not isinstance(value, dict):
            raise source.error(f"`{name}` must be a table ([{name}])", None, name)
        keys = SCHEMA[name]
        if not keys:
            continue
        for key, item in value.items():
            if key not in keys:
                near = _nearest(key, list(keys))
                raise source.error(
                    f"unknown key `{key}` in [{name}]", name, key,
                    hint=f"did you mean `{near}`?" if near else f"valid keys: {', '.join(keys)}",
                )
            check, valid = keys[key]
            if not check(item):
                raise source.error(f"[{name}] {key} must be {valid}", name, key)
