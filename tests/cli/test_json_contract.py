"""The `--json` contract: every listing and report prints one `aishell.<kind>` document whose
keys are exactly those docs/json.md lists (run against the real engine)."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from aishell.paths import Paths
from aishell.render import JSON_SCHEMA_VERSION
from aishell.store import engineroots
from tests.conftest import run_aishell
from tests.fixtures_lock import write_manifest

DOC = Path(__file__).resolve().parents[2] / "docs" / "json.md"


def documented() -> dict[str, tuple[set[str], dict[str, set[str]]]]:
    """schema → (top-level keys, {field: keys of its items}) from the table in docs/json.md."""
    out: dict[str, tuple[set[str], dict[str, set[str]]]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`aishell."):
            continue
        schema = cells[1].strip("`")
        keys = {k.removesuffix("[]") for k in re.findall(r"`([^`]+)`", cells[2])}
        items: dict[str, set[str]] = {}
        for part in re.split(r"(?=`[a-z_]+(?:\[\])?`:)", cells[3]):
            words = re.findall(r"`([^`]+)`", part)
            if words:
                items[words[0].removesuffix("[]")] = set(words[1:])
        out[schema] = (keys, items)
    return out


def check_document(stdout: str, schema: str, compared: set[str] | None = None) -> dict:
    """The document without its envelope; item keys are compared where an item exists
    (``compared`` collects which were, so a test can show it saw every kind of item)."""
    doc = json.loads(stdout)
    assert doc.pop("schema") == schema
    assert doc.pop("version") == JSON_SCHEMA_VERSION
    keys, items = documented()[schema]
    assert set(doc) == keys, f"{schema}: undocumented {set(doc) - keys}, missing {keys - set(doc)}"
    for field, item_keys in items.items():
        value = doc[field]
        if value == []:
            continue
        item = value[0] if isinstance(value, list) else value
        assert isinstance(item, dict), f"{schema}.{field} is not an object"
        assert set(item) == item_keys, f"{schema}.{field}: {set(item) ^ item_keys}"
        if compared is not None:
            compared.add(f"{schema}.{field}")
    return doc


def test_the_table_covers_every_command_with_json() -> None:
    from aishell.cli import build_parser
    from aishell.cli.completion import model

    with_json = {c.name for c in model(build_parser())[1] if any("--json" in o.names for o in c.options)}
    table = DOC.read_text(encoding="utf-8")
    for name in with_json:
        assert f"`aishell {name} " in table, f"`aishell {name} --json` is not in docs/json.md"
    assert {"aishell.error", "aishell.check", "aishell.lock", "aishell.ps"} <= set(documented())


def test_an_error_under_json_is_an_error_document(tmp_path: Path) -> None:
    r = run_aishell("verify", "--json", cwd=tmp_path)
    assert r.returncode == 1
    doc = check_document(r.stdout, "aishell.error")
    assert doc["error"] == f"{tmp_path / 'aishell.lock'} does not exist: no env to verify"
    assert doc["hint"] and doc["exit_code"] == 1
    assert r.stderr.startswith("error: ")


@pytest.mark.engine
def test_every_report_matches_the_documented_keys(tmp_path, lock_env, foundation_tag, engine) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    write_manifest(project, 'a = { npm = "agent-a", version = "^1" }')

    compared: set[str] = set()

    def doc(schema: str, *args: str, rc: int = 0) -> dict:
        r = run_aishell(*args, "--json", cwd=project)
        assert r.returncode == rc, r.stderr
        return check_document(r.stdout, schema, compared)

    assert doc("aishell.lock", "lock", "--check", rc=1)["status"] == "missing"
    assert doc("aishell.lock", "lock")["status"] == "written"
    synced = doc("aishell.sync", "sync")
    volume = synced["env"]["volume"]
    name = f"aishell-test-json-{uuid.uuid4().hex[:8]}"
    other_home = Paths(config=tmp_path / "other" / "config", state=tmp_path / "other" / "state",
                       cache=tmp_path / "other" / "cache")
    try:
        doc("aishell.check", "check")
        doc("aishell.info", "info")
        doc("aishell.tree", "tree")
        assert doc("aishell.verify", "verify")["ok"] is True
        # another aishell home on this engine, so `store ls` and gc list one
        engineroots.publish(engine, other_home, {f"env:{synced['env']['env_id']}"})
        doc("aishell.store", "store", "ls")
        doc("aishell.pin", "pin", "json-contract")
        doc("aishell.pins", "pin", "--list")
        doc("aishell.generations", "rollback", "--list")
        doc("aishell.rollback", "rollback", "--dry-run", "--to", "1", "--force")
        doc("aishell.gc", "gc", "--dry-run")
        # A labelled container is a sandbox to `ps` (it reads labels, nothing else).
        argv = [engine.cli, "run", "-d", "--rm", "--name", name, "--entrypoint", "sleep",
                "--label", "dev.aishell.kind=sandbox", "--label", f"dev.aishell.project={project}",
                "--label", "dev.aishell.name=box", foundation_tag, "120"]
        subprocess.run(argv, check=True, capture_output=True)
        assert [s["name"] for s in doc("aishell.ps", "ps")["sandboxes"]] == ["box"]
        every = {f"{schema}.{field}" for schema, (_, items) in documented().items() for field in items}
        assert compared == every  # every kind of item was produced once and compared
    finally:
        for v in engine.list_volumes({engineroots.HOME: engineroots.home_id(other_home)}):
            engine.remove_volume(str(v["Name"]))
        subprocess.run([engine.cli, "rm", "-f", name], capture_output=True, check=False)
        run_aishell("unpin", "json-contract", cwd=project)
        subprocess.run([engine.cli, "volume", "rm", "-f", volume], capture_output=True, check=False)
