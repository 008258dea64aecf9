"""Printing at the edge: messages, progress and tables for people, JSON for programs.

rich is imported only when something is drawn, so quick commands stay quick.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

JSON_SCHEMA_VERSION = 1


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    err(f"warning: {message}")


def print_json(kind: str, payload: dict[str, Any]) -> None:
    """One ``aishell.<kind>`` document in the versioned envelope (docs/json.md)."""
    if "schema" in payload or "version" in payload:
        raise ValueError(f"aishell.{kind}: `schema` and `version` belong to the envelope")
    doc = {"schema": f"aishell.{kind}", "version": JSON_SCHEMA_VERSION, **payload}
    print(json.dumps(doc, indent=2, sort_keys=True, default=str))


@contextmanager
def progress(title: str, *, quiet: bool, verbose: bool) -> Iterator[Callable[[str], None]]:
    """A status line that shows the latest output line; ``verbose`` prints every line."""
    if quiet:
        yield lambda _line: None
        return
    if verbose:
        err(title)
        yield lambda line: err("  " + line)
        return
    if not sys.stderr.isatty():
        err(title)
        yield lambda _line: None
        return
    from rich.console import Console  # noqa: PLC0415 - lazy: rich costs ~70 ms to import

    console = Console(stderr=True)
    with console.status(title) as status:
        yield lambda line: status.update(f"{title}  [dim]{line[:100]}[/dim]")


@contextmanager
def lazy_progress(title: str, *, quiet: bool, verbose: bool) -> Iterator[Callable[[str], None]]:
    """Like :func:`progress`, but shows nothing until the first status line arrives, so
    an operation that turns out to be a no-op prints nothing at all."""
    if quiet:
        yield lambda _line: None
        return
    with ExitStack() as stack:
        sink: list[Callable[[str], None]] = []

        def update(line: str) -> None:
            if not sink:
                sink.append(stack.enter_context(progress(title, quiet=False, verbose=verbose)))
                if not verbose and not sys.stderr.isatty():
                    err(f"  {line}")
            sink[0](line)

        yield update
