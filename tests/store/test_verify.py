"""`aishell verify` output: the versioned JSON contract and the human lines (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from aishell.cli.verify import print_report
from aishell.paths import default_paths
from aishell.project.context import Context
from aishell.store.verify import EnvCheck, VerifyReport
from tests.conftest import run_aishell

SCHEMA = {
    "type": "object",
    "required": ["schema", "version", "ok", "envs"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": "aishell.verify"},
        "version": {"const": 1},
        "ok": {"type": "boolean"},
        "envs": {"type": "array", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["env_id", "volume", "platform", "status", "recorded", "actual",
                         "files", "bytes", "seconds"],
            "properties": {
                "env_id": {"type": "string"},
                "volume": {"type": "string"},
                "platform": {"type": "string"},
                "status": {"enum": ["ok", "mismatch", "incomplete"]},
                "recorded": {"type": ["string", "null"]},
                "actual": {"type": ["string", "null"]},
                "files": {"type": "integer", "minimum": 0},
                "bytes": {"type": "integer", "minimum": 0},
                "seconds": {"type": "number", "minimum": 0},
            },
        }},
    },
}

ENV = "ab" * 32
REPORT = VerifyReport((
    EnvCheck(ENV, "aishell-env-" + ENV[:32], "linux/amd64", "ok", "cd" * 32, "cd" * 32,
             10, 2_500_000, 0.01),
    EnvCheck("ef" * 32, "aishell-env-" + "ef" * 16, "linux/amd64", "mismatch", "01" * 32,
             "02" * 32, 3, 4, 0.02),
    EnvCheck("12" * 32, "aishell-env-" + "12" * 16, "linux/arm64", "incomplete", None, None,
             0, 0, 0.0),
))


def ctx(**kw) -> Context:
    return Context(project=Path.cwd(), paths=default_paths(), color=False, **kw)


def test_json_follows_the_versioned_schema(capsys):
    print_report(ctx(json=True), REPORT)
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["ok"] is False
    assert [e["status"] for e in doc["envs"]] == ["ok", "mismatch", "incomplete"]


def test_only_a_mismatch_fails():
    assert not REPORT.ok
    assert VerifyReport((REPORT.envs[0], REPORT.envs[2])).ok


def test_human_output(capsys):
    print_report(ctx(), REPORT)
    out, err = capsys.readouterr()
    assert f"✓ env {ENV[:12]} (linux/amd64): 10 files, 2.5 MB" in out
    assert "! env 121212121212 (linux/arm64): incomplete" in out
    assert "✗ env efefefefefef (linux/amd64): tree digest mismatch" in err
    assert "`aishell sync --force` rebuilds it" in err


def test_quiet_prints_only_mismatches(capsys):
    print_report(ctx(quiet=True), REPORT)
    out, err = capsys.readouterr()
    assert out == ""
    assert "tree digest mismatch" in err


def test_env_ids_and_all_are_exclusive(tmp_path):
    r = run_aishell("verify", "--all", "abc", cwd=tmp_path)
    assert r.returncode == 2
    assert "pass env ids or --all, not both" in r.stderr


def test_without_arguments_it_explains_what_to_pass(tmp_path):
    r = run_aishell("verify", cwd=tmp_path)
    assert r.returncode == 1
    assert "aishell verify --all" in r.stderr
    assert "Traceback" not in r.stderr
