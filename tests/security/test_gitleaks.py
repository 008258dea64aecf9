"""`aishell gitleaks`: the command it runs, scan records, freshness, and a real scan."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from aishell import cli
from aishell.run import gitleaks as gitleaks_command
from aishell.security import gitleaks
from tests.fixtures_security import (
    context,
    make_tree,
    remove_containers,
)

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
# A fake AWS access key id: the shape gitleaks' aws-access-token rule looks for.
FAKE_KEY = "aws_access_key_id = AKIAIOSFODNN7REALKEY\n"


def test_no_arguments_scan_the_project_files(tmp_path):
    argv = gitleaks.gitleaks_argv([], tmp_path)
    assert argv == ["gitleaks", "detect", "--no-git", "--redact", "--verbose", "--source",
                    str(tmp_path)]
    assert gitleaks.gitleaks_argv(["--no-banner"], tmp_path)[-1] == "--no-banner"


def test_new_style_commands_are_translated(tmp_path):
    assert gitleaks.gitleaks_argv(["dir", "."], tmp_path) == [
        "gitleaks", "detect", "--no-git", "--source", "."]
    assert gitleaks.gitleaks_argv(["git", "-v"], tmp_path) == [
        "gitleaks", "detect", "--source", str(tmp_path), "-v"]


def test_other_arguments_pass_through(tmp_path):
    assert gitleaks.gitleaks_argv(["version"], tmp_path) == ["gitleaks", "version"]
    assert gitleaks.gitleaks_argv(["detect", "--log-opts", "-5"], tmp_path) == [
        "gitleaks", "detect", "--log-opts", "-5"]


@pytest.mark.parametrize(("argv", "code", "log", "done"), [
    (["gitleaks", "detect"], 0, "INF scan completed in 8ms\nINF no leaks found", True),
    (["gitleaks", "detect"], 1, "INF scan completed in 8ms\nWRN leaks found: 2", True),
    (["gitleaks", "detect"], 1, 'FTL unknown flag: --bogus', False),
    (["gitleaks", "detect"], 1, "WRN partial scan completed\nWRN leaks found: 1", False),
    (["gitleaks", "version"], 0, "8.16.0", False),
    (["gitleaks", "detect", "--help"], 0, "detect secrets in code", False),
])
def test_only_completed_scans_count(argv, code, log, done):
    assert gitleaks.completed(argv, code, log) is done


def test_records_are_written_atomically_per_project(tmp_path):
    state = tmp_path / "state"
    a, b = tmp_path / "a", tmp_path / "b"
    gitleaks.record_scan(state, a, exit_code=1, seconds=0.5, now=NOW)
    gitleaks.record_scan(state, b, exit_code=0, seconds=0.2, now=NOW)
    record = gitleaks.last_scan(state, a)
    assert record is not None
    assert (record.project, record.exit_code, record.when) == (str(a), 1, NOW)
    assert gitleaks.last_scan(state, b).exit_code == 0  # type: ignore[union-attr]
    files = sorted(p.name for p in (state / "gitleaks").iterdir())
    assert len(files) == 2 and not any(f.startswith(".tmp") for f in files)
    data = json.loads((state / "gitleaks" / files[0]).read_text())
    assert set(data) == {"project", "scanned_at", "exit_code", "seconds"}


def test_a_corrupt_record_counts_as_no_scan(tmp_path):
    state = tmp_path / "state"
    gitleaks.record_scan(state, tmp_path, exit_code=0, seconds=1, now=NOW)
    (path,) = (state / "gitleaks").iterdir()
    path.write_text("{not json", encoding="utf-8")
    assert gitleaks.last_scan(state, tmp_path) is None


def test_freshness_message_by_age(tmp_path):
    record = gitleaks.record_scan(tmp_path, tmp_path, exit_code=0, seconds=1, now=NOW)
    assert "no Gitleaks scan recorded" in (gitleaks.freshness_message(None, 7) or "")
    assert gitleaks.freshness_message(record, 7, NOW + dt.timedelta(days=6)) is None
    old = gitleaks.freshness_message(record, 7, NOW + dt.timedelta(days=12))
    assert old is not None and "12 days ago" in old and "more than 7" in old
    assert gitleaks.freshness_message(record, 30, NOW + dt.timedelta(days=12)) is None
    assert gitleaks.freshness_message(None, 0) is None  # 0 turns the warning off


def test_freshness_days_come_from_config(tmp_path):
    ctx = context(tmp_path / "p", "[security]\ngitleaks_freshness_days = 2\n")
    gitleaks.record_scan(ctx.paths.state, ctx.project, exit_code=0, seconds=1, now=NOW)
    assert gitleaks.freshness_warning(ctx, NOW + dt.timedelta(days=1)) is None
    assert "more than 2" in (gitleaks.freshness_warning(ctx, NOW + dt.timedelta(days=3)) or "")


@pytest.fixture
def project_containers(tmp_path):
    yield
    remove_containers({"dev.aishell.project": str((tmp_path / "proj").resolve())})


@pytest.mark.engine
@pytest.mark.usefixtures("foundation_tag", "project_containers")
def test_a_real_scan_finds_a_planted_key_and_clears_the_warning(tmp_path):
    ctx = context(tmp_path / "proj")
    make_tree(ctx.project, ["src/settings.py"], FAKE_KEY)
    make_tree(ctx.project, ["README.md"], "nothing to see\n")
    assert "no Gitleaks scan recorded" in (gitleaks.freshness_warning(ctx) or "")

    result = gitleaks_command.scan(ctx, [])
    assert result.exit_code == 1  # gitleaks' "leaks found"
    assert "aws-access-token" in result.stdout
    assert "src/settings.py" in result.stdout
    assert "AKIAIOSFODNN7REALKEY" not in result.stdout + result.stderr  # redacted
    assert result.recorded
    record = gitleaks.last_scan(ctx.paths.state, ctx.project)
    assert record is not None and record.exit_code == 1
    assert gitleaks.freshness_warning(ctx) is None


@pytest.mark.engine
@pytest.mark.usefixtures("foundation_tag", "project_containers")
def test_cli_passes_the_exit_code_back_and_failed_runs_are_not_recorded(tmp_path, capsys):
    ctx = context(tmp_path / "proj")
    make_tree(ctx.project, ["clean.txt"], "hello\n")
    assert cli.main(["--project", str(ctx.project), "gitleaks", "--", "--bogus-flag"]) != 0
    assert gitleaks.last_scan(ctx.paths.state, ctx.project) is None
    capsys.readouterr()
    assert cli.main(["--project", str(ctx.project), "gitleaks"]) == 0
    assert "Gitleaks scan recorded (no leaks found" in capsys.readouterr().err
    assert gitleaks.last_scan(ctx.paths.state, ctx.project) is not None
