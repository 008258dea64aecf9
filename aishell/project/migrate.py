"""`aishell migrate`: the original ``.aishell/config.yaml`` → ``aishell.toml``.

The translation itself is :mod:`aishell.project.compat` (the same one `run` uses to read an
unmigrated project). Comments are carried over where TOML has a place for them: the
comment block above a key and a key's trailing comment go above the TOML key, a list
item's trailing comment stays on its item. The original file is left in place.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Array, Table

from aishell.errors import AishellError
from aishell.project import compat, config
from aishell.project.context import Context

HEADER = "Converted from {name} by `aishell migrate`; the original is left in place."


@dataclass(frozen=True)
class Migrated:
    source: Path
    target: Path
    text: str
    written: bool


def _split_comment(line: str) -> tuple[str, str | None]:
    """A YAML line's content and its trailing ``# comment`` (quotes respected)."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line, None


class _Comments:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def above(self, line: int) -> list[str]:
        """The contiguous full-line comments right above 1-based ``line``."""
        out: list[str] = []
        i = line - 2
        while i >= 0 and self.lines[i].lstrip().startswith("#"):
            text = self.lines[i].lstrip()[1:].strip()
            if text and set(text) - set("=-#_ "):  # drop banner rules like "# ====="
                out.insert(0, text)
            i -= 1
        return out

    def trailing(self, line: int) -> str | None:
        if 1 <= line <= len(self.lines):
            return _split_comment(self.lines[line - 1])[1]
        return None


def _key_lines(text: str) -> dict[str, tuple[int, list[int]]]:
    """Top-level (and detection.*) keys → (line, lines of their list items)."""
    import yaml  # noqa: PLC0415

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    out: dict[str, tuple[int, list[int]]] = {}

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for k, v in node.value:
            key = prefix + str(k.value)
            items: list[int] = []
            if isinstance(v, yaml.SequenceNode):
                items = [i.start_mark.line + 1 for i in v.value]
            elif isinstance(v, yaml.MappingNode):
                items = [kk.start_mark.line + 1 for kk, _vv in v.value]
            out[key] = (k.start_mark.line + 1, items)
            if key == "detection":
                walk(v, "detection.")

    walk(root, "")
    return out


def to_toml(source: compat.YamlSource) -> str:
    """The TOML text of a translated original config, comments kept where possible."""
    notes = _Comments(source.text)
    where = _key_lines(source.text)
    yaml_key = {v: k for k, v in compat.PLACE.items()}  # (table, key) → YAML key
    doc = tomlkit.document()
    doc.add(tomlkit.comment(HEADER.format(name=source.path.name)))

    def comments_for(ykey: str) -> list[str]:
        if ykey not in where:
            return []
        line = where[ykey][0]
        found = notes.above(line)
        trailing = notes.trailing(line)
        return [*found, trailing] if trailing else found

    if "extends" in source.data:
        for c in comments_for("extends"):
            doc.add(tomlkit.comment(c))
        doc.add("extends", source.data["extends"])
    for table_name in ("run", "security"):
        values = source.data.get(table_name)
        if not values:
            continue
        table: Table = tomlkit.table()
        if table_name == "security" and "detection" in where:
            for c in comments_for("detection"):
                table.add(tomlkit.comment(c))
        for key, value in values.items():
            ykey = yaml_key.get((table_name, key), key)
            if table_name == "security":
                ykey = f"detection.{ykey}"
            for c in comments_for(ykey):
                table.add(tomlkit.comment(c))
            if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
                item_lines = where.get(ykey, (0, []))[1]
                arr: Array = tomlkit.array()
                for index, v in enumerate(value):
                    line = item_lines[index] if index < len(item_lines) else 0
                    arr.add_line(v, comment=notes.trailing(line) if line else None)
                arr.add_line(indent="")
                table.add(key, arr)
            elif isinstance(value, dict):
                item_lines = where.get(ykey, (0, []))[1]
                for index, name in enumerate(value):
                    line = item_lines[index] if index < len(item_lines) else 0
                    note = notes.trailing(line) if line else None
                    if note:
                        table.add(tomlkit.comment(f"{name}: {note}"))
                inline = tomlkit.inline_table()
                inline.update(value)
                table.add(key, inline)
            else:
                table.add(key, value)
        if table_name == "security":
            for key, raw, _line in source.dropped:
                table.add(tomlkit.comment(
                    f"{key}: {raw} (original) has no aishell.toml twin; freshness warnings "
                    "follow gitleaks_freshness_days"))
        doc.add(tomlkit.nl())
        doc.add(table_name, table)
    if source.dropped and "security" not in source.data:
        for key, raw, _line in source.dropped:
            doc.add(tomlkit.comment(
                f"{key}: {raw} (original) has no aishell.toml twin; freshness warnings "
                "follow [security] gitleaks_freshness_days"))
    return tomlkit.dumps(doc)


def _convert(source_path: Path, target: Path, *, is_global: bool, dry_run: bool,
             force: bool) -> Migrated:
    if target.exists() and not force and not dry_run:
        raise AishellError(f"{target} exists already",
                           hint="pass --force to overwrite it, or --dry-run to see the result")
    source = compat.read_yaml(source_path, is_global=is_global)
    text = to_toml(source)
    # Check what we are about to write with the reader every launch uses.
    parsed = config.Source(target, text, tomllib.loads(text))
    config.validate(parsed, config.GLOBAL_TABLES if is_global else config.PROJECT_TABLES)
    if not dry_run:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    return Migrated(source_path, target, text, written=not dry_run)


def migrate(ctx: Context, *, dry_run: bool = False, force: bool = False) -> list[Migrated]:
    """Convert the project's and the global original config, whichever exist."""
    done: list[Migrated] = []
    project_yaml = compat.find_project_yaml(ctx.project)
    if project_yaml is not None:
        done.append(_convert(project_yaml, ctx.project / config.MANIFEST, is_global=False,
                             dry_run=dry_run, force=force))
    legacy = ctx.paths.legacy_global
    if legacy is not None and legacy.is_file() and (force or not ctx.paths.global_config.exists()):
        done.append(_convert(legacy, ctx.paths.global_config, is_global=True,
                             dry_run=dry_run, force=force))
    if not done:
        raise AishellError(
            f"nothing to migrate: no .aishell/config.yaml or .sandbox/config.yaml in {ctx.project}",
            hint="run it in a project that uses the original aishell's config",
        )
    return done
