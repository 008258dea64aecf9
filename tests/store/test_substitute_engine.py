"""Substituters against a real registry (docker-registry on loopback) and the real engine."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from aishell.engine import Engine
from aishell.errors import EngineError
from aishell.paths import default_paths
from aishell.store import envimage
from aishell.store.gc import collect_garbage
from tests.conftest import run_aishell
from tests.fixtures_lock import write_manifest
from tests.fixtures_oci import free_port

pytestmark = pytest.mark.engine

HARNESSES = 'a = { npm = "agent-a", version = "^1" }'


def sync_json(project: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    r = run_aishell("sync", "--json", *args, cwd=project, env=env)
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    doc["_rc"], doc["_stderr"] = r.returncode, r.stderr
    return doc


def forget_env(engine: Engine, env_id: str) -> None:
    """What another machine lacks: the env volume and its local archive image."""
    engine.remove_volume(envimage.envs.volume_name(env_id))
    with contextlib.suppress(EngineError):
        engine.remove_image(envimage.local_ref(env_id))


@pytest.fixture
def project(tmp_path, lock_env, foundation_tag, engine, private_state):
    config = private_state / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[store]\nkeep_archive = true\n")  # the restore archive is opt-in
    p = tmp_path / "proj"
    p.mkdir()
    write_manifest(p, HARNESSES)
    first = sync_json(p)
    assert first["_rc"] == 0 and first["env"]["state"] == "built", first["_stderr"]
    env_id = first["env"]["env_id"]
    yield p, first["env"]
    forget_env(engine, env_id)


@pytest.fixture(autouse=True)
def _forget_other_homes_roots(tmp_path: Path, engine: Engine) -> Iterator[None]:
    """A second home publishes its gc roots on the engine too: remove exactly those after."""
    yield
    from aishell.paths import default_paths
    from aishell.store import engineroots

    me = engineroots.home_id(default_paths({"AISHELL_HOME": str(tmp_path / "home-b")}))
    for v in engine.list_volumes({engineroots.HOME: me}):
        engine.remove_volume(str(v["Name"]))


def serve_doctored(engine: Engine, env_id: str, ref: str, dockerfile: str) -> None:
    """Push an image built from ``dockerfile`` as ``ref``; forget the env here."""
    subprocess.run(["docker", "build", "-q", "-t", ref, "-"], input=dockerfile.encode(),
                   check=True, capture_output=True)
    subprocess.run(["docker", "push", ref], check=True, capture_output=True)
    forget_env(engine, env_id)
    with contextlib.suppress(EngineError):
        engine.remove_image(ref)


def other_home(tmp_path: Path) -> dict[str, str]:
    """A second aishell home with an empty cache and no reachable npm registry."""
    home = tmp_path / "home-b"
    home.mkdir()
    return {"AISHELL_HOME": str(home), "npm_config_registry": f"http://127.0.0.1:{free_port()}/"}


def copy_project(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ("aishell.toml", "aishell.lock"):
        shutil.copy(src / name, dst / name)
    return dst


def test_push_from_one_home_and_substitute_into_another_without_npm(
        project, tmp_path, engine, lock_env, oci_registry):
    proj, built = project
    env_id = built["env_id"]
    assert engine.image_inspect(envimage.local_ref(env_id)) is not None  # the restore archive
    pushed = run_aishell("store", "push", "--json", "--to", oci_registry.path(), cwd=proj)
    assert pushed.returncode == 0, pushed.stderr
    item = json.loads(pushed.stdout)["pushed"][0]
    assert item["ref"] == f"{oci_registry.path()}/env:{env_id}" and item["digest"].startswith("sha256:")

    forget_env(engine, env_id)
    env_b = other_home(tmp_path)
    other = copy_project(proj, tmp_path / "other")
    mark = len(lock_env.log)
    got = sync_json(other, "--substituter", oci_registry.path(), env=env_b)
    assert got["_rc"] == 0, got["_stderr"]
    env = got["env"]
    assert env["state"] == "substituted" and env["source"] == oci_registry.path()
    assert env["tree_digest"] == built["tree_digest"] and env["files"] == built["files"]
    assert got["downloads"]["fetched"] == 0 and len(lock_env.log) == mark  # no npm, no tarball
    assert not list((Path(env_b["AISHELL_HOME"]) / "cache").rglob("*.tgz"))
    # The pulled image, digest checked, is now the local archive under its local name only.
    assert engine.image_inspect(envimage.local_ref(env_id)) is not None
    assert engine.image_inspect(item["ref"]) is None
    verified = run_aishell("verify", "--json", cwd=other, env=env_b)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # Removed by hand (or gc): the next sync restores it from the local archive, no npm.
    engine.remove_volume(envimage.envs.volume_name(env_id))
    again = sync_json(other, "--no-substitute", env=env_b)
    assert again["env"]["state"] == "restored" and again["env"]["source"] == "archive"
    assert again["env"]["tree_digest"] == built["tree_digest"] and len(lock_env.log) == mark


def test_a_tampered_image_is_refused_and_sync_builds(project, tmp_path, engine, oci_registry,
                                                      foundation_tag):
    proj, built = project
    env_id = built["env_id"]
    ref = f"{oci_registry.path('tampered')}/env:{env_id}"
    dockerfile = (f"FROM {envimage.local_ref(env_id)}\n"
                  f"COPY --from={foundation_tag} /etc/hostname /tools/h/a/package.json\n")
    serve_doctored(engine, env_id, ref, dockerfile)
    got = sync_json(proj, "--substituter", oci_registry.path("tampered"))
    assert got["_rc"] == 0
    assert got["env"]["state"] == "built" and got["env"]["tree_digest"] == built["tree_digest"]
    [attempt] = got["env"]["attempts"]
    assert attempt["outcome"] == "refused" and "tree digest" in attempt["reason"]
    warnings = [line for line in got["_stderr"].splitlines() if "was not used" in line]
    assert len(warnings) == 1 and "tree digest" in warnings[0]
    assert engine.image_inspect(ref) is None  # a refused image is not kept


def test_a_registry_that_is_down_costs_one_warning_and_a_local_build(project, engine):
    proj, built = project
    forget_env(engine, built["env_id"])
    down = f"127.0.0.1:{free_port()}/aishell"
    got = sync_json(proj, "--substituter", down)
    assert got["_rc"] == 0 and got["env"]["state"] == "built"
    assert got["env"]["attempts"][0]["outcome"] == "unreachable"
    lines = [ln for ln in got["_stderr"].splitlines() if down in ln]
    assert len(lines) == 1, got["_stderr"]


def test_a_substituter_serving_another_platform_is_refused(project, engine, oci_registry):
    proj, built = project
    env_id = built["env_id"]
    local = envimage.local_ref(env_id)
    ref = f"{oci_registry.path('arm')}/env:{env_id}"
    # The same tree, labelled as the arm64 build: what a mixed-up cache would serve.
    dockerfile = f'FROM {local}\nLABEL "dev.aishell.platform"="linux/arm64"\n'
    serve_doctored(engine, env_id, ref, dockerfile)
    got = sync_json(proj, "--substituter", oci_registry.path("arm"))
    assert got["env"]["state"] == "built"
    assert got["env"]["attempts"][0]["outcome"] == "refused"
    assert "linux/arm64" in got["env"]["attempts"][0]["reason"]


def test_substituters_from_config_global_first_and_a_missing_tag_falls_through(
        project, engine, oci_registry, private_state):
    proj, built = project
    run_aishell("store", "push", "--to", oci_registry.path("second"), cwd=proj)
    forget_env(engine, built["env_id"])
    (private_state / "config").mkdir(exist_ok=True)
    global_config = default_paths().global_config
    global_config.parent.mkdir(parents=True, exist_ok=True)
    global_config.write_text(f'[store]\nsubstituters = ["{oci_registry.path("empty")}"]\n')
    manifest = proj / "aishell.toml"
    manifest.write_text(manifest.read_text() +
                        f'\n[store]\nsubstituters = ["{oci_registry.path("second")}"]\n')
    got = sync_json(proj)
    assert got["env"]["state"] == "substituted", got["_stderr"]
    assert [a["source"] for a in got["env"]["attempts"]] == [
        oci_registry.path("empty"), oci_registry.path("second")]
    assert got["env"]["attempts"][0]["outcome"] == "missing"
    forget_env(engine, built["env_id"])
    assert sync_json(proj, "--no-substitute")["env"]["state"] == "built"


def test_rebuild_check_builds_again_and_compares(project, engine):
    proj, built = project
    got = sync_json(proj, "--rebuild-check")
    check = got["env"]["rebuild_check"]
    assert got["_rc"] == 0 and check["matches"] and check["tree_digest"] == built["tree_digest"]


def test_gc_keeps_an_archive_a_root_reaches_and_removes_it_when_none_does(project, engine):
    proj, built = project
    env_id = built["env_id"]
    only_this = {"dev.aishell.env-id": env_id}
    kept = collect_garbage(default_paths(), engine, older_than=timedelta(0),
                           label_filter=only_this)
    assert kept.reachable == 2 and not kept.candidates  # the volume and its archive
    assert engine.image_inspect(envimage.local_ref(env_id)) is not None
    (proj / "aishell.lock").unlink()
    gone = collect_garbage(default_paths(), engine, older_than=timedelta(0),
                           label_filter=only_this)
    removed = {(c.type, c.kind) for c in gone.candidates if c.status == "removed"}
    assert ("image", "env-image") in removed and ("volume", "env") in removed
    assert engine.image_inspect(envimage.local_ref(env_id)) is None
    assert os.environ["AISHELL_HOME"]  # gc ran in this test's own home
