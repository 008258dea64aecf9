"""Shell completions: `aishell completion bash|zsh|fish` and the hidden `aishell __complete`.

The scripts are generated from the argument parser, so every subcommand and flag is
there by construction. What changes while the user types (harness names in the
project's aishell.toml, running sandboxes, pins) is asked for at completion time with
``aishell __complete KIND [--project DIR]``: it reads the manifest with tomllib and
lists containers over the engine socket, never importing the Docker SDK, and prints
nothing (exit 0) when the engine or the manifest cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from aishell.cli.completion_text import BASH, FISH_HEAD, ZSH
from aishell.cli.parser import SHELLS, build_parser

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


# -- the hidden entry: dynamic words -------------------------------------------------
def _project(args: Sequence[str]) -> str | None:
    for i, word in enumerate(args):
        if word == "--project" and i + 1 < len(args):
            return args[i + 1]
        if word.startswith("--project="):
            return word.split("=", 1)[1]
    return None


def words(kind: str, project: str | None) -> list[str]:
    """The words of ``kind`` for the project at ``project`` (default: found from the cwd)."""
    from pathlib import Path  # noqa: PLC0415

    from aishell.cli.routing import _project_harnesses  # noqa: PLC0415 - tomllib only
    from aishell.lock import catalog  # noqa: PLC0415

    options = ["--project", project] if project else []
    if kind == "catalog":
        return sorted(catalog.CATALOG)
    if kind == "manifest":
        return sorted(_project_harnesses(options))
    if kind == "harnesses":
        return sorted({*catalog.CATALOG, *_project_harnesses(options)})
    if kind == "pins":
        from aishell.paths import default_paths  # noqa: PLC0415
        from aishell.store import index  # noqa: PLC0415

        return [p.name for p in index.pins(default_paths())]
    if kind == "sandboxes":
        from aishell.engine import Engine  # noqa: PLC0415 - socket HTTP; the SDK stays unloaded
        from aishell.project import config  # noqa: PLC0415
        from aishell.run.sandbox import LABEL  # noqa: PLC0415

        root = Path(project).resolve() if project else config.find_project(Path.cwd())
        found = Engine().list_containers({f"{LABEL}.kind": "sandbox",
                                          f"{LABEL}.project": str(root)}, all=False)
        return sorted({str((c.get("Labels") or {}).get(f"{LABEL}.name", "")) for c in found} - {""})
    return []


def complete(args: Sequence[str]) -> int:
    """``aishell __complete KIND [--project DIR]``: one word per line; silent on any failure."""
    if not args:
        return 0
    try:
        found = words(args[0], _project(args[1:]))
    except Exception:  # a completion must never print a traceback at the prompt
        return 0
    if found:
        sys.stdout.write("\n".join(found) + "\n")
    return 0


# -- the scripts ---------------------------------------------------------------------
def _value_options(top: Sequence[Option], commands: Sequence[Command]) -> list[str]:
    names = {n for o in top for n in o.names if o.takes_value}
    for c in commands:
        names |= {n for o in c.options for n in o.names if o.takes_value}
    return sorted(names)


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    top, commands = model(parser)
    if shell == "bash":
        return _bash(top, commands)
    if shell == "zsh":
        return _zsh(top, commands)
    return _fish(top, commands)


def _flags(options: Sequence[Option]) -> str:
    return " ".join(n for o in options for n in o.names)


def _static() -> dict[str, str]:
    """The fixed word lists, space-separated."""
    from aishell.lock import catalog  # noqa: PLC0415

    return {"catalog": " ".join(sorted(catalog.CATALOG)), "store": "ls", "shells": " ".join(SHELLS)}


def _bash(top: Sequence[Option], commands: Sequence[Command]) -> str:
    cases = "\n".join(f"            {c.name}) opts=\"{_flags(c.options)}\" ;;" for c in commands)
    positional = "\n".join(f"            {k}) kind={v} ;;" for k, v in POSITIONAL.items())
    values = "\n".join(f"        {k}) kind={v} ;;" for k, v in VALUE_KIND.items())
    static = "\n".join(f"        {k}) COMPREPLY=($(compgen -W \"{v}\" -- \"$cur\")) ;;"
                       for k, v in _static().items())
    return BASH.format(
        commands=" ".join(c.name for c in commands), top=_flags(top),
        value_options="|".join(_value_options(top, commands)), cases=cases,
        positional=positional, values=values, static=static, single="|".join(SINGLE),
    )


def _zsh_quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "'\\''").replace(":", "\\:")


def _zsh(top: Sequence[Option], commands: Sequence[Command]) -> str:
    described = "\n".join(f"        '{c.name}:{_zsh_quote(c.help)}'" for c in commands)
    cases = "\n".join(f"            {c.name}) opts=({_flags(c.options)}) ;;" for c in commands)
    positional = "\n".join(f"            {k}) kind={v} ;;" for k, v in POSITIONAL.items())
    values = "\n".join(f"        {k}) kind={v} ;;" for k, v in VALUE_KIND.items())
    static = "\n".join(f"        {k}) compadd -- {v} ;;" for k, v in _static().items())
    return ZSH.format(
        described=described, top=_flags(top),
        value_options="|".join(_value_options(top, commands)), cases=cases,
        positional=positional, values=values, static=static, single="|".join(SINGLE),
    )


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_option(option: Option, condition: str) -> str:
    parts = ["complete -c aishell", f"-n {_fish_quote(condition)}"]
    for name in option.names:
        parts.append(f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}")
    if option.takes_value:
        kind = next((VALUE_KIND[n] for n in option.names if n in VALUE_KIND), "")
        parts.append("-r")
        if kind == "dirs":
            parts.append("-a '(__fish_complete_directories)'")
        elif kind == "files":
            parts.append("-F")
        elif kind:
            parts.append(f"-f -a '(__aishell_words {kind})'")
        else:
            parts.append("-f")
    parts.append(f"-d {_fish_quote(option.help)}")
    return " ".join(parts)


def _fish(top: Sequence[Option], commands: Sequence[Command]) -> str:
    static = "\n".join(f"        case {k}\n            string split ' ' -- '{v}'; return"
                       for k, v in _static().items())
    lines = [FISH_HEAD.format(static=static,
                               value_options=" ".join(_value_options(top, commands)))]
    for option in top:
        lines.append(_fish_option(option, "__aishell_no_command"))
    for c in commands:
        lines.append(f"complete -c aishell -n __aishell_no_command -f -a {c.name} "
                     f"-d {_fish_quote(c.help)}")
    lines.append("complete -c aishell -n __aishell_no_command -f -a '(__aishell_words harnesses)' "
                 "-d harness")
    for c in commands:
        for option in c.options:
            lines.append(_fish_option(option, f"__aishell_command_is {c.name}"))
    for name, kind in POSITIONAL.items():
        cond = f"__aishell_command_is {name}; and __aishell_first_positional"
        lines.append(f"complete -c aishell -n {_fish_quote(cond)} -f -a '(__aishell_words {kind})'")
    return "\n".join(lines) + "\n"


def dispatch(_ctx: object, ns: argparse.Namespace, _routed: object) -> int:
    print(script(ns.shell, build_parser()), end="")
    return 0
