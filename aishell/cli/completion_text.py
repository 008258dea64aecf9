"""The shell text of the completion scripts (filled in by :mod:`aishell.cli.completion`)."""


BASH = r"""# aishell completion for bash: eval "$(aishell completion bash)"
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


ZSH = r"""#compdef aishell
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


FISH_HEAD = r"""# aishell completion for fish: aishell completion fish | source
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
