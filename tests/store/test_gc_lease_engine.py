"""Homes' roots are a lease (aishell.store.engineroots), and what an interrupted `aishell lock`
leaves goes (aishell.store.captures): real homes' markers and heartbeats on the real engine,
their age set by the heartbeat's time label as an older publish would have written it."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from aishell.cli.store import print_gc
from aishell.errors import EngineError
from aishell.lock import refs as lockrefs
from aishell.paths import Paths, default_paths
from aishell.store import engineroots, index, inventory
from aishell.store import listing as store_cmd
from aishell.store.gc import collect_garbage
from tests.conftest import run_aishell
from tests.fixtures_gc import TEST_LABEL, Store

pytestmark = pytest.mark.engine
DAY = timedelta(days=1)


@pytest.fixture
def other_home(store: Store, tmp_path: Path) -> Iterator[Callable[[str], Paths]]:
    """Makes further aishell homes (state directories); removes what they published."""
    made: list[Paths] = []

    def make(name: str) -> Paths:
        root = tmp_path / f"home-{name}"
        made.append(Paths(config=root / "config", state=root / "state", cache=root / "cache"))
        return made[-1]

    yield make
    for paths in made:
        for v in store.engine.list_volumes({engineroots.HOME: engineroots.home_id(paths)}):
            with contextlib.suppress(EngineError):
                store.engine.remove_volume(str(v["Name"]))


def published(store: Store, paths: Paths) -> dict[str, dict[str, str]]:
    """A home's volumes on the engine: name -> labels."""
    return {str(v["Name"]): v.get("Labels") or {}
            for v in store.engine.list_volumes({engineroots.HOME: engineroots.home_id(paths)})}


def gc(store: Store, **kw):
    kw.setdefault("older_than", timedelta(0))
    return collect_garbage(store.paths, store.engine, label_filter=store.label, **kw)


def test_a_home_not_seen_for_longer_than_the_ttl_loses_its_protection(store, other_home, capsys):
    old_vol, old_env = store.env_volume()
    live_vol, live_env = store.env_volume()
    old, live = other_home("old"), other_home("live")
    # the old home last published 40 days ago: its heartbeat's label says so
    engineroots.publish(store.engine, old, {f"env:{old_env}"}, now=index.now_utc() - 40 * DAY)
    engineroots.publish(store.engine, live, {f"env:{live_env}"})
    before = published(store, old)
    assert len(before) == 2  # one marker, one heartbeat

    dry = gc(store, dry_run=True)
    homes = {h.id: h for h in dry.homes}
    assert homes[engineroots.home_id(old)].expired
    assert not homes[engineroots.home_id(live)].expired
    assert {c.name for c in dry.removed} == {old_vol}
    assert published(store, old) == before  # a dry run removes nothing
    print_gc(dry, as_json=False, quiet=False)
    out = capsys.readouterr().out
    assert (f"would remove the gc roots of home uid {os.getuid()} {old.state}: last "
            "seen 40 days ago, longer than [store] gc_home_ttl 30d; its 1 item(s)") in out
    assert "other aishell homes on this engine" in out and str(live.state) in out

    r = gc(store)
    assert {c.name for c in r.removed} == {old_vol}, r.candidates
    assert store.volumes() == {live_vol}
    assert published(store, old) == {}  # its marker and heartbeat are gone too
    assert len(published(store, live)) == 2
    print_gc(r, as_json=False, quiet=False)
    said = f"removed the gc roots of home uid {os.getuid()} {old.state}: last seen 40 days ago"
    assert said in capsys.readouterr().out


def test_gc_home_ttl_lengthens_the_lease(store, other_home):
    vol, env = store.env_volume()
    old = other_home("old")
    engineroots.publish(store.engine, old, {f"env:{env}"}, now=index.now_utc() - 40 * DAY)
    store.paths.config.mkdir(parents=True, exist_ok=True)
    store.paths.global_config.write_text('[store]\ngc_home_ttl = "60d"\n', encoding="utf-8")
    r = gc(store)
    assert r.removed == () and vol in store.volumes()
    assert r.home_ttl == 60 * DAY and not [h for h in r.homes if h.expired]
    assert len(published(store, old)) == 2


def test_a_home_without_a_heartbeat_is_aged_by_its_newest_marker(store, other_home):
    vol, env = store.env_volume()
    legacy = other_home("legacy")
    home = engineroots.home_id(legacy)
    # what an aishell before heartbeats published: markers only
    store.engine.create_volume(f"aishell-gcroot-{home}-0123456789abcdef", {
        engineroots.GCROOT: "ref", engineroots.HOME: home, engineroots.REF: f"env:{env}",
        engineroots.OWNER: f"uid 1500 {legacy.state}"})
    created = inventory._created_volume(
        store.engine.volume_inspect(f"aishell-gcroot-{home}-0123456789abcdef")["CreatedAt"])
    now = index.now_utc()
    found = {h.id: h for h in engineroots.other_homes(store.engine, store.paths, ttl=30 * DAY)}
    assert found[home].seen_by == "markers" and found[home].last_seen == created
    assert not found[home].expired and found[home].env_ids == (env,)
    assert gc(store).removed == () and vol in store.volumes()
    # 31 days on, nothing has refreshed it: it has expired
    later = engineroots.other_homes(store.engine, store.paths, ttl=30 * DAY, now=now + 31 * DAY)
    assert [h.expired for h in later if h.id == home] == [True]


def test_the_heartbeat_is_refreshed_once_a_day_and_brings_markers_back(store, other_home):
    paths = other_home("daily")
    home = engineroots.home_id(paths)
    t0 = index.now_utc().replace(microsecond=0)
    refs = {"env:" + "a" * 64, "image:sha256:" + "b" * 64}
    engineroots.publish(store.engine, paths, refs, now=t0)
    beat0 = engineroots.heartbeat_name(home, t0)
    vols = published(store, paths)
    assert set(vols) - {beat0} and vols[beat0][engineroots.SEEN] == engineroots._stamp(t0)
    assert {v.get(engineroots.REF) for n, v in vols.items() if n != beat0} == refs
    # within the day: no new heartbeat; a marker removed behind its back comes back
    marker = next(n for n in vols if n != beat0)
    store.engine.remove_volume(marker)
    engineroots.publish(store.engine, paths, refs, now=t0 + timedelta(hours=5))
    assert set(published(store, paths)) == set(vols)
    # a day on: the next heartbeat replaces the old one, the markers stay
    t1 = t0 + DAY + timedelta(minutes=1)
    engineroots.publish(store.engine, paths, refs, now=t1)
    after = published(store, paths)
    assert set(after) == set(vols) - {beat0} | {engineroots.heartbeat_name(home, t1)}
    # what it no longer references goes; the heartbeat stays
    engineroots.publish(store.engine, paths, set(), now=t1 + timedelta(hours=1))
    assert set(published(store, paths)) == {engineroots.heartbeat_name(home, t1)}


def test_a_home_that_comes_back_is_not_forgotten(store, other_home):
    paths = other_home("back")
    engineroots.publish(store.engine, paths, {"env:" + "c" * 64}, now=index.now_utc() - 40 * DAY)
    [home] = [h for h in engineroots.other_homes(store.engine, store.paths, ttl=30 * DAY)
              if h.id == engineroots.home_id(paths)]
    assert home.expired
    engineroots.publish(store.engine, paths, {"env:" + "c" * 64})  # it runs aishell again
    assert not engineroots.forget(store.engine, home)
    assert len(published(store, paths)) == 2


def _capture_volume(store: Store, suffix: str) -> str:
    name = f"aishell-capture-{store.tag}{suffix}"
    store.engine.create_volume(name, {"dev.aishell.managed": "1", "dev.aishell.kind": "capture",
                                      **store.label})
    return name


def test_a_stale_capture_volume_is_removed_and_a_fresh_one_kept(store, capsys):
    stale = _capture_volume(store, "s")
    time.sleep(2.5)  # the engine stamps volumes to the second
    fresh = _capture_volume(store, "f")
    info = store.engine.volume_inspect(fresh)
    now = inventory._created_volume(info["CreatedAt"])  # gc runs the instant it was created
    r = gc(store, older_than=timedelta(seconds=1), now=now)
    assert [c.name for c in r.captures] == [stale]
    assert [(c.name, c.status) for c in r.candidates if c.name == fresh] == [(fresh, "too-young")]
    assert store.volumes() == {fresh}
    print_gc(r, as_json=False, quiet=False)
    said = "removed 1 capture volume(s) (0 B) and 0 container(s) left by interrupted `aishell lock`"
    assert said in capsys.readouterr().out


def test_a_killed_locks_container_goes_with_its_volume_and_a_live_one_stays(store, foundation_tag):
    left, live = _capture_volume(store, "l"), _capture_volume(store, "r")
    api = store.engine.sdk().api
    labels = {"dev.aishell.managed": "1", "dev.aishell.kind": "capture", **store.label}

    def container(volume: str, command: str) -> str:
        c = api.create_container(foundation_tag, ["sh", "-c", command], labels=labels,
                                 host_config=api.create_host_config(binds=[f"{volume}:/tools"]),
                                 entrypoint=[])
        api.start(c)
        return str(c["Id"])

    dead = container(left, "head -c 100000 /dev/urandom > /tools/blob")
    assert api.wait(dead, timeout=60)["StatusCode"] == 0  # the lock that ran it was killed
    running = container(live, "sleep 300")
    r = gc(store, older_than=timedelta(hours=1), now=index.now_utc() + timedelta(hours=2))
    assert r.capture_containers == 1 and [c.name for c in r.captures] == [left]
    assert r.captures[0].size in (100000, -1)  # -1: an engine that reports no volume sizes
    assert store.volumes() == {live}
    ids = {str(c["Id"]) for c in store.engine.list_containers({TEST_LABEL: store.tag})}
    assert ids == {running}


def test_a_launch_publishes_its_images_from_the_recording_child(foundation_tag, tmp_path, engine):
    project = tmp_path / "launched"
    project.mkdir()
    r = run_aishell("exec", "--", "true", cwd=project)
    assert r.returncode == 0, r.stderr
    image = engine.image_inspect(foundation_tag)["Id"]
    home = engineroots.home_id(default_paths())
    deadline = time.monotonic() + 60
    refs: set[str] = set()
    while time.monotonic() < deadline and f"image:{image}" not in refs:
        time.sleep(0.2)  # the detached child publishes shortly after the hand-over
        vols = engine.list_volumes({engineroots.HOME: home})
        refs = {str((v.get("Labels") or {}).get(engineroots.REF)) for v in vols}
    assert f"image:{image}" in refs
    assert any((v.get("Labels") or {}).get(engineroots.GCROOT) == "home" for v in vols)


def test_rollback_publishes_the_env_its_lock_names_again(store):
    a, b = store.env_volume(), store.env_volume()
    project = store.project("rb", [a[1]])
    store.project("rb", [b[1]])
    store.paths.config.mkdir(parents=True, exist_ok=True)
    store.paths.global_config.write_text("[store]\nkeep_generations = 1\n", encoding="utf-8")
    engineroots.publish_home(store.engine, store.paths)  # only the lock on disk is a root: b
    assert {v.get(engineroots.REF) for v in published(store, store.paths).values()} >= {f"env:{b[1]}"}
    assert f"env:{a[1]}" not in {v.get(engineroots.REF) for v in published(store, store.paths).values()}
    store_cmd.rollback(store.paths, store.engine, project, to=1)
    assert f"env:{a[1]}" in {v.get(engineroots.REF) for v in published(store, store.paths).values()}


def test_a_lock_that_changes_the_env_id_publishes_it(store, tmp_path):
    from tests.lock.test_locking_cli import project_with_lock

    (tmp_path / "locked").mkdir()
    project = project_with_lock(tmp_path / "locked")
    lock = project / "aishell.lock"
    old = sorted(lockrefs.env_ids_of(lock.read_bytes()))
    index.record_use(store.paths, project, lock_path=lock, env_ids={"linux/amd64": old[0]},
                     images=[], lock_bytes=lock.read_bytes())
    engineroots.publish_home(store.engine, store.paths)
    refs = {v.get(engineroots.REF) for v in published(store, store.paths).values()}
    assert {f"env:{e}" for e in old} <= refs
    (project / "aishell.toml").write_text("[harnesses]\n")  # dropping the harness: a new env id
    r = run_aishell("lock", cwd=project, env={"npm_config_registry": "http://127.0.0.1:9/"})
    assert r.returncode == 0, r.stderr
    assert "could not publish" not in r.stderr
    new = sorted(lockrefs.env_ids_of(lock.read_bytes()))
    assert new != old
    refs = {v.get(engineroots.REF) for v in published(store, store.paths).values()}
    assert {f"env:{e}" for e in new} <= refs
    # generation 1 (what the sync recorded) keeps its env for rollback; the rest of the
    # old lock was only the project root's, and no longer is
    assert f"env:{old[0]}" in refs
    gone = set(old) - set(new) - {old[0]}
    assert gone and not {f"env:{e}" for e in gone} & refs


def test_a_sync_without_a_lock_publishes_the_images_it_records(foundation_tag, tmp_path, engine):
    project = tmp_path / "plain"
    project.mkdir()
    r = run_aishell("sync", cwd=project)
    assert r.returncode == 0, r.stderr
    image = engine.image_inspect(foundation_tag)["Id"]
    vols = engine.list_volumes({engineroots.HOME: engineroots.home_id(default_paths())})
    assert f"image:{image}" in {(v.get("Labels") or {}).get(engineroots.REF) for v in vols}
