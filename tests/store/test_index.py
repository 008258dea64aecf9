"""The host index: generations, pins, crash safety and concurrent writers (no engine)."""

from __future__ import annotations

import json
import multiprocessing
import os
from datetime import timedelta
from pathlib import Path

import pytest

from aishell.errors import AishellError, ConfigError
from aishell.paths import default_paths
from aishell.store import index
from aishell.store.index import ImageRef


@pytest.fixture
def paths():
    return default_paths()


def _use(paths, project: Path, text: str, env: str, **kw):
    lock = project / "aishell.lock"
    lock.write_text(text)
    return index.record_use(paths, project, lock_path=lock, env_ids={"linux/amd64": env},
                            images=[ImageRef("foundation", "sha256:f", "aishell-foundation:x")],
                            lock_bytes=lock.read_bytes(), **kw)


def test_record_use_makes_generations_and_keeps_n(paths, tmp_path):
    for n in range(5):
        record = _use(paths, tmp_path, f"v{n}", f"e{n}", keep=3)
    assert [g.number for g in record.generations] == [3, 4, 5]
    assert record.current == 5 and record.locked
    assert [g.env_ids["linux/amd64"] for g in record.generations] == ["e2", "e3", "e4"]
    assert index.read_lock_copy(paths, record.generations[0].lock_digest) == b"v2"


def test_same_lock_again_is_not_a_new_generation(paths, tmp_path):
    _use(paths, tmp_path, "a", "ea")
    _use(paths, tmp_path, "b", "eb")
    record = _use(paths, tmp_path, "a", "ea")  # e.g. after a rollback
    assert [(g.number, g.env_ids["linux/amd64"]) for g in record.generations] == [(1, "ea"), (2, "eb")]
    assert record.current == 1


def test_keep_generations_comes_from_the_global_config(paths, tmp_path):
    paths.config.mkdir(parents=True)
    paths.global_config.write_text("[store]\nkeep_generations = 1\ngc_grace = \"30m\"\n")
    settings = index.store_settings(paths)
    assert settings.keep_generations == 1 and settings.grace == timedelta(minutes=30)
    _use(paths, tmp_path, "a", "ea")
    assert [g.number for g in _use(paths, tmp_path, "b", "eb").generations] == [2]


def test_bad_store_setting_names_file_and_line(paths):
    paths.config.mkdir(parents=True)
    paths.global_config.write_text("[store]\n\ngc_grace = \"soon\"\n")
    with pytest.raises(ConfigError) as exc:
        index.store_settings(paths)
    assert f"{paths.global_config}:3:" in str(exc.value)


def test_last_use_is_recorded_per_item(paths, tmp_path):
    _use(paths, tmp_path, "a", "ea")
    used = index.load(paths).last_used
    assert set(used) == {"env:ea", "image:sha256:f"}


def test_pins(paths, tmp_path):
    pin, replaced = index.pin(paths, "p", tmp_path, env_ids=["e2", "e1"], images=[], lock_bytes=b"L")
    assert pin.env_ids == ("e1", "e2") and not replaced
    _, replaced = index.pin(paths, "p", tmp_path, env_ids=["e3"], images=[], lock_bytes=None)
    assert replaced
    assert [p.env_ids for p in index.pins(paths)] == [("e3",)]
    assert index.unpin(paths, "p").name == "p"
    with pytest.raises(AishellError, match="no pin named 'p'"):
        index.unpin(paths, "p")


def test_index_survives_a_crash_mid_write(paths, tmp_path, monkeypatch):
    _use(paths, tmp_path, "a", "ea")
    before = index.index_path(paths).read_bytes()

    def crash(*_a, **_k):
        raise OSError("disk pulled")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk pulled"):
        _use(paths, tmp_path / "..", "b", "eb")
    assert index.index_path(paths).read_bytes() == before
    assert not [p for p in paths.state.iterdir() if p.name.endswith(".tmp")]


def test_damaged_index_is_an_error_not_an_empty_store(paths):
    paths.ensure_state()
    index.index_path(paths).write_text("{not json")
    with pytest.raises(index.IndexCorrupt) as exc:
        index.load(paths)
    assert "gc refuses to guess" in exc.value.message and "mv " in (exc.value.hint or "")


def test_newer_index_version_is_refused(paths):
    paths.ensure_state()
    index.index_path(paths).write_text(json.dumps({"version": 99}))
    with pytest.raises(index.IndexCorrupt, match="newer aishell"):
        index.load(paths)


def _writer(args: tuple[str, int]) -> None:
    home, n = args
    os.environ["AISHELL_HOME"] = home
    p = default_paths()
    project = Path(home) / f"proj{n}"
    project.mkdir()
    for k in range(5):
        _use(p, project, f"{n}-{k}", f"e{n}-{k}")


def test_concurrent_writers_lose_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("AISHELL_HOME", str(tmp_path))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        pool.map(_writer, [(str(tmp_path), n) for n in range(8)])
    projects = index.load(default_paths()).projects
    assert len(projects) == 8
    assert all([g.number for g in p.generations] == [3, 4, 5] for p in projects.values())


def test_record_images_keeps_generations(paths, tmp_path):
    _use(paths, tmp_path, "a", "ea")
    index.record_images(paths, tmp_path, [ImageRef("foundation", "sha256:new", "t:new")])
    record = index.load(paths).projects[str(tmp_path.resolve())]
    assert record.images[0].id == "sha256:new" and record.env_ids == {"linux/amd64": "ea"}
    assert [g.number for g in record.generations] == [1]
