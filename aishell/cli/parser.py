"""The argument parser: every command's options, and nothing else (argparse only).

No stage is imported here, so building the parser costs only argparse. A launch builds
the parser of its own command alone (:func:`build_parser` with ``only``); ``--help``
builds them all.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from aishell import __version__

# Every command, and the module of aishell.cli that dispatches it.
GROUPS = {
    "shell": "run", "run": "run", "exec": "run", "attach": "run", "ps": "run", "stop": "run",
    "migrate": "run", "gitleaks": "run", "check": "doctor", "info": "doctor", "build": "doctor",
    "sync": "sync", "verify": "verify", "gc": "store", "store": "store", "pin": "store",
    "unpin": "store", "rollback": "store", "lock": "lock", "add": "lock", "remove": "lock",
    "init": "lock", "tree": "lock", "completion": "completion",
}
SHELLS = ("bash", "zsh", "fish")
COMMANDS = tuple(GROUPS)


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter without its ``import shutil`` (~2 ms, for the terminal width)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:
            try:
                width = int(os.environ["COLUMNS"])
            except (KeyError, ValueError):
                try:
                    width = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
                except (AttributeError, ValueError, OSError):
                    width = 80
            width -= 2
        super().__init__(prog, indent_increment, max_help_position, width)


class _Skipped:
    """Stands in for the parser of a command that is not being built: takes every call."""

    def add_argument(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    def set_defaults(self, **_kwargs: Any) -> None:
        return None

    def add_subparsers(self, **_kwargs: Any) -> _Only:
        return _Only(None, "")


class _Only:
    """A subparsers action that builds only the command a launch needs (argparse builds
    each subparser eagerly: all of them cost ~16 ms, one costs ~1 ms)."""

    def __init__(self, sub: Any, only: str | None) -> None:
        self.sub = sub
        self.only = only

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if self.sub is None or (self.only is not None and name != self.only):
            return _Skipped()
        kwargs.setdefault("formatter_class", _Formatter)
        return self.sub.add_parser(name, **kwargs)


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    flag_default: Any = argparse.SUPPRESS if suppress else False
    parser.add_argument("--project", metavar="DIR", default=default,
                        help="project directory (default: nearest parent with aishell.toml)")
    parser.add_argument("-v", "--verbose", action="store_true", default=flag_default,
                        help="show more (every build line, commands run)")
    parser.add_argument("-q", "--quiet", action="store_true", default=flag_default,
                        help="show only errors")
    parser.add_argument("--no-color", action="store_true", default=flag_default,
                        help="no colours (NO_COLOR is honoured too)")


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="sandbox name (default: the harness, or `shell`)")
    parser.add_argument("-d", "--detach", action="store_true",
                        help="run in tmux session `main` in the background (join: aishell attach)")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="NAME[=VALUE]",
                        help="set a variable, or pass the host's value through (repeatable)")
    parser.add_argument("--volume", action="append", default=[], metavar="SRC[:DST][:ro]",
                        help="mount a host path (repeatable)")
    parser.add_argument("-p", "--publish", action="append", default=[],
                        metavar="[IP:]HOST:CONT[/proto]", help="publish a port (repeatable)")
    parser.add_argument("--unsafe", action="store_true",
                        help="skip the sensitive-file check before launch")
    _lock_options(parser)
    _substituter_options(parser)


def _substituter_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--substituter", action="append", default=[], metavar="REF",
                        help="an image registry path to fetch the env from before building "
                        "(repeatable; tried before [store] substituters)")
    parser.add_argument("--no-substitute", action="store_true",
                        help="fetch the env from no substituter (the local archive still counts)")


def _lock_options(parser: argparse.ArgumentParser) -> None:
    """How a launch treats aishell.lock (run, shell, exec alike)."""
    parser.add_argument("--locked", action="store_true",
                        help="fail if aishell.lock is out of date (no implicit lock)")
    parser.add_argument("--frozen", action="store_true",
                        help="use aishell.lock as it is, without checking aishell.toml")
    parser.add_argument("--offline", action="store_true",
                        help="install the env only from the download cache")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command ``only`` alone."""
    parser = argparse.ArgumentParser(
        prog="aishell",
        description="Run AI coding agents in ephemeral containers, pinned by aishell.lock.",
        epilog="`aishell HARNESS [ARGS…]` is short for `aishell run HARNESS [ARGS…]`.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"aishell {__version__}")
    _global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False, formatter_class=_Formatter)
    _global_options(common, suppress=True)
    sub: Any = _Only(parser.add_subparsers(dest="command", metavar="COMMAND"), only)

    _run_commands(sub, common)

    p = sub.add_parser("check", parents=[common], help="check the engine, images and paths")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--network", action="store_true",
                   help="also probe allowlist mode from inside a sandbox of this project")
    p = sub.add_parser("info", parents=[common], help="versions, paths and the engine")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--foundation", action="store_true",
                   help="print the foundation image's Dockerfile")
    p = sub.add_parser("build", parents=[common], help="build the foundation image if missing")
    p.add_argument("--force", action="store_true", help="rebuild even when the tag exists")

    p = sub.add_parser("sync", parents=[common],
                       help="build what the lock needs on this machine: images and the env volume")
    p.add_argument("--locked", action="store_true", help="fail if aishell.lock is out of date")
    p.add_argument("--frozen", action="store_true",
                   help="use aishell.lock as it is, without checking aishell.toml")
    p.add_argument("--offline", action="store_true", help="install only from the download cache")
    p.add_argument("--check", action="store_true",
                   help="build nothing; exit 1 when anything is missing")
    p.add_argument("--force", action="store_true", help="rebuild the images and the env")
    _substituter_options(p)
    p.add_argument("--rebuild-check", action="store_true",
                   help="also build the env locally and compare its tree digest (exit 1 if not equal)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _store_commands(sub, common)

    _lock_commands(sub, common)
    p = sub.add_parser("verify", parents=[common],
                       help="recompute env volumes' tree digests and compare with their markers")
    p.add_argument("env", nargs="*", metavar="ENV",
                   help="env ids or volume names (prefixes allowed)")
    p.add_argument("--all", action="store_true", help="verify every env volume")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _completion_command(sub)
    return parser


def _run_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    # Every command that starts a sandbox is marked `launches` (the launch commands reach
    # run.launch.check_launch; tests/security/test_launch_validation.py reads this mark).
    p = sub.add_parser("shell", parents=[common], help="a login shell in the sandbox (the default)")
    p.set_defaults(launches=True)
    _run_options(p)
    p = sub.add_parser("run", parents=[common], help="run a harness in a sandbox",
                       usage="aishell run [options] [HARNESS [ARGS...]]")
    p.set_defaults(launches=True)
    _run_options(p)
    p = sub.add_parser("exec", parents=[common], help="run one command in a fresh sandbox",
                       usage="aishell exec [options] [--] COMMAND [ARGS...]")
    p.set_defaults(launches=True)
    _lock_options(p)
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments")
    p = sub.add_parser("attach", parents=[common], help="join a running sandbox",
                       usage="aishell attach [options] NAME [-- COMMAND...]")
    p.add_argument("sandbox", metavar="NAME")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="a command to run instead of joining")
    p = sub.add_parser("ps", parents=[common], help="this project's sandboxes")
    p.add_argument("-a", "--all", action="store_true", help="every project's sandboxes")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("stop", parents=[common], help="stop a sandbox")
    p.add_argument("sandbox", metavar="NAME")
    p.add_argument("-t", "--time", type=int, default=10, help="seconds before it is killed")
    p = sub.add_parser("migrate", parents=[common],
                       help="convert the original .aishell/config.yaml into aishell.toml")
    p.add_argument("--dry-run", action="store_true", help="print the TOML, write nothing")
    p.add_argument("--force", action="store_true", help="overwrite an existing aishell.toml")

    p = sub.add_parser("gitleaks", parents=[common],
                       help="scan the project for secrets with Gitleaks, in a sandbox",
                       usage="aishell gitleaks [options] [--] [GITLEAKS ARGS...]")
    p.set_defaults(launches=True)
    p.add_argument("gitleaks_args", nargs=argparse.REMAINDER,
                   help="passed to gitleaks (default: scan the project's files)")


def _completion_command(sub: Any) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh, fish)",
                       description="Print a completion script. bash: eval \"$(aishell completion "
                       "bash)\" in ~/.bashrc; zsh: eval \"$(aishell completion zsh)\" after "
                       "compinit; fish: aishell completion fish | source.")
    p.add_argument("shell", choices=SHELLS)


def _store_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("gc", parents=[common], help="remove store items no project, pin or container needs")
    p.add_argument("--dry-run", action="store_true", help="show what would be removed; remove nothing")
    p.add_argument("--older-than", metavar="DURATION",
                   help="grace period: only remove items older than this (30d, 12h, 90m; default 1h)")
    p.add_argument("--keep-generations", metavar="N", type=int,
                   help="generations per project kept for rollback (default 3)")
    p.add_argument("--max-freed", metavar="SIZE", help="stop once this much is freed (e.g. 10G)")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("store", parents=[common], help="inspect the store")
    store_sub = p.add_subparsers(dest="store_command", metavar="COMMAND", required=True)
    ls = store_sub.add_parser("ls", parents=[common],
                              help="every item: kind, size, created, last used, the roots that keep it")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    from aishell.cli import substitute as cli_substitute  # noqa: PLC0415 - argparse only

    cli_substitute.add_parsers(store_sub, common)

    p = sub.add_parser("pin", parents=[common], help="make this project's env and images a named root")
    p.add_argument("name", nargs="?", help="the pin's name (default: the project directory's name)")
    p.add_argument("--list", action="store_true", help="list the pins")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("unpin", parents=[common], help="drop a named root")
    p.add_argument("name", help="the pin to drop")

    p = sub.add_parser("rollback", parents=[common],
                       help="restore the project's previous aishell.lock from its recorded generation")
    p.add_argument("--to", metavar="N", type=int, help="the generation to restore (default: the previous)")
    p.add_argument("--list", action="store_true", help="list the recorded generations")
    p.add_argument("--dry-run", action="store_true", help="say what would be restored")
    p.add_argument("--force", action="store_true",
                   help="overwrite an aishell.lock that no generation recorded")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _lock_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("lock", parents=[common], help="resolve aishell.toml into aishell.lock")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when the lock is missing or stale; write nothing")
    p.add_argument("--upgrade", action="store_true", help="move every harness to its newest match")
    p.add_argument("--upgrade-package", action="append", default=[], metavar="NAME[@VERSION]",
                   help="move only this harness (or node/npm); repeatable")
    p.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("add", parents=[common], help="add harnesses to aishell.toml, then lock")
    p.add_argument("specs", nargs="+", metavar="SPEC",
                   help="claude, claude@^2.1, codex@0.169.0, npm:@scope/pkg@range, name=npm:pkg@range")
    p.add_argument("--no-lock", action="store_true", help="edit aishell.toml only")

    p = sub.add_parser("remove", parents=[common],
                       help="remove harnesses from aishell.toml, then lock")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--no-lock", action="store_true", help="edit aishell.toml only")

    p = sub.add_parser("init", parents=[common], help="write a commented starter aishell.toml")
    p.add_argument("--harness", action="append", default=[], metavar="SPEC",
                   help="a harness to list (repeatable)")

    p = sub.add_parser("tree", parents=[common], help="the locked closure, per harness")
    p.add_argument("--json", action="store_true", help="machine-readable output")




def command_names(parser: argparse.ArgumentParser) -> list[str]:
    """Every subcommand ``parser`` knows."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def launch_commands(parser: argparse.ArgumentParser) -> list[str]:
    """The subcommands that start a sandbox (marked ``launches``): every one of them goes
    through the launch pipeline's security preflight (``run.launch.check_launch``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return [name for name, sub in action.choices.items() if sub.get_default("launches")]
    return []
