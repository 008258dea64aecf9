"""Which command an argv names: the `aishell HARNESS` shortcut and the `run` split.

`aishell HARNESS [ARGS…]` is short for `aishell run HARNESS [ARGS…]`. Everything after
the harness name belongs to the harness (``--name``, ``--json``… included); aishell's
own options go before it. That split is done here, before argparse sees anything, so
no harness flag can ever be mistaken for one of aishell's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from aishell.cli.parser import COMMANDS
from aishell.cli.words import split as _split

if TYPE_CHECKING:
    from pathlib import Path

def _project_harnesses(options: Sequence[str]) -> list[str]:
    """Harness names in the project's aishell.toml (unreadable → none; `run` reports it)."""
    import tomllib  # noqa: PLC0415 - only when the first word is not a built-in name
    from pathlib import Path  # noqa: PLC0415

    from aishell.project.config import MANIFEST, find_project  # noqa: PLC0415

    project: Path | None = None
    for i, word in enumerate(options):
        if word == "--project" and i + 1 < len(options):
            project = Path(options[i + 1])
        elif word.startswith("--project="):
            project = Path(word.split("=", 1)[1])
    try:
        root = project.resolve() if project else find_project(Path.cwd())
        data = tomllib.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    table = data.get("harnesses")
    return list(table) if isinstance(table, dict) else []


class Routed:
    """argv after the shortcut and `run` split: what argparse parses, and the harness part."""

    def __init__(self, parse: list[str], harness: str | None = None,
                 harness_args: Sequence[str] = ()) -> None:
        self.parse = parse
        self.harness = harness
        self.harness_args = list(harness_args)


def route(args: Sequence[str], commands: Sequence[str] = COMMANDS) -> Routed:
    """Find the command; for `run` and the shortcut, split off the harness and its args."""
    options, word, rest = _split(args)
    if word is None or (word in commands and word != "run"):
        return Routed(list(args))
    from aishell.errors import UsageError  # noqa: PLC0415
    from aishell.lock import catalog  # noqa: PLC0415 - not on the path of --version or other commands

    if word == "run":
        more, harness, rest = _split(rest)
        options = [*options, *more]
    else:
        harness = word
        known = _project_harnesses(options)
        if word not in catalog.CATALOG and word not in known:
            near = catalog.nearest(word, [*known, *commands])
            raise UsageError(f"unknown command or harness `{word}`",
                             hint=f"did you mean `{near}`?" if near else "see `aishell --help`")
    if rest[:1] == ["--"]:  # `aishell run claude -- --version`
        rest = rest[1:]
    return Routed(["run", *options], harness, rest)


