"""gc, pins, generations and rollback on the real engine, confined to each test's own items."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import threading
import time
from datetime import timedelta

import pytest

from aishell.errors import AishellError
from aishell.store import index, storelock
from aishell.store import listing as store_cmd
from aishell.store.gc import collect_garbage
from aishell.store.index import ImageRef
from tests.conftest import run_aishell
from tests.fixtures_gc import Store

pytestmark = pytest.mark.engine

LATER = timedelta(hours=2)  # "now" for gc runs that must see the test's items as old


def gc(s: Store, **kw):
    kw.setdefault("now", index.now_utc() + LATER)
    return collect_garbage(s.paths, s.engine, label_filter=s.label, **kw)


def removed_names(result) -> set[str]:
    return {c.name for c in result.candidates if c.status in ("removed", "would-remove")}


def test_shared_env_survives_until_both_projects_are_gone(store):
    vol, eid = store.env_volume()
    a = store.project("a", [eid])
    b = store.project("b", [eid])
    listing = store_cmd.list_store(store.paths, store.engine, label_filter=store.label)
    assert listing.shared_envs == ((vol, 2),)

    shutil.rmtree(a)
    r = gc(store)
    assert vol in store.volumes()
    assert [d.path for d in r.dropped_roots] == [str(a)]
    assert r.removed == ()

    (b / "aishell.lock").unlink()  # lock deleted: b dangles too
    r = gc(store)
    assert [d.reason for d in r.dropped_roots] == ["aishell.lock was deleted"]
    assert removed_names(r) == {vol}
    assert vol not in store.volumes()
    assert index.load(store.paths).projects == {}


def test_lock_that_no_longer_references_the_env_frees_it(store):
    old, old_id = store.env_volume()
    new, new_id = store.env_volume()
    project = store.project("p", [old_id])
    (project / "aishell.lock").write_text(
        (project / "aishell.lock").read_text().replace(old_id, new_id))
    r = gc(store, keep_generations=0)
    assert removed_names(r) == {old}
    assert store.volumes() == {new}


def test_pin_survives_until_unpinned(store):
    vol, eid = store.env_volume()
    img = store.image("ext", kind="extension")
    project = store.project("pinned", [eid], images=[ImageRef("extension", img, "")])
    result = store_cmd.pin_project(store.paths, project, "keep-me")
    assert result.pin.env_ids == (eid,) and not result.replaced
    shutil.rmtree(project)

    r = gc(store)
    assert r.removed == ()
    assert vol in store.volumes() and img in store.images()
    listing = store_cmd.list_store(store.paths, store.engine, label_filter=store.label)
    assert {i.name: i.roots for i in listing.items}[vol] == ("pin:keep-me",)

    index.unpin(store.paths, "keep-me")
    r = gc(store)
    assert removed_names(r) == {vol, f"aishell-gctest-{store.tag}:ext"}
    assert store.volumes() == set() and store.images() == set()


def test_generations_keep_n_and_rollback_restores_the_previous_lock(store):
    vols = [store.env_volume() for _ in range(4)]
    project = store.project("gen", [vols[0][1]])
    lock = project / "aishell.lock"
    texts = [lock.read_bytes()]
    for _, eid in vols[1:]:
        store.project("gen", [eid])  # re-lock + sync with a new env: a new generation
        texts.append(lock.read_bytes())
    gens, current = index.generations(store.paths, project)
    assert [g.number for g in gens] == [2, 3, 4] and current == 4  # N = 3 kept

    r = gc(store)
    assert removed_names(r) == {vols[0][0]}  # generation 1 fell out: its env goes
    assert store.volumes() == {v for v, _ in vols[1:]}

    back = store_cmd.rollback(store.paths, store.engine, project)
    assert (back.from_generation, back.to_generation, back.env_present) == (4, 3, True)
    assert lock.read_bytes() == texts[2]
    assert oct(lock.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    again = store_cmd.rollback(store.paths, store.engine, project)
    assert again.to_generation == 2 and lock.read_bytes() == texts[1]

    lock.write_text(lock.read_text() + "# hand edit\n")  # not recorded by any sync
    with pytest.raises(AishellError, match="differs from every recorded generation"):
        store_cmd.rollback(store.paths, store.engine, project, to=4)
    assert lock.read_text().endswith("# hand edit\n")
    store_cmd.rollback(store.paths, store.engine, project, to=2, force=True)
    assert lock.read_bytes() == texts[1]

    # After a rollback, sync records the restored lock: no new generation, same env.
    store.sync(project, [vols[1][1]])
    gens, current = index.generations(store.paths, project)
    assert [g.number for g in gens] == [2, 3, 4] and current == 2

    r = gc(store, keep_generations=1)
    assert r.dropped_generations == 2
    # Generation 4 is the newest kept; generation 2's env is what the lock names now.
    assert store.volumes() == {vols[1][0], vols[3][0]}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_rollback_cli_restores_and_says_so(store):
    a, b = store.env_volume(), store.env_volume()
    project = store.project("cli", [a[1]])
    first = (project / "aishell.lock").read_text()
    store.project("cli", [b[1]])
    r = run_aishell("rollback", "--project", str(project))
    assert r.returncode == 0, r.stderr
    assert "restored" in r.stdout and "from generation 1 (was 2)" in r.stdout
    assert "still in the store" in r.stdout
    assert (project / "aishell.lock").read_text() == first
    listed = run_aishell("rollback", "--list", "--json", "--project", str(project))
    doc = json.loads(listed.stdout)
    assert doc["schema"] == "aishell.generations" and doc["current"] == 1


def test_containers_keep_their_volume_and_image(store, foundation_tag):
    running, _ = store.env_volume()
    stopped, _ = store.env_volume()
    img = store.image("used")
    api = store.engine.sdk().api
    c1 = api.create_container(foundation_tag, ["sleep", "300"], labels=store.label,
                              host_config=api.create_host_config(binds=[f"{running}:/tools:ro"]),
                              entrypoint=[])
    api.start(c1)
    api.create_container(img, ["true"], labels=store.label,
                         host_config=api.create_host_config(binds=[f"{stopped}:/x"]))
    r = gc(store)
    assert r.removed == ()
    assert store.volumes() == {running, stopped} and img in store.images()
    listing = store_cmd.list_store(store.paths, store.engine, label_filter=store.label)
    assert all(any(x.startswith("container:") for x in i.roots) for i in listing.items)


def test_grace_period_protects_a_fresh_item(store):
    vol, _ = store.env_volume()
    r = collect_garbage(store.paths, store.engine, label_filter=store.label)  # default grace 1h
    assert [(c.name, c.status) for c in r.candidates] == [(vol, "too-young")]
    assert vol in store.volumes()
    r = collect_garbage(store.paths, store.engine, label_filter=store.label,
                        older_than=timedelta(0))
    assert removed_names(r) == {vol} and vol not in store.volumes()


def test_dry_run_lists_exactly_the_unreachable_and_removes_nothing(store):
    live, live_id = store.env_volume()
    dead, _ = store.env_volume()
    img = store.image("orphan", size=4096)
    project = store.project("live", [live_id])
    shutil.rmtree(store.project("gone", [live_id]))
    r = gc(store, dry_run=True)
    assert removed_names(r) == {dead, f"aishell-gctest-{store.tag}:orphan"}
    assert r.freed_bytes >= 4096 and r.reachable == 1
    assert [d.path for d in r.dropped_roots] == [str(store.root / "gone")]
    assert store.volumes() == {live, dead} and img in store.images()
    assert set(index.load(store.paths).projects) == {str(project), str(store.root / "gone")}


def test_max_freed_stops_early(store):
    ids = [store.image(f"big{n}", size=1 << 20) for n in range(3)]
    r = gc(store, max_freed=(1 << 20) + 1)
    statuses = sorted(c.status for c in r.candidates)
    assert statuses == ["over-budget", "removed", "removed"]
    assert r.stopped_early and r.freed_bytes == 2 << 20
    assert r.layers_freed is not None  # measured from the engine after the sweep
    assert len(store.images() & set(ids)) == 1


def test_objects_without_aishell_labels_are_never_touched(store):
    foreign_vol, _ = store.env_volume(managed=False)  # named like an env, no managed label
    foreign_img = store.image("foreign", managed=False)
    unknown, _ = store.env_volume()  # aishell's labels, but no project knows it
    r = gc(store)
    assert removed_names(r) == {unknown}  # unreferenced, not an error
    assert store.volumes() == {foreign_vol}
    assert foreign_img in store.images()


def test_dangling_build_leftover_is_swept(store):
    old = store.image("same")
    new = store.image("same")  # the tag moves: the first image is dangling, still labelled
    assert old != new
    project = store.project("p", [], images=[ImageRef("foundation", new, f"aishell-gctest-{store.tag}:same")])
    r = gc(store)
    assert [(c.name, c.status) for c in r.candidates] == [("<none>", "removed")]
    assert store.images() == {new}
    assert project.is_dir()


def test_unreferenced_download_cache_tarballs_are_swept(store):
    def sri(content: bytes) -> tuple[str, str]:
        digest = hashlib.sha512(content).digest()
        return "sha512-" + base64.b64encode(digest).decode(), digest.hex()

    kept_sri, kept_hex = sri(b"kept")
    _, gone_hex = sri(b"gone")
    root = store.paths.downloads / "sha512"
    files = {}
    for name in (kept_hex, gone_hex):
        path = root / name[:2] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
        files[name] = path
    stray = root / "ab" / "download.tmp"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"partial")
    store.project("p", [], integrities=[kept_sri])
    r = gc(store)
    assert r.tarballs == 2 and r.tarball_bytes == 17
    assert files[kept_hex].exists()
    assert not files[gone_hex].exists() and not stray.exists()


def test_gc_waits_for_a_running_sync(store):
    vol, _ = store.env_volume()
    messages: list[str] = []
    done = threading.Event()
    with storelock.shared(store.paths):  # a sync is populating
        worker = threading.Thread(target=lambda: (gc(store, on_wait=messages.append), done.set()))
        worker.start()
        time.sleep(0.5)
        assert not done.is_set()
        assert vol in store.volumes()
        assert messages == ["waiting for a sync or launch to finish (the store is locked)…"]
    worker.join(30)
    assert done.is_set() and vol not in store.volumes()


def test_item_removed_behind_our_back_is_not_an_error(store):
    vol, eid = store.env_volume()
    store.project("p", [eid])
    store.engine.remove_volume(vol)  # the user ran `docker volume rm`
    r = gc(store)
    assert r.removed == () and r.reachable == 0


def test_cli_dry_run_and_store_ls_json(store):
    vol, eid = store.env_volume()
    project = store.project("cli", [eid])
    store_cmd.pin_project(store.paths, project, None)
    r = run_aishell("gc", "--dry-run", "--json", "--older-than", "90m")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "aishell.gc" and doc["version"] == 1 and doc["dry_run"] is True
    assert doc["older_than_seconds"] == 5400
    assert vol not in {c["name"] for c in doc["candidates"]}
    assert vol in store.volumes()
    r = run_aishell("store", "ls", "--json")
    doc = json.loads(r.stdout)
    mine = [i for i in doc["items"] if i["name"] == vol]
    assert mine and mine[0]["roots"] == [f"project:{project}", "pin:cli"]
    r = run_aishell("store", "ls")
    assert vol[:24] in r.stdout and "project cli; pin cli" in r.stdout
    assert "total" in r.stdout and "sharing: 1 project(s) → 1 env(s)" in r.stdout
    r = run_aishell("pin", "--list")
    assert "cli" in r.stdout and str(project) in r.stdout


def test_launch_records_the_foundation_image(foundation_tag, tmp_path):
    project = tmp_path / "launched"
    project.mkdir()
    r = run_aishell("exec", "--", "true", cwd=project)
    assert r.returncode == 0, r.stderr
    from aishell.paths import default_paths

    record = index.load(default_paths()).projects[str(project)]
    assert [i.tag for i in record.images] == [foundation_tag]
    assert record.locked is False


@pytest.mark.parametrize("flag", ["--older-than=soon", "--max-freed=lots", "--keep-generations=-1"])
def test_cli_rejects_bad_units(flag):
    r = run_aishell("gc", "--dry-run", flag)
    assert r.returncode == 2 and ("invalid" in r.stderr or "0 or more" in r.stderr)
    assert "Traceback" not in r.stderr



def test_stale_lock_copies_go_and_nothing_else_in_the_state_dir_does(store):
    store.project("p", [])  # records one generation: its copy is referenced
    copies = index.locks_dir(store.paths)
    stale = copies / f"{'0' * 64}.lock"
    stale.write_bytes(b"old")
    foreign = copies / "notes.lock"
    foreign.write_bytes(b"keep")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    os.utime(foreign, (old, old))
    with storelock.shared(store.paths):
        pass  # creates <state>/locks/store.lock
    r = gc(store)
    assert r.lock_copies == 1 and not stale.exists()
    assert foreign.exists() and storelock.lock_path(store.paths).exists()
    assert len(list(copies.glob("*.lock"))) == 2  # the generation's copy and the foreign file
