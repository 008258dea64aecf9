"""The canonical layer tar: a function of the tree alone, from a directory or a stream."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from aishell.store import layer
from aishell.store.tarstream import TarReader
from aishell.store.treedigest import TreeDigestError, digest_directory, digest_tar


def make_tree(root: Path) -> Path:
    (root / "b" / "deep").mkdir(parents=True)
    (root / "a.c").write_text("dot sorts before slash\n")
    (root / "b" / "run").write_text("#!/bin/sh\n")
    (root / "b" / "run").chmod(0o700)
    (root / "b" / "deep" / ("long-" * 30)).write_bytes(os.urandom(70_000))
    (root / "b" / "empty").write_bytes(b"")
    (root / "link").symlink_to("b/run")
    (root / "b" / "hard").hardlink_to(root / "a.c")
    (root / "b" / "run-too").hardlink_to(root / "b" / "run")
    (root / "ü name").write_text("unicode\n")
    (root / ".aishell-env.json").write_text("{}")
    return root


def layer_bytes(entries) -> bytes:
    return b"".join(layer.canonical_tar(entries))


def test_directory_and_gnu_tar_stream_give_identical_bytes_and_the_tree_digest(tmp_path):
    tree = make_tree(tmp_path / "t")
    from_dir = layer_bytes(layer.host_entries(tree, exclude=[".aishell-env.json"]))
    tar = subprocess.run(["tar", "--sort=name", "-C", str(tmp_path), "-c", "t"],
                         capture_output=True, check=True).stdout
    reader = TarReader(io.BufferedReader(io.BytesIO(tar)))
    from_stream = layer_bytes(layer.stream_entries(reader, strip="t",
                                                   exclude=[".aishell-env.json"]))
    assert from_dir == from_stream
    assert digest_tar([from_dir], strip="tools") == digest_directory(
        tree, exclude=[".aishell-env.json"])
    with tarfile.open(fileobj=io.BytesIO(from_dir)) as tf:
        members = tf.getmembers()
    assert {(m.mtime, m.uid, m.gid, m.uname) for m in members} == {(0, 0, 0, "")}
    assert all(m.name == "tools" or m.name.startswith("tools/") for m in members)
    assert ".aishell-env.json" not in {Path(m.name).name for m in members}
    modes = {m.name: m.mode for m in members}
    assert modes["tools/b/run"] == 0o755 and modes["tools/a.c"] == 0o644
    # A link carries its target's mode: the engine applies it to the shared file.
    assert modes["tools/b/run-too"] == 0o755 and modes["tools/b/hard"] == 0o644


def test_same_tree_copied_elsewhere_with_other_mtimes_and_modes_gives_the_same_layer(tmp_path):
    a = make_tree(tmp_path / "a")
    b = tmp_path / "b"
    subprocess.run(["cp", "-a", str(a), str(b)], check=True)
    os.utime(b / "a.c", (1, 1))
    (b / "ü name").chmod(0o600)
    digest = [hashlib.sha256(layer_bytes(layer.host_entries(t, exclude=[".aishell-env.json"])))
              .hexdigest() for t in (a, b)]
    assert digest[0] == digest[1]
    (b / "a.c").write_text("changed\n")
    assert hashlib.sha256(layer_bytes(layer.host_entries(b))).hexdigest() != digest[0]


def test_a_stream_out_of_canonical_order_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in ("t/b", "t/a"):
            info = tarfile.TarInfo(name)
            tf.addfile(info, io.BytesIO(b""))
    reader = TarReader(io.BufferedReader(io.BytesIO(buf.getvalue())))
    with pytest.raises(TreeDigestError, match="canonical order"):
        layer_bytes(layer.stream_entries(reader, strip="t"))
