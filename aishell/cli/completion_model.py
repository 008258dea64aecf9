"""The completion model: every command and option of the parser, and the fixed word lists."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from aishell.cli.parser import SHELLS

KINDS = ("harnesses", "manifest", "sandboxes", "pins")


# Positional words each command completes (after its options); `store` takes its subcommand.
POSITIONAL = {"run": "harnesses", "attach": "sandboxes", "stop": "sandboxes", "add": "catalog",
              "remove": "manifest", "unpin": "pins", "store": "store", "completion": "shells"}


# Kinds whose words are fixed when the script is generated (the rest: `aishell __complete`).
# Of the positional kinds, these complete only the first word after the command.
SINGLE = ("harnesses", "sandboxes", "store", "shells")


# Option values with a completion of their own; any other value option completes nothing.
VALUE_KIND = {"--project": "dirs", "--volume": "files", "--upgrade-package": "manifest",
              "--harness": "catalog"}


@dataclass(frozen=True)
class Option:
    names: tuple[str, ...]
    takes_value: bool
    help: str


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    options: tuple[Option, ...]


def _options(parser: argparse.ArgumentParser, *, nested: bool = True) -> tuple[Option, ...]:
    """The parser's options, and (``nested``) its own subcommands' (`store ls --json`)."""
    out: list[Option] = []
    for action in parser._actions:
        if nested and isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += [o for o in _options(sub) if all(o.names != have.names for have in out)]
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        if all(have.names != tuple(action.option_strings) for have in out):
            out.append(Option(tuple(action.option_strings), action.nargs != 0, action.help or ""))
    return tuple(out)


def model(parser: argparse.ArgumentParser) -> tuple[tuple[Option, ...], tuple[Command, ...]]:
    """The global options and every visible subcommand with its options."""
    commands: list[Command] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help or "" for a in action._choices_actions}
        for name, sub in action.choices.items():
            if name in helps:  # hidden commands have no help entry
                commands.append(Command(name, helps[name], _options(sub)))
    return _options(parser, nested=False), tuple(commands)


# -- the scripts ---------------------------------------------------------------------
def _value_options(top: Sequence[Option], commands: Sequence[Command]) -> list[str]:
    names = {n for o in top for n in o.names if o.takes_value}
    for c in commands:
        names |= {n for o in c.options for n in o.names if o.takes_value}
    return sorted(names)


def _flags(options: Sequence[Option]) -> str:
    return " ".join(n for o in options for n in o.names)


def _static() -> dict[str, str]:
    """The fixed word lists, space-separated."""
    from aishell.lock import catalog  # noqa: PLC0415

    return {"catalog": " ".join(sorted(catalog.CATALOG)), "store": "ls", "shells": " ".join(SHELLS)}
