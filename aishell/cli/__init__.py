"""The command line: route argv, parse it, resolve one Context, dispatch, return a code.

The edge of the program and the only package that may import every stage. Its modules:
:mod:`.parser` (argparse only), :mod:`.routing` (the `aishell HARNESS` shortcut), one
module per command group that dispatches to its stage and renders the result
(:mod:`.run`, :mod:`.lock`, :mod:`.sync`, :mod:`.store`, :mod:`.verify`, :mod:`.doctor`),
and :mod:`.crash`, the one top-level error handler.

A launch seen before is replayed from its cached plan (:mod:`aishell.run.fast`) before
anything else is imported, and so is the answer of a ``lock --check`` of an unchanged
project; any other command imports only its own group's module and
builds only its own command's parser.
"""

from __future__ import annotations

import sys

from aishell import __version__
from aishell.cli.words import LAUNCH_WORDS, split

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["COMMANDS", "build_parser", "command_names", "entry", "launch_commands", "main",
           "route"]


def __getattr__(name: str) -> Any:
    # The parser and the router, for callers that want them (tests, completions),
    # without importing argparse into every launch.
    if name in ("COMMANDS", "build_parser", "command_names", "launch_commands"):
        from aishell.cli import parser  # noqa: PLC0415

        return getattr(parser, name)
    if name == "route":
        from aishell.cli.routing import route  # noqa: PLC0415

        return route
    raise AttributeError(f"module 'aishell.cli' has no attribute {name!r}")


def _context(ns: Any) -> Any:
    from aishell.project.context import Context  # noqa: PLC0415 - keeps --version/--help fast

    return Context.create(
        ns.project, verbose=ns.verbose, quiet=ns.quiet, no_color=ns.no_color,
        json=getattr(ns, "json", False),
    )


def _dispatch(ns: Any, routed: Any) -> int:
    from importlib import import_module  # noqa: PLC0415

    from aishell.cli.parser import GROUPS  # noqa: PLC0415

    if ns.verbose:
        from aishell import process  # noqa: PLC0415

        process.VERBOSE = True
    group = import_module(f"aishell.cli.{GROUPS[ns.command or 'shell']}")
    code: int = group.dispatch(_context(ns), ns, routed)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (the console script passes it to sys.exit)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["__complete"]:  # hidden: the dynamic words of the completion scripts
        from aishell.cli import completion  # noqa: PLC0415

        return completion.complete(args[1:])
    options, word, rest = split(args)
    if word is None and options == ["--version"]:
        print(f"aishell {__version__}")
        return 0
    if word in LAUNCH_WORDS or word == "sync" or (word == "lock" and "--check" in rest):
        from aishell.run import fast  # noqa: PLC0415

        replayed = fast.launch(args)
        if replayed is not None:
            return replayed
    verbose = any(a in ("-v", "--verbose") for a in options)
    from aishell import inputs  # noqa: PLC0415
    from aishell.cli import crash  # noqa: PLC0415
    from aishell.cli.parser import GROUPS, build_parser  # noqa: PLC0415
    from aishell.cli.routing import route  # noqa: PLC0415
    from aishell.errors import AishellError  # noqa: PLC0415

    try:
        routed = route(args)
    except AishellError as exc:  # an unknown command or harness: the one handler prints it
        error = exc

        def fail() -> int:
            raise error

        return crash.guard(fail, verbose=verbose)
    command = split(routed.parse)[1]
    # Only the routed command's parser is built; bare `aishell`, `--help` and usage errors
    # before a command get every command (the help lists them all).
    parser = build_parser(command if command in GROUPS else None)
    try:
        ns = parser.parse_args(routed.parse)
    except SystemExit as exc:  # argparse: --help, --version, usage errors
        return int(exc.code or 0)
    with inputs.Recording(args):  # what a launch reads, for its cached plan
        return crash.guard(lambda: _dispatch(ns, routed), verbose=verbose,
                           as_json=bool(getattr(ns, "json", False)))


def entry() -> None:
    sys.exit(main())
