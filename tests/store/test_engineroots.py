"""Homes' leases and leftover recordings without an engine: [store] gc_home_ttl, heartbeat
names and times, what a home publishes, which capture containers are leftovers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aishell.errors import ConfigError
from aishell.paths import default_paths
from aishell.store import captures, engineroots, fetch, index
from aishell.store.roots import Root


@pytest.fixture
def paths():
    return default_paths()


def _config(paths, text: str) -> None:
    paths.config.mkdir(parents=True, exist_ok=True)
    paths.global_config.write_text(text, encoding="utf-8")


def test_home_ttl_defaults_to_30_days(paths):
    assert index.store_settings(paths).home_ttl == timedelta(days=30)
    _config(paths, "[store]\nkeep_generations = 2\n")
    assert index.store_settings(paths).home_ttl == timedelta(days=30)


@pytest.mark.parametrize(("text", "ttl"), [("45d", timedelta(days=45)), ("2w", timedelta(weeks=2)),
                                           ("48h", timedelta(hours=48))])
def test_home_ttl_comes_from_the_global_config(paths, text, ttl):
    _config(paths, f'[store]\ngc_home_ttl = "{text}"\n')
    assert index.store_settings(paths).home_ttl == ttl


@pytest.mark.parametrize(("value", "says"), [
    ('"soon"', "[store] gc_home_ttl: invalid duration 'soon'"),
    ('"1d"', "[store] gc_home_ttl must be at least 2d, not '1d'"),
    ('"90m"', "[store] gc_home_ttl must be at least 2d"),
    ("30", "gc_home_ttl"),  # not a string: the schema's check names the key
])
def test_a_bad_home_ttl_names_file_and_line(paths, value, says):
    _config(paths, f"[store]\ngc_grace = \"1h\"\n\ngc_home_ttl = {value}\n")
    with pytest.raises(ConfigError) as exc:
        index.store_settings(paths)
    assert f"{paths.global_config}:4:" in str(exc.value)
    assert says in str(exc.value)


def test_the_ttl_outlasts_a_daily_heartbeat():
    assert index.MIN_HOME_TTL > engineroots.HEARTBEAT_EVERY


def test_heartbeat_name_and_label_carry_the_time(paths):
    when = datetime(2026, 11, 3, 9, 5, 7, tzinfo=UTC)
    home = engineroots.home_id(paths)
    assert engineroots.heartbeat_name(home, when) == f"aishell-gcroot-{home}-seen-20261103T090507Z"
    labels = engineroots.heartbeat_labels(paths, when)
    assert labels[engineroots.SEEN] == "2026-11-03T09:05:07Z"
    assert labels[engineroots.GCROOT] == "home" and labels[engineroots.HOME] == home
    assert engineroots._seen({"Labels": labels, "CreatedAt": "2026-12-01T00:00:00Z"}) == when


def test_a_heartbeat_with_a_bad_time_label_falls_back_to_its_creation():
    created = "2026-11-20T10:00:00+01:00"
    seen = engineroots._seen({"Labels": {engineroots.SEEN: "yesterday"}, "CreatedAt": created})
    assert seen == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_a_home_publishes_its_own_roots_not_containers_or_other_homes():
    roots = [Root("project", "/p", env_ids=frozenset({"e1"}), image_ids=frozenset({"sha256:i"})),
             Root("pin", "keep", env_ids=frozenset({"e2"})),
             Root("container", "c", image_ids=frozenset({"sha256:c"}), volumes=frozenset({"v"})),
             Root("home", "uid 1500 /x", env_ids=frozenset({"e3"}))]
    assert engineroots.refs_of(roots) == {"env:e1", "env:e2", "image:sha256:i"}


def test_the_capture_time_limit_is_shorter_than_what_gc_waits_for():
    assert timedelta(seconds=fetch.CAPTURE_TIMEOUT) < captures.RECORDING_LIMIT


def _container(cid: str, state: str, age: timedelta, now: datetime, **labels: str) -> dict:
    return {"Id": cid, "State": state, "Created": int((now - age).timestamp()),
            "Labels": {"dev.aishell.managed": "1", "dev.aishell.kind": "capture", **labels}}


def test_only_stopped_old_capture_containers_are_leftovers():
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    old, young = timedelta(hours=3), timedelta(minutes=10)
    found = [
        _container("exited-old", "exited", old, now),
        _container("created-old", "created", old, now),  # killed between create and start
        _container("running-old", "running", old, now),  # a lock still recording
        _container("exited-young", "exited", young, now),
        {**_container("sandbox", "exited", old, now), "Labels": {"dev.aishell.managed": "1"}},
    ]
    cutoff = now - timedelta(hours=1)
    ids = [c["Id"] for c in captures.leftover_containers(found, cutoff=cutoff, now=now)]
    assert ids == ["exited-old", "created-old"]
    # --older-than 0s does not shorten the recording's own limit
    ids = [c["Id"] for c in captures.leftover_containers(found, cutoff=now, now=now)]
    assert ids == ["exited-old", "created-old"]
    # a longer grace period protects them longer
    ids = [c["Id"] for c in captures.leftover_containers(found, cutoff=now - timedelta(hours=4),
                                                         now=now)]
    assert ids == []
    # tests confine gc to their own objects
    tagged = [_container("mine", "exited", old, now, **{"dev.aishell.test-gc": "t"}), *found]
    ids = [c["Id"] for c in captures.leftover_containers(tagged, cutoff=cutoff, now=now,
                                                         label_filter={"dev.aishell.test-gc": "t"})]
    assert ids == ["mine"]
