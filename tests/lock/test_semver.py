"""npm semver behaviour, checked against node-semver's documented examples."""

from __future__ import annotations

import pytest

from aishell.lock.semver import Range, SemverError, Version, max_satisfying, nearest, pick, valid_range


@pytest.mark.parametrize(
    ("spec", "inside", "outside"),
    [
        ("1.2.3", ["1.2.3"], ["1.2.4", "1.2.3-beta"]),
        ("=1.2.3", ["1.2.3"], ["1.2.2"]),
        ("v1.2.3", ["1.2.3"], ["1.2.4"]),
        (">1.2.3", ["1.2.4", "2.0.0"], ["1.2.3", "1.2.4-beta"]),
        (">=1.2.3", ["1.2.3", "9.0.0"], ["1.2.2"]),
        ("<1.2.3", ["1.2.2", "0.0.1"], ["1.2.3", "1.2.3-beta"]),
        ("<=1.2.3", ["1.2.3"], ["1.2.4"]),
        ("> 1.2.3", ["1.2.4"], ["1.2.3"]),
        (">1", ["2.0.0"], ["1.9.9"]),
        (">1.2", ["1.3.0"], ["1.2.9"]),
        ("<1.2", ["1.1.9"], ["1.2.0"]),
        ("<=1.2", ["1.2.9"], ["1.3.0"]),
        ("*", ["0.0.0", "99.1.1"], ["1.0.0-rc.1"]),
        ("", ["1.0.0"], ["1.0.0-alpha"]),
        ("x", ["3.1.4"], []),
        ("1.x", ["1.0.0", "1.9.9"], ["2.0.0", "0.9.9", "2.0.0-0"]),
        ("1.2.x", ["1.2.0", "1.2.9"], ["1.3.0"]),
        ("1", ["1.0.0", "1.99.0"], ["2.0.0"]),
        ("1.2", ["1.2.0", "1.2.99"], ["1.3.0"]),
        ("24", ["24.0.0", "24.22.0"], ["25.0.0", "23.9.9"]),
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0", "1.2.2"]),
        ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
        ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
        ("~0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
        ("~1.2.3-beta.2", ["1.2.3-beta.2", "1.2.3-beta.4", "1.2.3", "1.2.5"],
         ["1.2.4-beta.2", "1.2.3-beta.1", "1.3.0"]),
        ("^1.2.3", ["1.2.3", "1.9.9"], ["2.0.0", "1.2.2", "2.0.0-beta"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("^1.2.3-beta.2", ["1.2.3-beta.2", "1.2.3-beta.4", "1.9.0"], ["1.2.4-beta.2"]),
        ("^0.0.3-beta", ["0.0.3-pr.2", "0.0.3"], ["0.0.4"]),
        ("^1.2.x", ["1.2.0", "1.9.0"], ["2.0.0", "1.1.0"]),
        ("^0.0.x", ["0.0.0", "0.0.9"], ["0.1.0"]),
        ("^0.0", ["0.0.5"], ["0.1.0"]),
        ("^1.x", ["1.0.0", "1.9.0"], ["2.0.0"]),
        ("^0.x", ["0.0.0", "0.9.0"], ["1.0.0"]),
        ("^2.1", ["2.1.0", "2.9.0"], ["2.0.9", "3.0.0"]),
        ("1.2.3 - 2.3.4", ["1.2.3", "2.3.4"], ["2.3.5", "1.2.2"]),
        ("1.2 - 2.3.4", ["1.2.0"], ["1.1.9"]),
        ("1.2.3 - 2.3", ["2.3.9"], ["2.4.0"]),
        ("1.2.3 - 2", ["2.9.9"], ["3.0.0"]),
        (">=1.2.7 <1.3.0", ["1.2.7", "1.2.99"], ["1.2.6", "1.3.0"]),
        ("1.2.7 || >=1.2.9 <2.0.0", ["1.2.7", "1.2.9", "1.4.6"], ["1.2.8", "2.0.0"]),
        (">1.2.3-alpha.3", ["1.2.3-alpha.7", "3.4.5"], ["3.4.5-alpha.9", "1.2.3-alpha.2"]),
        ("^22.22.2 || ^24.15.0 || >=26.0.0", ["24.15.0", "26.1.0", "22.22.2"], ["24.14.0", "23.0.0"]),
    ],
)
def test_range_matches_like_node_semver(spec, inside, outside):
    rng = Range.parse(spec)
    for v in inside:
        assert rng.test(Version.parse(v)), f"{v} should satisfy {spec!r} ({rng})"
    for v in outside:
        assert not rng.test(Version.parse(v)), f"{v} should not satisfy {spec!r} ({rng})"


def test_version_precedence_follows_semver_spec():
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
               "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]
    parsed = [Version.parse(v) for v in ordered]
    shuffled = parsed[5:] + parsed[:5]
    assert sorted(shuffled) == parsed
    assert Version.parse("1.0.0+build.5") == Version.parse("1.0.0")
    assert str(Version.parse("v1.2.3-rc.1+b")) == "1.2.3-rc.1"


@pytest.mark.parametrize("bad", ["^", "1.2.3.4", ">=a", "~latest", "1.2.3-", "01.2.3", "^1.2.3 - 2"])
def test_invalid_ranges_are_rejected(bad):
    assert not valid_range(bad)
    with pytest.raises(SemverError):
        Range.parse(bad)


def test_max_satisfying_picks_highest_release():
    versions = ["1.0.0", "1.2.0", "1.10.0", "2.0.0-beta.1", "2.0.0", "0.9.0"]
    assert str(max_satisfying(versions, "^1.0.0")) == "1.10.0"
    assert str(max_satisfying(versions, "*")) == "2.0.0"
    assert max_satisfying(versions, "^3") is None


def test_pick_prefers_latest_tag_like_npm():
    versions = ["1.0.0", "1.1.0", "1.2.0"]
    assert str(pick(versions, "^1.0.0", {"latest": "1.1.0"})) == "1.1.0"
    assert str(pick(versions, "^1.2.0", {"latest": "1.1.0"})) == "1.2.0"
    assert str(pick(versions, "latest", {"latest": "1.1.0"})) == "1.1.0"
    tags = {"latest": "1.1.0", "next": "2.0.0-rc.1"}
    assert str(pick([*versions, "2.0.0-rc.1"], "next", tags)) == "2.0.0-rc.1"
    assert pick(versions, "beta", {"latest": "1.1.0"}) is None


def test_nearest_lists_versions_around_the_request():
    versions = [f"1.{i}.0" for i in range(10)] + ["2.0.0", "2.1.0"]
    assert nearest(versions, "1.4.5") == ["1.3.0", "1.4.0", "1.5.0", "1.6.0", "1.7.0"]
    assert nearest(versions, "^9")[-1] == "2.1.0"
    assert nearest([], "^1") == []
