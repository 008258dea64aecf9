"""Roots and marking from an index, locks on disk and container listings (no engine)."""

from __future__ import annotations

from datetime import UTC, datetime

from aishell.paths import default_paths
from aishell.store import index, roots
from aishell.store.index import ImageRef
from aishell.store.inventory import Item

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _volume(env_id: str, name: str | None = None, kind: str = "env") -> Item:
    return Item("volume", kind, name or f"aishell-env-{env_id[:24]}", env_id,
                name or f"aishell-env-{env_id[:24]}", 0, 0, T0)


def _image(image_id: str, *tags: str) -> Item:
    return Item("image", "foundation", image_id, image_id, tags[0] if tags else "<none>", 0, 0, T0, tags)


def _collect(containers=()):
    paths = default_paths()
    return roots.collect(paths, index.load(paths), list(containers), keep_generations=3)


def test_unreadable_lock_keeps_what_was_last_synced_and_warns(tmp_path):
    paths = default_paths()
    lock = tmp_path / "aishell.lock"
    lock.write_text('[env."linux/amd64"]\nid = "e1"\n')
    index.record_use(paths, tmp_path, lock_path=lock, env_ids={"linux/amd64": "e1"}, images=[],
                     lock_bytes=lock.read_bytes(), keep=0)
    lock.write_text("<<<<<<< ours\n")
    found = _collect()
    assert [r.env_ids for r in found.roots if r.kind == "project"] == [frozenset({"e1"})]
    assert "not valid TOML" in found.warnings[0]


def test_project_without_a_lock_keeps_its_images(tmp_path):
    ref = ImageRef("foundation", "sha256:f", "aishell-foundation:x")
    index.record_images(default_paths(), tmp_path, [ref])
    found = _collect()
    marks = roots.mark([_image("sha256:f"), _image("sha256:g", "aishell-foundation:x"),
                        _image("sha256:h")], found.roots)
    assert {k: [r.label for r in v] for k, v in marks.items()} == {
        "sha256:f": [f"project:{tmp_path}"], "sha256:g": [f"project:{tmp_path}"], "sha256:h": []}


def test_containers_reach_volumes_by_name_and_images_by_id():
    found = _collect([{"Names": ["/aishell-ab12-claude"], "ImageID": "sha256:i",
                       "Mounts": [{"Type": "volume", "Name": "aishell-env-x"},
                                  {"Type": "bind", "Name": "", "Source": "/p"}]}])
    marks = roots.mark([_volume("x" * 64, "aishell-env-x"), _image("sha256:i"), _image("sha256:j")],
                       found.roots)
    assert [r.label for r in marks["aishell-env-x"]] == ["container:aishell-ab12-claude"]
    assert marks["sha256:i"] and not marks["sha256:j"]


def test_env_volume_named_by_a_prefix_matches_the_full_id():
    eid = "ab" * 32
    root = roots.Root("pin", "p", env_ids=frozenset({eid}))
    assert roots.reaches(root, _volume(eid[:24]))  # no env-id label: id is the name's suffix
    assert not roots.reaches(root, _volume("cd" * 12))
    assert not roots.reaches(root, _volume(eid, kind="cache"))  # only env volumes hold envs
