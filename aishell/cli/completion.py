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

from aishell.cli.completion_model import (
    POSITIONAL,
    SINGLE,
    VALUE_KIND,
    Command,
    Option,
    _flags,
    _static,
    _value_options,
    model,
)


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


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    top, commands = model(parser)
    if shell == "bash":
        return _bash(top, commands)
    if shell == "zsh":
        return _zsh(top, commands)
    return _fish(top, commands)


def _bash(top: Sequence[Option], commands: Sequence[Command]) -> str:
    cases = "\n".join(f"            {c.name}) opts=\"{_flags(c.options)}\" ;;" for c in commands)
    positional = "\n".join(f"            {k}) kind={v} ;;" for k, v in POSITIONAL.items())
    values = "\n".join(f"        {k}) kind={v} ;;" for k, v in VALUE_KIND.items())
    static = "\n".join(f"        {k}) COMPREPLY=($(compgen -W \"{v}\" -- \"$cur\")) ;;"
                       for k, v in _static().items())
    return _BASH.format(
        commands=" ".join(c.name for c in commands), top=_flags(top),
        value_options="|".join(_value_options(top, commands)), cases=cases,
        positional=positional, values=values, static=static, single="|".join(SINGLE),
    )


_BASH = r"""# aishell completion for bash: eval "$(aishell completion bash)"
_aishell_dynamic() {{
    command aishell __complete "$1" "${{@:2}}" 2>/dev/null
}}

_aishell() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=""
    [ "$COMP_CWORD" -gt 0 ] && prev=${{COMP_WORDS[COMP_CWORD-1]}}
    local commands="{commands}"
    local i=1 word cmd="" npos=0 project=()
    while [ "$i" -lt "$COMP_CWORD" ]; do
        word=${{COMP_WORDS[i]}}
        case "$word" in
            --project) project=(--project "${{COMP_WORDS[i+1]}}"); i=$((i + 2)); continue ;;
            --) [ -n "$cmd" ] && npos=$((npos + 1)) ;;
            {value_options}) i=$((i + 2)); continue ;;
            -*) ;;
            *) if [ -z "$cmd" ]; then cmd=$word; else npos=$((npos + 1)); fi ;;
        esac
        i=$((i + 1))
    done
    COMPREPLY=()
    local kind=""
    case "$prev" in
{values}
        {value_options}) return 0 ;;
    esac
    if [ -z "$kind" ]; then
        if [ -z "$cmd" ]; then
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "{top}" -- "$cur"))
            else
                local harnesses=$(_aishell_dynamic harnesses "${{project[@]}}")
                COMPREPLY=($(compgen -W "$commands $harnesses" -- "$cur"))
            fi
            return 0
        fi
        local opts=""
        case "$cmd" in
{cases}
            *) return 0 ;;  # a harness: every later word is the harness's own
        esac
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$opts" -- "$cur"))
            return 0
        fi
        case "$cmd" in
{positional}
        esac
        case "$kind" in
            {single}) [ "$npos" -gt 0 ] && return 0 ;;
        esac
    fi
    case "$kind" in
        dirs) COMPREPLY=($(compgen -d -- "$cur")) ;;
        files) COMPREPLY=($(compgen -f -- "$cur")) ;;
{static}
        ?*) COMPREPLY=($(compgen -W "$(_aishell_dynamic "$kind" "${{project[@]}}")" -- "$cur")) ;;
    esac
    return 0
}}
complete -o default -F _aishell aishell
"""


def _zsh_quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "'\\''").replace(":", "\\:")


def _zsh(top: Sequence[Option], commands: Sequence[Command]) -> str:
    described = "\n".join(f"        '{c.name}:{_zsh_quote(c.help)}'" for c in commands)
    cases = "\n".join(f"            {c.name}) opts=({_flags(c.options)}) ;;" for c in commands)
    positional = "\n".join(f"            {k}) kind={v} ;;" for k, v in POSITIONAL.items())
    values = "\n".join(f"        {k}) kind={v} ;;" for k, v in VALUE_KIND.items())
    static = "\n".join(f"        {k}) compadd -- {v} ;;" for k, v in _static().items())
    return _ZSH.format(
        described=described, top=_flags(top),
        value_options="|".join(_value_options(top, commands)), cases=cases,
        positional=positional, values=values, static=static, single="|".join(SINGLE),
    )


_ZSH = r"""#compdef aishell
# aishell completion for zsh: eval "$(aishell completion zsh)" after compinit,
# or save it as _aishell in a directory on $fpath.
_aishell() {{
    local cur=${{words[CURRENT]}} prev=${{words[CURRENT-1]}}
    local -a commands=(
{described}
    )
    local -a project opts
    local i=2 word cmd="" npos=0 kind=""
    while (( i < CURRENT )); do
        word=${{words[i]}}
        case $word in
            --project) project=(--project "${{words[i+1]}}"); (( i += 2 )); continue ;;
            {value_options}) (( i += 2 )); continue ;;
            -*) ;;
            *) if [[ -z $cmd ]]; then cmd=$word; else (( npos += 1 )); fi ;;
        esac
        (( i += 1 ))
    done
    case $prev in
{values}
        {value_options}) return 0 ;;
    esac
    if [[ -z $kind ]]; then
        if [[ -z $cmd ]]; then
            if [[ $cur == -* ]]; then
                compadd -- {top}
            else
                _describe -t commands 'aishell command' commands
                local -a harnesses=(${{(f)"$(aishell __complete harnesses $project 2>/dev/null)"}})
                compadd -X harness -- $harnesses
            fi
            return 0
        fi
        case $cmd in
{cases}
            *) _default; return 0 ;;  # a harness: every later word is the harness's own
        esac
        if [[ $cur == -* ]]; then
            compadd -- $opts
            return 0
        fi
        case $cmd in
{positional}
        esac
        if [[ $kind == ({single}) ]] && (( npos > 0 )); then
            _default
            return 0
        fi
    fi
    case $kind in
        dirs) _directories ;;
        files) _files ;;
{static}
        ?*) local -a found=(${{(f)"$(aishell __complete $kind $project 2>/dev/null)"}})
            compadd -- $found ;;
        *) _default ;;
    esac
}}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _aishell "$@"
else
    compdef _aishell aishell
fi
"""


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
    lines = [_FISH_HEAD.format(static=static,
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


_FISH_HEAD = r"""# aishell completion for fish: aishell completion fish | source
# (or save it as ~/.config/fish/completions/aishell.fish)
function __aishell_project
    set -l tokens (commandline -opc)
    for i in (seq (count $tokens))
        if test "$tokens[$i]" = --project; and test $i -lt (count $tokens)
            echo --project; echo $tokens[(math $i + 1)]
        else if string match -q -- '--project=*' $tokens[$i]
            echo $tokens[$i]
        end
    end
end

function __aishell_words
    switch $argv[1]
{static}
    end
    command -q aishell; and command aishell __complete $argv[1] (__aishell_project) 2>/dev/null
end

# The words before the cursor after `aishell`, without options (and their values).
function __aishell_plain_words
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    for t in $tokens
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $t
            case {value_options}
                set skip 1
            case '-*'
            case '*'
                echo $t
        end
    end
end

function __aishell_no_command
    test (count (__aishell_plain_words)) -eq 0
end

function __aishell_command_is
    set -l plain (__aishell_plain_words)
    test (count $plain) -ge 1; and test "$plain[1]" = $argv[1]
end

function __aishell_first_positional
    test (count (__aishell_plain_words)) -eq 1
end

complete -c aishell -f
"""


def dispatch(_ctx: object, ns: argparse.Namespace, _routed: object) -> int:
    """`aishell completion SHELL`: the script, generated from the whole parser."""
    from aishell.cli.parser import build_parser  # noqa: PLC0415

    print(script(ns.shell, build_parser()), end="")
    return 0
