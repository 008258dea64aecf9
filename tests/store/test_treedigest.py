"""The tree digest: golden vectors, and one digest whether read from a directory or a tar."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest
from blake3 import blake3

from aishell.store.treedigest import CONTEXT, TreeDigest, TreeDigestError, digest_directory, digest_tar

# The digest of the tree built by make_tree(). Changing it breaks every recorded marker:
# only with a new CONTEXT (format version).
GOLDEN = TreeDigest("e3c30bfa0dc2a8096f6f80604e99dd0bfe24c95ca8e4019208be27785c8ae5aa", 6, 41)
GOLDEN_EMPTY = TreeDigest("1cf803ee6540ea4dc98ccc72b72e7326d9c25e119689e18729e5d9f22b22bed9", 0, 0)


def make_tree(root: Path) -> Path:
    """Unicode names, symlinks (one dangling), empty and nested dirs, the executable bit,
    and names whose bytewise order differs from a per-directory order (``a-b`` < ``a/b``)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "a.txt").write_bytes(b"hello\n")
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\necho tool\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "empty").mkdir()
    (root / "nested" / "deeper" / "deepest").mkdir(parents=True)
    (root / "nested" / "deeper" / "deepest" / "file").write_bytes(b"x")
    (root / "ünïcødé").mkdir()
    (root / "ünïcødé" / "名前.txt").write_bytes(b"unicode\n")
    (root / "a").mkdir()
    (root / "a" / "b").write_bytes(b"ab")
    (root / "a-b").write_bytes(b"a-b\n")
    (root / "link").symlink_to("bin/tool")
    (root / "dangling").symlink_to("../nowhere")
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.name != "tool":
            path.chmod(0o644)
    return root


def tar_cli(root: Path, *args: str) -> bytes:
    return subprocess.run(["tar", *args, "-C", str(root), "-cf", "-", "."],
                          check=True, capture_output=True).stdout


def tar_python(root: Path, fmt: int, arcroot: str = "tools") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        tar.add(str(root), arcname=arcroot)
    return buf.getvalue()


def test_context_is_versioned_and_own():
    assert CONTEXT == "aishell 2026-11 tree digest v1"


def test_golden_vector_of_a_directory(tmp_path):
    assert digest_directory(make_tree(tmp_path / "t")) == GOLDEN


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_golden_vector_of_python_tars(tmp_path, fmt):
    root = make_tree(tmp_path / "t")
    if fmt == tarfile.USTAR_FORMAT:
        # USTAR cannot hold the non-ASCII names; check the rest of the tree.
        for p in sorted(root.rglob("*"), reverse=True):
            if "ü" in str(p.relative_to(root)):
                p.unlink() if p.is_file() else p.rmdir()
        expected = digest_directory(root)
        assert expected != GOLDEN
    else:
        expected = GOLDEN
    assert digest_tar(io.BytesIO(tar_python(root, fmt)), strip="tools") == expected


@pytest.mark.parametrize("fmt", ["gnu", "posix", "v7"])
def test_golden_vector_of_gnu_tar_streams(tmp_path, fmt):
    root = make_tree(tmp_path / "t")
    data = tar_cli(root, f"--format={fmt}")
    assert digest_tar(io.BytesIO(data)) == GOLDEN


def test_tar_from_an_iterator_of_odd_chunks(tmp_path):
    data = tar_cli(make_tree(tmp_path / "t"))
    chunks = [data[i:i + 777] for i in range(0, len(data), 777)]
    assert digest_tar(iter(chunks)) == GOLDEN


def test_empty_tree(tmp_path):
    (tmp_path / "e").mkdir()
    assert digest_directory(tmp_path / "e") == GOLDEN_EMPTY
    assert digest_tar(io.BytesIO(tar_cli(tmp_path / "e"))) == GOLDEN_EMPTY


def test_the_serialization_is_the_documented_one(tmp_path):
    """Recompute a small tree's digest from the format description, independently."""
    root = tmp_path / "t"
    (root / "d").mkdir(parents=True)
    (root / "d" / "x").write_bytes(b"xx")
    (root / "d" / "x").chmod(0o755)
    (root / "l").symlink_to("d/x")

    def u32(n: int) -> bytes:
        return struct.pack(">I", n)

    serialized = (
        b"d" + u32(1) + b"d"
        + b"f" + u32(3) + b"d/x" + b"\x01" + struct.pack(">Q", 2) + blake3(b"xx").digest()
        + b"l" + u32(1) + b"l" + u32(3) + b"d/x"
    )
    expected = blake3(serialized, derive_key_context=CONTEXT).hexdigest()
    assert digest_directory(root) == TreeDigest(expected, 1, 2)


def test_mtimes_owners_and_other_mode_bits_do_not_count(tmp_path):
    root = make_tree(tmp_path / "t")
    for path in root.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (1, 1))
    (root / "a.txt").chmod(0o600)  # group/other bits
    (root / "bin" / "tool").chmod(0o711)  # still owner-executable
    (root / "empty").chmod(0o700)
    os.chown(root / "a.txt", 12345, 54321)
    assert digest_directory(root) == GOLDEN
    assert digest_tar(io.BytesIO(tar_cli(root))) == GOLDEN


@pytest.mark.parametrize("change", [
    "exec-bit", "content", "symlink-target", "empty-dir", "rename", "file-to-symlink",
])
def test_every_recorded_property_changes_the_digest(tmp_path, change):
    root = make_tree(tmp_path / "t")
    if change == "exec-bit":
        (root / "a.txt").chmod(0o744)
    elif change == "content":
        (root / "a.txt").write_bytes(b"hellO\n")
    elif change == "symlink-target":
        (root / "link").unlink()
        (root / "link").symlink_to("bin/tool2")
    elif change == "empty-dir":
        (root / "empty" / "more").mkdir()
    elif change == "rename":
        (root / "a.txt").rename(root / "b.txt")
    elif change == "file-to-symlink":
        (root / "a.txt").unlink()
        (root / "a.txt").symlink_to("hello\n")
    changed = digest_directory(root)
    assert changed.digest != GOLDEN.digest
    assert digest_tar(io.BytesIO(tar_cli(root))) == changed


def test_non_utf8_names_hash_as_raw_bytes(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    # Raw bytes paths: pathlib cannot name a file whose name is not decodable.
    raw = os.path.join(os.fsencode(root), b"caf\xe9")  # noqa: PTH118
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"latin-1 name")
    os.close(fd)
    from_dir = digest_directory(root)
    assert digest_tar(io.BytesIO(tar_cli(root))) == from_dir
    assert from_dir.files == 1


def test_big_files_take_the_threaded_path_with_the_same_digest(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    data = os.urandom(9 << 20)
    (root / "big").write_bytes(data)
    (root / "small").write_bytes(data[:1000])
    result = digest_directory(root)
    assert result.bytes == len(data) + 1000
    assert digest_tar(io.BytesIO(tar_cli(root))) == result
    assert digest_tar(io.BytesIO(tar_python(root, tarfile.PAX_FORMAT)), strip="tools") == result


def test_hard_links_in_a_tar_count_as_the_file_they_link(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / "one").write_bytes(b"same inode")
    (root / "two").hardlink_to(root / "one")
    data = tar_cli(root)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert any(m.islnk() for m in tar)
    assert digest_tar(io.BytesIO(data)) == digest_directory(root)
    assert digest_directory(root).files == 2


def test_exclude_leaves_paths_out(tmp_path):
    root = make_tree(tmp_path / "t")
    (root / ".aishell-env.json").write_text("{}")
    assert digest_directory(root, exclude=[".aishell-env.json"]) == GOLDEN
    assert digest_tar(io.BytesIO(tar_cli(root)), exclude=[".aishell-env.json"]) == GOLDEN
    assert digest_directory(root).digest != GOLDEN.digest


def test_special_files_are_rejected(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    os.mkfifo(root / "fifo")
    with pytest.raises(TreeDigestError, match="not a file, directory or symlink"):
        digest_directory(root)
    with pytest.raises(TreeDigestError, match="not a file, directory or symlink"):
        digest_tar(io.BytesIO(tar_cli(root)))


def test_members_outside_the_root_are_rejected(tmp_path):
    data = tar_python(make_tree(tmp_path / "t"), tarfile.PAX_FORMAT, arcroot="other")
    with pytest.raises(TreeDigestError, match="lies outside the root"):
        digest_tar(io.BytesIO(data), strip="tools")


def test_a_broken_stream_is_an_error(tmp_path):
    data = tar_cli(make_tree(tmp_path / "t"))
    with pytest.raises(TreeDigestError, match="not a valid tar"):
        digest_tar(io.BytesIO(data[:1500]))
    with pytest.raises(TreeDigestError, match="not a valid tar"):
        digest_tar(io.BytesIO(b""))


def test_progress_reports_content_bytes(tmp_path):
    seen: list[int] = []
    digest_tar(io.BytesIO(tar_cli(make_tree(tmp_path / "t"))), on_bytes=seen.append)
    assert seen[-1] == GOLDEN.bytes


def test_a_stream_cut_at_a_member_boundary_is_an_error(tmp_path):
    """A dropped engine connection must never pass for a smaller, complete tree."""
    root = tmp_path / "t"
    root.mkdir()
    (root / "a").write_bytes(b"a" * 512)
    data = tar_cli(root, "--format=ustar")
    cut = 512 * 3  # "./", "./a" header, its one content block: no end-of-archive block
    assert data[cut:cut + 512] == bytes(512)
    with pytest.raises(TreeDigestError, match="truncated"):
        digest_tar(io.BytesIO(data[:cut]))


def test_a_corrupted_header_is_an_error(tmp_path):
    data = bytearray(tar_cli(make_tree(tmp_path / "t")))
    data[512 + 10] ^= 0xFF  # inside the second header's name
    with pytest.raises(TreeDigestError, match="checksum"):
        digest_tar(io.BytesIO(bytes(data)))


def test_long_names_in_every_format(tmp_path):
    root = tmp_path / "t"
    deep = root / ("d" * 60) / ("e" * 60) / ("f" * 60)
    deep.mkdir(parents=True)
    (deep / ("g" * 90)).write_bytes(b"long")
    (root / "l").symlink_to("x" * 150)
    expected = digest_directory(root)
    for fmt in ("gnu", "posix"):
        assert digest_tar(io.BytesIO(tar_cli(root, f"--format={fmt}"))) == expected
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        assert digest_tar(io.BytesIO(tar_python(root, fmt)), strip="tools") == expected


def test_ustar_prefix_field_extends_the_name(tmp_path):
    root = tmp_path / "t"
    deep = root / ("d" * 70) / ("e" * 40)
    deep.mkdir(parents=True)
    (deep / "file").write_bytes(b"prefix")
    data = tar_cli(root, "--format=ustar")
    assert digest_tar(io.BytesIO(data)) == digest_directory(root)


def test_pax_global_headers_are_applied(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / "f").write_bytes(b"f")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "global record"}) as tar:
        tar.add(str(root), arcname="tools")
    assert digest_tar(io.BytesIO(buf.getvalue()), strip="tools") == digest_directory(root)
