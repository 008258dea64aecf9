from __future__ import annotations

import subprocess
import sys

from aishell import __version__, cli
from aishell.cli import crash as errors_report
from tests.conftest import run_aishell


def test_version():
    r = run_aishell("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"aishell {__version__}"


def test_version_imports_neither_the_sdk_nor_rich():
    code = ("import sys; from aishell.cli import main; main(['--version']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'rich')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip().endswith("[]")


def test_unknown_flag_is_a_usage_error():
    r = run_aishell("--frobnicate")
    assert r.returncode == 2
    assert "unrecognized arguments: --frobnicate" in r.stderr
    assert "Traceback" not in r.stderr


def test_engine_not_running_is_one_line_with_a_hint(tmp_path):
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    r = run_aishell("exec", "--", "true", cwd=tmp_path, env=env)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[0] == f"error: the container engine is not running (no answer on {tmp_path}/no.sock)"
    assert lines[1].startswith("hint: start it")
    assert "Traceback" not in r.stderr


def test_check_reports_a_missing_engine_and_fails(tmp_path):
    r = run_aishell("check", cwd=tmp_path, env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock",
                                                "NO_COLOR": "1"})
    assert r.returncode == 1
    assert "✗ engine" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_malformed_manifest_is_one_line(tmp_path):
    (tmp_path / "aishell.toml").write_text("[run]\nmountz = []\n")
    r = run_aishell("exec", "--", "true", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == (
        f"error: {tmp_path / 'aishell.toml'}:2: unknown key `mountz` in [run]"
    )


def test_exec_needs_a_command(tmp_path):
    r = run_aishell("exec", cwd=tmp_path)
    assert r.returncode == 1
    assert "nothing to run" in r.stderr


def test_missing_project_directory(tmp_path):
    r = run_aishell("--project", str(tmp_path / "nope"), "exec", "--", "true")
    assert r.returncode == 1
    assert "project directory does not exist" in r.stderr


def test_crash_writes_a_bug_report(private_state, capsys):
    def boom() -> int:
        raise RuntimeError("kaboom")

    assert errors_report.guard(boom) == 1
    err = capsys.readouterr().err
    assert "aishell crashed: RuntimeError: kaboom" in err
    reports = list((private_state / "state" / "bug-reports").glob("crash-*.log"))
    assert len(reports) == 1
    assert "kaboom" in reports[0].read_text()


def test_a_failed_step_shows_its_last_lines_without_verbose(capsys):
    from aishell.store.envs import PopulateFailed

    log = "\n".join(f"line {n}" for n in range(1, 61))

    def failing() -> int:
        raise PopulateFailed("building env abc failed: step 'x' exited with code 3", log=log,
                             hint="the last lines of the step's output are shown above")

    assert errors_report.guard(failing) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "  | (20 earlier lines; -v shows every line)"
    assert err[1] == "  | line 21" and err[40] == "  | line 60"
    assert err[41:] == ["error: building env abc failed: step 'x' exited with code 3",
                        "hint: the last lines of the step's output are shown above"]


def test_ctrl_c_exits_130(capsys):
    def interrupted() -> int:
        raise KeyboardInterrupt

    assert errors_report.guard(interrupted) == 130


def test_help_lists_the_commands():
    text = cli.build_parser().format_help()
    for command in ("shell", "exec", "check", "info"):
        assert command in text
