"""Env volumes against the real engine: volume operations, one-off containers, archives,
population with its crash and concurrency guarantees, and `aishell verify`."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from dataclasses import replace

import jsonschema
import pytest

from aishell.engine import ARCHIVE_MOUNT, Engine
from aishell.errors import EngineConflict, EngineError, EngineNotFound
from aishell.paths import default_paths
from aishell.request import ContainerRequest, Mount
from aishell.store.envs import (
    InstallStep,
    PopulateFailed,
    compute_digest,
    is_complete,
    populate,
    read_marker,
    volume_name,
)
from aishell.store.treedigest import digest_directory
from aishell.store.verify import verify
from tests.conftest import run_aishell
from tests.fixtures_store import POPULATE_SCRIPT, TEST_LABELS
from tests.store.test_treedigest import GOLDEN, make_tree
from tests.store.test_verify import SCHEMA as VERIFY_SCHEMA

pytestmark = pytest.mark.engine

INSTALL = (
    "mkdir -p /tools/bin /tools/lib/empty && printf '#!/bin/sh\\necho hi\\n' > /tools/bin/hi "
    "&& chmod 700 /tools/bin/hi && echo data > /tools/lib/data && chmod 600 /tools/lib/data "
    "&& ln -s bin/hi /tools/hi"
)


@pytest.fixture
def env_id(engine: Engine):
    """A fresh env id; its volume and any container labelled with it are removed after."""
    value = secrets.token_hex(32)
    yield value
    for c in engine.list_containers({"dev.aishell.env-id": value, **TEST_LABELS}):
        engine.remove_container(str(c["Id"]), force=True)
    engine.remove_volume(volume_name(value))


@pytest.fixture
def volume(engine: Engine):
    name = f"aishell-test-{secrets.token_hex(6)}"
    yield name
    for c in engine.list_containers(TEST_LABELS):
        if any(m.get("Name") == name for m in c.get("Mounts") or []):
            engine.remove_container(str(c["Id"]), force=True)
    engine.remove_volume(name)


def one_off(image: str, command: str, *mounts: Mount, **kw) -> ContainerRequest:
    return ContainerRequest(image=image, command=("sh", "-c", command), mounts=mounts,
                            labels=dict(TEST_LABELS), entrypoint=(), interactive=False, **kw)


def step(command: str = INSTALL, **kw) -> InstallStep:
    return InstallStep("install", ("sh", "-c", command), **kw)


def do_populate(engine, env_id, image, steps=None, **kw):
    return populate(engine, env_id, "linux/amd64", steps or [step()], paths=default_paths(),
                    image=image, extra_labels=TEST_LABELS, **kw)


# -- engine volume operations -------------------------------------------------------------


def test_volume_create_inspect_list_remove(engine, volume):
    labels = {"dev.aishell.managed": "1", "dev.aishell.kind": "env", **TEST_LABELS}
    created = engine.create_volume(volume, labels)
    assert created["Name"] == volume
    info = engine.volume_inspect(volume)
    assert info is not None and info["Labels"] == labels
    assert volume in [v["Name"] for v in engine.list_volumes({"dev.aishell.kind": "env",
                                                              **TEST_LABELS})]
    assert volume not in [v["Name"] for v in engine.list_volumes({"dev.aishell.kind": "nope"})]
    engine.remove_volume(volume)
    assert engine.volume_inspect(volume) is None
    engine.remove_volume(volume)  # absent is fine by default
    with pytest.raises(EngineNotFound):
        engine.remove_volume(volume, missing_ok=False)


def test_removing_a_volume_in_use_is_a_conflict(engine, volume, foundation_tag):
    engine.create_volume(volume, TEST_LABELS)
    container = engine.create_container(one_off(foundation_tag, "true",
                                                Mount(volume, "/v", kind="volume")))
    try:
        with pytest.raises(EngineConflict):
            engine.remove_volume(volume)
    finally:
        engine.remove_container(container, force=True)


def test_run_to_completion_gives_exit_code_and_output(engine, foundation_tag):
    marker = {"dev.aishell.test-run": secrets.token_hex(4)}
    lines: list[str] = []
    req = one_off(foundation_tag, "echo one; echo two >&2; printf three; exit 3")
    req = replace(req, labels={**req.labels, **marker})
    code, output = engine.run_to_completion(req, on_line=lines.append)
    assert code == 3
    assert sorted(output.splitlines()) == ["one", "three", "two"]
    assert sorted(lines) == ["one", "three", "two"]
    assert engine.list_containers(marker) == []  # removed afterwards


def test_run_to_completion_passes_env_values_outside_argv(engine, foundation_tag, monkeypatch):
    monkeypatch.setenv("B", "from host")
    req = replace(one_off(foundation_tag, 'echo "$A-$B"'), env={"A": "x y"},
                  env_passthrough=("B",))
    code, output = engine.run_to_completion(req)
    assert code == 0
    assert output.strip() == "x y-from host"


def test_run_to_completion_timeout_stops_the_container(engine, foundation_tag):
    started = time.monotonic()
    with pytest.raises(EngineError, match="did not finish within 1 s"):
        engine.run_to_completion(one_off(foundation_tag, "sleep 30"), timeout=1)
    assert time.monotonic() - started < 15


def test_missing_image_is_not_found(engine):
    with pytest.raises(EngineNotFound):
        engine.run_to_completion(one_off("aishell-test-no-such-image:0", "true"))


def test_volume_archive_digest_equals_the_host_digest(engine, volume, foundation_tag, tmp_path):
    tree = make_tree(tmp_path / "tree")
    tree.chmod(0o755)
    engine.create_volume(volume, TEST_LABELS)
    code, out = engine.run_to_completion(one_off(
        foundation_tag, "cp -a /src/. /dst/",
        Mount(str(tree), "/src", read_only=True), Mount(volume, "/dst", kind="volume")))
    assert code == 0, out
    assert digest_directory(tree) == GOLDEN
    for via in ("engine", "host", "auto"):
        assert compute_digest(engine, volume, image=foundation_tag, labels=TEST_LABELS,
                              via=via) == GOLDEN
    with engine.volume_archive(volume, image=foundation_tag, labels=TEST_LABELS,
                               path="bin/tool") as (chunks, root):
        assert root == "tool"
        assert b"echo tool" in b"".join(chunks)


def test_host_path_is_only_offered_for_a_local_engine(engine, volume):
    engine.create_volume(volume, TEST_LABELS)
    path = engine.volume_host_path(volume)
    assert path is not None and path.is_dir()  # root on a local engine, as in CI
    assert Engine(docker_host="tcp://127.0.0.1:9").volume_host_path(volume) is None
    assert engine.volume_host_path(volume + "-missing") is None


def test_volume_archive_of_a_missing_volume_creates_nothing(engine, volume, foundation_tag):
    with pytest.raises(EngineNotFound), engine.volume_archive(volume, image=foundation_tag):
        pass
    assert engine.volume_inspect(volume) is None
    assert ARCHIVE_MOUNT.startswith("/")


# -- population ----------------------------------------------------------------------------


def test_populate_builds_once_then_reuses(engine, env_id, foundation_tag):
    steps: list[str] = []
    first = do_populate(engine, env_id, foundation_tag, on_step=steps.append)
    assert first.built
    assert steps == ["install", "make the env world-readable", "compute the tree digest",
                     "write the completion marker"]
    assert first.volume == volume_name(env_id)
    assert first.marker.env_id == env_id and first.marker.files == 2
    info = engine.volume_inspect(first.volume)
    assert info is not None
    assert info["Labels"] == {"dev.aishell.managed": "1", "dev.aishell.kind": "env",
                              "dev.aishell.env-id": env_id,
                              "dev.aishell.platform": "linux/amd64", **TEST_LABELS}
    assert is_complete(engine, env_id, image=foundation_tag) == first.marker
    for via in ("engine", "auto"):
        assert read_marker(engine, first.volume, image=foundation_tag, labels=TEST_LABELS,
                           via=via) == first.marker
    second = do_populate(engine, env_id, foundation_tag)
    assert not second.built and second.marker == first.marker
    digest = compute_digest(engine, first.volume, image=foundation_tag, labels=TEST_LABELS,
                            via="engine")
    assert first.marker.matches(digest)
    assert engine.list_containers({"dev.aishell.env-id": env_id}) == []


def test_populated_env_is_world_readable_read_only(engine, env_id, foundation_tag):
    result = do_populate(engine, env_id, foundation_tag)
    req = replace(
        one_off(foundation_tag, ""),
        command=("gosu", "4321:4321", "sh", "-c",
                 "cat /tools/lib/data && /tools/hi && touch /tools/x"),
        mounts=(Mount(result.volume, "/tools", read_only=True, kind="volume", no_copy=True),),
    )
    code, out = engine.run_to_completion(req)
    assert out.splitlines()[:2] == ["data", "hi"]  # 0600/0700 files made a+rX by population
    assert "Read-only file system" in out
    assert code != 0


def test_a_volume_without_labels_or_marker_is_not_complete_and_gets_rebuilt(
        engine, env_id, foundation_tag):
    name = volume_name(env_id)
    engine.create_volume(name, TEST_LABELS)  # e.g. auto-created by a bare `docker run -v`
    assert is_complete(engine, env_id, image=foundation_tag) is None
    result = do_populate(engine, env_id, foundation_tag)
    assert result.built
    assert engine.volume_inspect(name)["Labels"]["dev.aishell.env-id"] == env_id
    assert is_complete(engine, env_id, image=foundation_tag) == result.marker


def test_a_failing_step_raises_and_leaves_no_volume(engine, env_id, foundation_tag):
    with pytest.raises(PopulateFailed, match="step 'install' exited with code 7") as exc:
        do_populate(engine, env_id, foundation_tag, [step("echo broken >&2; exit 7")])
    assert "broken" in exc.value.log
    assert engine.volume_inspect(volume_name(env_id)) is None
    assert engine.list_containers({"dev.aishell.env-id": env_id}) == []


def test_kill_9_during_population_leaves_no_marker_and_the_next_populate_repairs(
        engine, env_id, foundation_tag):
    proc = subprocess.Popen(
        [sys.executable, "-c", POPULATE_SCRIPT, env_id, foundation_tag,
         "mkdir -p /tools/bin && echo half > /tools/bin/half && sleep 60"],
        stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not engine.list_containers({"dev.aishell.env-id": env_id, **TEST_LABELS},
                                          all=False):
            assert time.monotonic() < deadline, "the install step never started"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        proc.kill()  # SIGKILL: no finally blocks, no clean-up
        proc.communicate()
    name = volume_name(env_id)
    assert engine.volume_inspect(name) is not None  # the half-built volume is still there
    for via in ("engine", "auto"):
        assert read_marker(engine, name, image=foundation_tag, labels=TEST_LABELS,
                           via=via) is None
    assert is_complete(engine, env_id, image=foundation_tag) is None
    assert engine.list_containers({"dev.aishell.env-id": env_id})  # the orphan still runs

    result = do_populate(engine, env_id, foundation_tag)
    assert result.built
    assert is_complete(engine, env_id, image=foundation_tag) == result.marker
    assert engine.list_containers({"dev.aishell.env-id": env_id}) == []
    with engine.volume_archive(name, image=foundation_tag, path="bin") as (chunks, _root):
        listing = b"".join(chunks)
    assert b"bin/hi" in listing and b"half" not in listing


@pytest.mark.parametrize("kill_at", ["make the env world-readable", "compute the tree digest",
                                     "write the completion marker"])
def test_kill_9_at_each_later_point_leaves_no_marker(engine, env_id, foundation_tag, kill_at):
    proc = subprocess.run([sys.executable, "-c", POPULATE_SCRIPT, env_id, foundation_tag,
                           INSTALL, "", kill_at], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == -9, proc.stderr
    assert f"step {kill_at}" in proc.stdout
    assert engine.volume_inspect(volume_name(env_id)) is not None
    assert is_complete(engine, env_id, image=foundation_tag) is None
    result = do_populate(engine, env_id, foundation_tag)
    assert result.built
    assert is_complete(engine, env_id, image=foundation_tag) == result.marker


def test_leftover_helper_containers_do_not_block_a_rebuild(engine, env_id, foundation_tag):
    """A process killed while reading a volume leaves its helper container behind."""
    name = volume_name(env_id)
    engine.create_volume(name, {"dev.aishell.managed": "1", "dev.aishell.kind": "env",
                                "dev.aishell.env-id": env_id, **TEST_LABELS})
    leftover = engine.create_container(replace(
        one_off(foundation_tag, "true", Mount(name, "/aishell-volume", kind="volume")),
        labels={"dev.aishell.kind": "helper", "dev.aishell.volume": name, **TEST_LABELS}))
    result = do_populate(engine, env_id, foundation_tag)
    assert result.built
    assert leftover not in [c["Id"] for c in engine.list_containers(TEST_LABELS)]


def test_a_foreign_container_on_the_volume_is_a_clear_conflict(engine, env_id, foundation_tag):
    name = volume_name(env_id)
    engine.create_volume(name, TEST_LABELS)
    other = engine.create_container(one_off(foundation_tag, "true",
                                            Mount(name, "/tools", kind="volume")))
    try:
        with pytest.raises(EngineConflict, match="a container still uses it") as exc:
            do_populate(engine, env_id, foundation_tag)
        assert f"--filter volume={name}" in (exc.value.hint or "")
    finally:
        engine.remove_container(other, force=True)


def test_two_concurrent_populates_build_once(engine, env_id, foundation_tag, tmp_path):
    count = tmp_path / "count"
    count.mkdir()
    command = f"echo run >> /count/runs && sleep 2 && {INSTALL}"
    argv = [sys.executable, "-c", POPULATE_SCRIPT, env_id, foundation_tag, command, str(count)]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    results = [json.loads(line.split(" ", 1)[1]) for out in outputs
               for line in out.splitlines() if line.startswith("result ")]
    assert sorted(r["built"] for r in results) == [False, True]
    assert results[0]["digest"] == results[1]["digest"]
    assert (count / "runs").read_text() == "run\n"
    assert any(line.startswith("wait waiting for another aishell to finish building env")
               for out in outputs for line in out.splitlines())


def test_a_corrupted_file_makes_verify_fail(engine, env_id, foundation_tag):
    result = do_populate(engine, env_id, foundation_tag)
    report = verify(engine, default_paths(), wanted=[env_id], image=foundation_tag,
                    labels=TEST_LABELS)
    assert [e.status for e in report.envs] == ["ok"] and report.ok
    r = run_aishell("verify", env_id[:16], "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, VERIFY_SCHEMA)
    assert doc["ok"] is True
    assert doc["envs"][0]["status"] == "ok" and doc["envs"][0]["files"] == 2

    code, out = engine.run_to_completion(one_off(
        foundation_tag, "echo tampered >> /tools/lib/data",
        Mount(result.volume, "/tools", kind="volume", no_copy=True)))
    assert code == 0, out
    report = verify(engine, default_paths(), wanted=[env_id], image=foundation_tag,
                    labels=TEST_LABELS)
    assert [e.status for e in report.envs] == ["mismatch"] and not report.ok
    assert report.envs[0].recorded == result.marker.tree_digest != report.envs[0].actual
    r = run_aishell("verify", result.volume)
    assert r.returncode == 1
    assert "tree digest mismatch" in r.stderr
    assert "Traceback" not in r.stderr


def test_verify_reports_an_incomplete_volume_without_failing(engine, env_id, foundation_tag):
    name = volume_name(env_id)
    engine.create_volume(name, {"dev.aishell.managed": "1", "dev.aishell.kind": "env",
                                "dev.aishell.env-id": env_id, **TEST_LABELS})
    report = verify(engine, default_paths(), wanted=[env_id], image=foundation_tag,
                    labels=TEST_LABELS)
    assert [e.status for e in report.envs] == ["incomplete"] and report.ok


def test_verify_of_an_unknown_env_is_an_error():
    r = run_aishell("verify", "f" * 40)
    assert r.returncode == 1
    assert "no env volume matches" in r.stderr


def test_a_symlinked_marker_is_no_marker(engine, env_id, foundation_tag, tmp_path):
    """A marker must be a file in the volume, never a link out to a file of the host."""
    result = do_populate(engine, env_id, foundation_tag)
    outside = tmp_path / "marker.json"
    outside.write_text(result.marker.to_json())
    code, out = engine.run_to_completion(one_off(
        foundation_tag, f"ln -sf {outside} /tools/.aishell-env.json",
        Mount(result.volume, "/tools", kind="volume", no_copy=True)))
    assert code == 0, out
    for via in ("auto", "engine"):
        assert read_marker(engine, result.volume, image=foundation_tag, labels=TEST_LABELS,
                           via=via) is None
    assert is_complete(engine, env_id, image=foundation_tag) is None


def test_populate_waits_while_gc_holds_the_store(engine, env_id, foundation_tag):
    code = (
        "import time; from aishell.store import storelock; from aishell.paths import default_paths\n"
        "with storelock.exclusive(default_paths()):\n"
        "    print('held', flush=True); time.sleep(1.5)"
    )
    gc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert gc.stdout is not None and gc.stdout.readline().strip() == "held"
    waits: list[str] = []
    started = time.monotonic()
    result = do_populate(engine, env_id, foundation_tag, on_wait=waits.append)
    gc.communicate(timeout=60)
    assert result.built
    assert time.monotonic() - started >= 1.0
    assert len(waits) == 1 and "the store is locked" in waits[0]
