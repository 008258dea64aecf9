"""The original aishell's ``.aishell/config.yaml``, read as if it were ``aishell.toml``.

The YAML is composed (not constructed) so that every value keeps its raw text and its
line: ``22:22`` stays a port mapping instead of becoming YAML 1.1's sexagesimal 1342,
and errors point at the line they are on. The result is a :class:`YamlSource` whose
data has the TOML layout (``[run]``, ``[security]``), so validation, merging and
``[run]`` resolution are the same code for both formats. PyYAML is imported here
only, and this module only when a project has no ``aishell.toml``.
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aishell import inputs
from aishell.errors import ConfigError
from aishell.project.source import LEGACY_PROJECT_FILES, Source

if TYPE_CHECKING:
    import yaml

KEYS = ("extends", "mounts", "env", "ports", "docker_args", "pre_start", "harness_args",
        "detection", "gitleaks_freshness_check")
DETECTION_KEYS = ("enabled", "custom_patterns", "allowlist", "gitleaks_freshness_check",
                  "gitleaks_freshness_days")
# YAML key → (TOML table, TOML key)
PLACE = {
    "mounts": ("run", "mounts"), "env": ("run", "env"), "ports": ("run", "ports"),
    "docker_args": ("run", "docker_args"), "pre_start": ("run", "pre_start"),
    "harness_args": ("run", "harness_args"), "enabled": ("security", "detection"),
    "custom_patterns": ("security", "custom_patterns"), "allowlist": ("security", "allowlist"),
    "gitleaks_freshness_days": ("security", "gitleaks_freshness_days"),
}
_TRUE = ("true", "yes", "on", "y")
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class YamlSource(Source):
    """A YAML config translated to the TOML layout; lines are looked up, not searched."""

    lines: dict[tuple[str | None, str | None], int] = field(default_factory=dict)
    dropped: tuple[tuple[str, str, int], ...] = ()  # (key, raw value, line) with no TOML twin

    def line_of(self, table: str | None, key: str | None = None) -> int | None:
        return self.lines.get((table, key)) or self.lines.get((table, None))


def find_project_yaml(project: Path) -> Path | None:
    for rel in LEGACY_PROJECT_FILES:
        if (project / rel).is_file():
            return project / rel
    return None


def default_global_yaml() -> Path:
    return Path.home() / ".aishell" / "config.yaml"


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[tuple[str | None, str | None], int] = {}
        self.dropped: list[tuple[str, str, int]] = []

    def fail(self, node: yaml.Node, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, path=self.path, line=node.start_mark.line + 1, hint=hint)

    # -- node helpers -------------------------------------------------------------
    def scalar(self, node: yaml.Node, what: str) -> str:
        import yaml  # noqa: PLC0415

        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL:
            raise self.fail(node, f"{what} must be a single value")
        return str(node.value)

    def boolean(self, node: yaml.Node, what: str) -> bool:
        import yaml  # noqa: PLC0415

        if not isinstance(node, yaml.ScalarNode) or node.tag != _BOOL:
            raise self.fail(node, f"{what} must be true or false")
        return str(node.value).lower() in _TRUE

    def strings(self, node: yaml.Node, what: str, *, split: bool = False) -> list[str]:
        import yaml  # noqa: PLC0415

        if isinstance(node, yaml.ScalarNode) and node.tag != _NULL:
            return shlex.split(str(node.value)) if split else [str(node.value)]
        if isinstance(node, yaml.ScalarNode):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return [self.scalar(item, f"an item of {what}") for item in node.value]

    def mapping(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        import yaml  # noqa: PLC0415

        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
            return []
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        return [(self.scalar(k, f"a key of {what}"), k, v) for k, v in node.value]

    # -- translation --------------------------------------------------------------
    def translate(self, root: yaml.Node | None, *, is_global: bool) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if root is None:
            return data
        run: dict[str, Any] = {}
        security: dict[str, Any] = {}
        for key, knode, vnode in self.mapping(root, "the configuration"):
            line = knode.start_mark.line + 1
            if key not in KEYS:
                near = difflib.get_close_matches(key, KEYS, n=1, cutoff=0.5)
                raise self.fail(knode, f"unknown key `{key}`",
                                hint=f"did you mean `{near[0]}`?" if near
                                else f"valid keys: {', '.join(KEYS)}")
            if key == "extends":
                value = self.scalar(vnode, "extends")
                if value not in ("global", "none"):
                    raise self.fail(vnode, 'extends must be "global" or "none"')
                if not is_global:
                    data["extends"] = value
                    self.lines[(None, "extends")] = line
                continue
            if key in ("mounts", "ports"):
                run[key] = self.strings(vnode, key)
            elif key == "docker_args":
                run[key] = self.strings(vnode, key, split=True)
            elif key == "pre_start":
                items = self.strings(vnode, key)
                run[key] = items[0] if len(items) == 1 and not _is_seq(vnode) else items
            elif key == "env":
                run[key] = self.env(vnode)
            elif key == "harness_args":
                run[key] = {name: self.strings(v, f"harness_args.{name}")
                            for name, _k, v in self.mapping(vnode, key)}
            elif key == "detection":
                self.detection(vnode, security)
                self.lines[("security", None)] = line
                continue
            elif key == "gitleaks_freshness_check":
                self.boolean(vnode, key)
                self.dropped.append((key, str(getattr(vnode, "value", "")), line))
                continue
            table, tkey = PLACE[key]
            self.lines[(table, tkey)] = line
            self.lines.setdefault((table, None), line)
        if run:
            data["run"] = run
        if security:
            data["security"] = security
        return data

    def env(self, node: yaml.Node) -> dict[str, Any]:
        import yaml  # noqa: PLC0415

        out: dict[str, Any] = {}
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                text = self.scalar(item, "an item of env")
                name, eq, value = text.partition("=")
                out[name] = value if eq else True
            return out
        for name, _k, v in self.mapping(node, "env"):
            if isinstance(v, yaml.ScalarNode) and v.tag == _NULL:
                out[name] = True  # `NAME:` with no value passes the host's value through
            else:
                out[name] = self.scalar(v, f"env.{name}")
        return out

    def detection(self, node: yaml.Node, security: dict[str, Any]) -> None:
        for key, knode, vnode in self.mapping(node, "detection"):
            line = knode.start_mark.line + 1
            if key not in DETECTION_KEYS:
                near = difflib.get_close_matches(key, DETECTION_KEYS, n=1, cutoff=0.5)
                raise self.fail(knode, f"unknown key `detection.{key}`",
                                hint=f"did you mean `{near[0]}`?" if near else None)
            if key == "enabled":
                security["detection"] = self.boolean(vnode, "detection.enabled")
            elif key == "gitleaks_freshness_days":
                text = self.scalar(vnode, key)
                if not text.isdigit():
                    raise self.fail(vnode, f"detection.{key} must be a whole number of days")
                security[key] = int(text)
            elif key == "gitleaks_freshness_check":
                self.boolean(vnode, key)
                self.dropped.append((key, str(getattr(vnode, "value", "")), line))
                continue
            elif key == "custom_patterns":
                security[key] = self.patterns(vnode)
            elif key == "allowlist":
                security[key] = self.allowlist(vnode)
            self.lines[PLACE[key]] = line

    def patterns(self, node: yaml.Node) -> dict[str, str]:
        import yaml  # noqa: PLC0415

        out: dict[str, str] = {}
        for glob, _k, v in self.mapping(node, "detection.custom_patterns"):
            if isinstance(v, yaml.MappingNode):
                fields = {k: self.scalar(x, k) for k, _kk, x in self.mapping(v, glob)}
                severity = fields.get("severity", "")
            else:
                severity = self.scalar(v, f"the severity of {glob}")
            severity = severity.lower()
            if severity not in ("high", "medium", "low"):
                raise self.fail(v, f"severity of {glob!r} must be high, medium or low")
            out[glob] = severity
        return out

    def allowlist(self, node: yaml.Node) -> list[dict[str, str]]:
        import yaml  # noqa: PLC0415

        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, "detection.allowlist must be a list")
        out: list[dict[str, str]] = []
        for item in node.value:
            fields = {k: self.scalar(v, k) for k, _kk, v in self.mapping(item, "an allowlist entry")}
            if "path" not in fields or set(fields) - {"path", "reason"}:
                raise self.fail(item, "an allowlist entry needs `path` (and a `reason`)")
            out.append(fields)
        return out


def _is_seq(node: Any) -> bool:
    import yaml  # noqa: PLC0415

    return isinstance(node, yaml.SequenceNode)


def read_yaml(path: Path, *, is_global: bool = False) -> YamlSource:
    """Parse and translate an original-format config; errors carry file and line."""
    import yaml  # noqa: PLC0415 - only unmigrated projects pay for PyYAML

    inputs.note(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "syntax error"
        if exc.problem and exc.context and exc.context_mark is not None:
            problem += f" ({exc.context} on line {exc.context_mark.line + 1})"
        raise ConfigError(f"invalid YAML: {problem}", path=path, line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=path) from exc
    reader = _Reader(path)
    data = reader.translate(root, is_global=is_global)
    return YamlSource(path=path, text=text, data=data, lines=reader.lines,
                      dropped=tuple(reader.dropped))
