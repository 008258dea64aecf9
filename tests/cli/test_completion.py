"""Shell completions, exercised in the real shells: bash (COMP_WORDS → COMPREPLY), fish
(`complete -C`), zsh (syntax and registration with compinit)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from aishell.cli import build_parser, command_names
from aishell.lock import catalog
from tests.conftest import run_aishell

BIN = str(Path(sys.executable).parent)  # the venv's bin: `aishell` is a console script there
_FN = ('c() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMPREPLY=(); _aishell;'
       ' printf "%s\\n" "${COMPREPLY[@]}"; echo "--"; }')


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}


def _script(shell: str) -> str:
    result = run_aishell("completion", shell)
    assert result.returncode == 0, result.stderr
    return result.stdout


def bash_complete(cwd: Path, *lines: list[str]) -> list[list[str]]:
    """Each argv's COMPREPLY, from one real bash that loaded `aishell completion bash`."""
    calls = "\n".join("c " + " ".join(f"'{w}'" for w in words) for words in lines)
    program = f'eval "$(aishell completion bash)"\n{_FN}\n{calls}\n'
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], cwd=cwd, env=_env(),
                         capture_output=True, text=True, check=True, timeout=60).stdout
    replies = out.split("--\n")[:-1]
    return [[w for w in r.splitlines() if w] for r in replies]


def fish_complete(cwd: Path, line: str) -> list[str]:
    program = f"aishell completion fish | source; complete -C {_fish_arg(line)}"
    out = subprocess.run(["fish", "--no-config", "-c", program], cwd=cwd, env=_env(),
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [row.split("\t")[0] for row in out.splitlines()]


def _fish_arg(line: str) -> str:
    return "'" + line.replace("'", "\\'") + "'"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "aishell.toml").write_text('[harnesses]\nmytool = "npm:cowsay@1"\nclaude = "*"\n')
    return root


def test_bash_registers_the_function_and_completes_every_command(project: Path) -> None:
    program = 'eval "$(aishell completion bash)"; complete -p aishell'
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], cwd=project, env=_env(),
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "complete -o default -F _aishell aishell"
    (first,) = bash_complete(project, ["aishell", ""])
    visible = [c for c in command_names(build_parser()) if not c.startswith("_")]
    assert set(visible) <= set(first)
    assert "__complete" not in first
    assert {*catalog.CATALOG, "mytool"} <= set(first)  # harnesses: the catalog and the manifest


def test_bash_completes_flags_positionals_and_values(project: Path) -> None:
    replies = bash_complete(
        project,
        ["aishell", "my"], ["aishell", "ps", "--j"], ["aishell", "store", ""],
        ["aishell", "store", "ls", "--j"], ["aishell", "run", ""], ["aishell", "run", "claude", ""],
        ["aishell", "claude", "--"], ["aishell", "remove", ""], ["aishell", "add", "co"],
        ["aishell", "lock", "--upgrade-package", ""], ["aishell", "--pro"],
        ["aishell", "completion", ""], ["aishell", "gc", "--older-than", ""],
    )
    assert replies == [
        ["mytool"], ["--json"], ["ls"], ["--json"],
        sorted({*catalog.CATALOG, "mytool"}),
        [],  # after the harness, every word is the harness's own (bash falls back to files)
        [], ["claude", "mytool"], ["codex", "copilot"], ["claude", "mytool"], ["--project"],
        ["bash", "zsh", "fish"], [],
    ]


def test_bash_reads_the_manifest_of_the_project_option(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (reply,) = bash_complete(elsewhere, ["aishell", "--project", str(project), "remove", ""])
    assert reply == ["claude", "mytool"]
    (reply,) = bash_complete(elsewhere, ["aishell", "remove", ""])
    assert reply == []  # no aishell.toml here: nothing, and no error at the prompt


def test_hidden_entry_is_silent_on_failure(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "aishell.toml").write_text("[harnesses\n")
    result = run_aishell("__complete", "manifest", "--project", str(bad))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    result = run_aishell("__complete", "sandboxes", "--project", str(bad),
                         env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert "__complete" not in run_aishell("--help").stdout


def test_fish_script_is_valid_and_completes(project: Path) -> None:
    fish = shutil.which("fish")
    assert fish, "fish is installed by scripts/provision.sh"
    path = project / "aishell.fish"
    path.write_text(_script("fish"))
    subprocess.run([fish, "--no-execute", str(path)], check=True)
    assert "mytool" in fish_complete(project, "aishell my")
    assert fish_complete(project, "aishell ps --j") == ["--json"]
    assert fish_complete(project, "aishell store ") == ["ls"]
    assert fish_complete(project, "aishell remove ") == ["claude", "mytool"]
    assert fish_complete(project, "aishell completion ") == ["bash", "fish", "zsh"]


def test_zsh_script_is_valid_and_registers(project: Path) -> None:
    zsh = shutil.which("zsh")
    assert zsh, "zsh is installed by scripts/provision.sh"
    path = project / "_aishell"
    path.write_text(_script("zsh"))
    subprocess.run([zsh, "--no-exec", str(path)], check=True)
    program = f'autoload -U compinit && compinit -u -D && source "{path}" && print -r -- $_comps[aishell]'
    out = subprocess.run([zsh, "-f", "-c", program], env=_env(), cwd=project,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "_aishell"


@pytest.mark.engine
def test_sandbox_names_come_from_the_engine(engine, foundation_tag, project: Path) -> None:
    from aishell.run.sandbox import LABEL

    name = f"aishell-test-completion-{uuid.uuid4().hex[:8]}"
    labels = {f"{LABEL}.kind": "sandbox", f"{LABEL}.project": str(project.resolve()),
              f"{LABEL}.name": "box1"}
    argv = [engine.cli, "run", "-d", "--rm", "--name", name, "--entrypoint", "sleep"]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    subprocess.run([*argv, foundation_tag, "120"], check=True, capture_output=True)
    try:
        replies = bash_complete(project, ["aishell", "attach", ""], ["aishell", "stop", "b"],
                                ["aishell", "attach", "box1", ""])
        assert replies[:2] == [["box1"], ["box1"]]
        assert replies[2] == []  # one name only; then the command is the user's
        assert fish_complete(project, "aishell attach ") == ["box1"]
    finally:
        subprocess.run([engine.cli, "rm", "-f", name], check=False, capture_output=True)
