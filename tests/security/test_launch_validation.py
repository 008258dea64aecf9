"""Every launch path runs the security validation: the launch commands come from the CLI.

`run`, `shell`, `exec`, `gitleaks`, the harness shorthand and `--detach` all pass through
``run.launch.check_launch``. The list is not written here: it is read from the parser
(subcommands marked ``launches``), so a new launch command is checked the day it lands.
"""

from __future__ import annotations

import pytest

from aishell import cli
from aishell.lock import catalog
from tests.fixtures_run import run_project_fixture  # noqa: F401 - the `run_project` fixture

pytestmark = pytest.mark.engine

# Arguments a launch command needs to get as far as its preflight; default: none.
NEEDS = {"exec": ["--", "true"]}


def _subparser(name: str):
    parser = cli.build_parser()
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return action.choices[name]
    raise AssertionError("no subcommands")


def launch_invocations() -> list[list[str]]:
    """Every way to start a sandbox: each launch command (and --detach where it has one),
    bare `aishell`, and the harness shorthand."""
    harness = next(iter(catalog.CATALOG))
    out: list[list[str]] = [[], [harness], ["--detach", harness]]
    for name in cli.launch_commands(cli.build_parser()):
        out.append([name, *NEEDS.get(name, [])])
        sub = _subparser(name)
        if any("--detach" in a.option_strings for a in sub._actions):
            out.append([name, "--detach", *NEEDS.get(name, [])])
    return out


def test_the_cli_knows_its_launch_commands():
    names = cli.launch_commands(cli.build_parser())
    assert {"shell", "run", "exec", "gitleaks"} <= set(names)
    assert "attach" not in names  # joins a sandbox that was checked when it started


def _dangerous(rp, *, strict: bool, arg: str = "--privileged") -> None:
    (rp.path / "aishell.toml").write_text(
        "[security]\n"
        f"strict = {'true' if strict else 'false'}\n"
        "detection = false\n"
        "[run]\n"
        f'mounts = ["{rp.bin_dir}:/tools/bin:ro"]\n'
        f'docker_args = ["--label", "dev.aishell.test=1", "{arg}"]\n',
        encoding="utf-8",
    )


@pytest.mark.parametrize("argv", launch_invocations(), ids=lambda a: " ".join(a) or "(bare)")
def test_strict_mode_refuses_every_launch(run_project, argv):
    rp = run_project
    _dangerous(rp, strict=True)
    r = rp.aishell(*argv)
    assert r.returncode == 1, (argv, r.stdout, r.stderr)
    assert "refused by [security] strict = true" in r.stderr
    assert "aishell.toml:6 [run] docker_args: --privileged" in r.stderr
    assert "Traceback" not in r.stderr
    assert rp.containers() == []  # nothing was created


def test_exec_warns_like_run(run_project):
    rp = run_project
    # --privileged cannot start on this engine (nested); a capability shows the same path
    _dangerous(rp, strict=False, arg="--cap-add=SYS_PTRACE")
    for argv in (["exec", "--", "true"], ["run", "pi", "--", "--version"]):
        r = rp.aishell(*argv)
        assert r.returncode == 0, (argv, r.stderr)
        assert "aishell.toml:6 [run] docker_args: --cap-add=SYS_PTRACE" in r.stderr, argv
