"""Reading what a lock references, and the units gc parses (no engine)."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from aishell.errors import UsageError
from aishell.lock import refs as lockrefs
from aishell.units import format_size, parse_duration, parse_size

LOCK = """\
# generated
version = 1
[env."linux/amd64"]
id = "aaa"
[env."linux/arm64"]
id = "bbb"
[runtime.npm]
integrity = "sha512-AAAA"
[[harness.claude.closure]]
path = "node_modules/x"
integrity = "sha512-BBBB"
[other]
env-id = "ccc"
nested = [{ env_id = "ddd" }]
"""


def test_lock_env_ids_follow_the_format(tmp_path: Path):
    lock = tmp_path / "aishell.lock"
    lock.write_text(LOCK)
    assert lockrefs.lock_env_ids(lock) == {"aaa", "bbb"}  # not keys elsewhere that look alike


def test_missing_and_unreadable_locks(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        lockrefs.lock_env_ids(tmp_path / "nope")
    (tmp_path / "bad").write_text("<<<<<<< HEAD\n")
    with pytest.raises(lockrefs.LockUnreadable):
        lockrefs.lock_env_ids(tmp_path / "bad")


def test_integrities_and_cache_keys():
    assert lockrefs.lock_integrities(LOCK.encode()) == {"sha512-AAAA", "sha512-BBBB"}
    digest = hashlib.sha512(b"x").digest()
    sri = f"sha512-{base64.b64encode(digest).decode()} sha1-{base64.b64encode(b'1' * 20).decode()}"
    assert lockrefs.tarball_keys(sri) == {f"sha512/{digest.hex()}", f"sha1/{(b'1' * 20).hex()}"}
    root = Path("/c")
    hexd = digest.hex()
    assert lockrefs.tarball_key_of(root / "sha512" / hexd[:2] / hexd, root) == f"sha512/{hexd}"
    assert lockrefs.tarball_key_of(root / "sha512" / hexd[:2] / f"{hexd}.lock", root) == f"sha512/{hexd}"
    assert lockrefs.tarball_key_of(root / "sha512" / hexd[:2] / "x.tmp", root) is None
    assert lockrefs.tarball_key_of(root / "README", root) is None


@pytest.mark.parametrize(("text", "delta"), [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)),
    ("45s", timedelta(seconds=45)), ("2w", timedelta(weeks=2)), ("1.5h", timedelta(minutes=90)),
])
def test_durations(text, delta):
    assert parse_duration(text) == delta


@pytest.mark.parametrize(("text", "size"), [
    ("10G", 10 * 10**9), ("512MiB", 512 << 20), ("1.5GB", 15 * 10**8), ("300k", 300_000),
    ("2GiB", 2 << 30), ("42", 42),
])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "10", "ten days", "5y"])
def test_bad_durations(bad):
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", ["", "G", "10X", "-1G"])
def test_bad_sizes(bad):
    with pytest.raises(UsageError, match="invalid size"):
        parse_size(bad)


def test_format_size():
    assert [format_size(n) for n in (0, 812, 4_200_000, 1_350_000_000)] == ["0 B", "812 B", "4.2 MB",
                                                                              "1.4 GB"]
