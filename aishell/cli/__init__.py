"""The command line: route argv, parse it, resolve one Context, dispatch, return a code.

The edge of the program and the only package that may import every stage. Its modules:
:mod:`.parser` (argparse only), :mod:`.routing` (the `aishell HARNESS` shortcut), one
module per command group that dispatches to its stage and renders the result
(:mod:`.run`, :mod:`.lock`, :mod:`.sync`, :mod:`.store`, :mod:`.verify`, :mod:`.doctor`),
and :mod:`.crash`, the one top-level error handler.

A launch imports only its own group's module and builds only its own command's parser.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from aishell import __version__
from aishell.cli.parser import COMMANDS, GROUPS, build_parser, command_names
from aishell.cli.routing import _split, route

__all__ = ["COMMANDS", "build_parser", "command_names", "entry", "main", "route"]


def _context(ns: Any) -> Any:
    from aishell.project.context import Context  # noqa: PLC0415 - keeps --version/--help fast

    return Context.create(
        ns.project, verbose=ns.verbose, quiet=ns.quiet, no_color=ns.no_color,
        json=getattr(ns, "json", False),
    )


def _dispatch(ns: Any, routed: Any) -> int:
    if ns.verbose:
        from aishell import process  # noqa: PLC0415

        process.VERBOSE = True
    group = import_module(f"aishell.cli.{GROUPS[ns.command or 'shell']}")
    code: int = group.dispatch(_context(ns), ns, routed)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (the console script passes it to sys.exit)."""
    args = list(sys.argv[1:] if argv is None else argv)
    options, word, _rest = _split(args)
    if word is None and options == ["--version"]:
        print(f"aishell {__version__}")
        return 0
    verbose = any(a in ("-v", "--verbose") for a in options)
    from aishell.cli import crash  # noqa: PLC0415
    from aishell.errors import AishellError  # noqa: PLC0415

    try:
        routed = route(args)
    except AishellError as exc:  # an unknown command or harness: the one handler prints it
        error = exc

        def fail() -> int:
            raise error

        return crash.guard(fail, verbose=verbose)
    command = routed.parse[len(_split(routed.parse)[0])] if _split(routed.parse)[1] else None
    # Only the routed command's parser is built; bare `aishell`, `--help` and usage errors
    # before a command get every command (the help lists them all).
    parser = build_parser(command if command in GROUPS else None)
    try:
        ns = parser.parse_args(routed.parse)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return int(exc.code or 0)
    return crash.guard(lambda: _dispatch(ns, routed), verbose=verbose)


def entry() -> None:
    sys.exit(main())
