"""The tree digest: one content hash for a whole directory tree, NAR-style.

The same tree gives the same digest whether it is read from a directory on the host
(:func:`digest_directory`) or from a tar stream (:func:`digest_tar`) — the form in which
the engine hands out the content of a volume (``GET /containers/{id}/archive``), which
works with remote engines and without root access to the engine's data directory.

What is hashed (format v1), for every entry below the root except the root itself:

* a directory: its path;
* a regular file: its path, whether the owner-executable bit is set, its size and the
  BLAKE3 of its content;
* a symlink: its path and its target (never followed).

Nothing else: no mtimes, owners, groups or other permission bits, so a tree copied,
re-owned or made world-readable keeps its digest. Paths are relative, ``/``-separated raw
bytes; entries are sorted bytewise by path, so the order in which a walk or a tar
stream yields them does not matter. Each entry is length-prefixed, so no two different
trees serialize to the same bytes. The serialization is hashed with BLAKE3 in
key-derivation mode under :data:`CONTEXT`. Device nodes, FIFOs and sockets are
rejected: an env never contains them.

Each file's content is read exactly once and streamed through BLAKE3 (memory-mapped and
multi-threaded for big files), so a digest runs near the speed of reading the files.
"""

from __future__ import annotations

import io
import mmap
import os
import stat
import struct
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from blake3 import blake3

from aishell.errors import AishellError
from aishell.hashing import derive
from aishell.store import tarstream
from aishell.store.tarstream import Member, TarError, TarReader

CONTEXT = "aishell 2026-11 tree digest v1"
FORMAT_VERSION = 1

_CHUNK = 1 << 20
_MMAP_THRESHOLD = 4 << 20  # above this, mmap the file and let BLAKE3 use every core
_U32 = struct.Struct(">I")
_FILE = struct.Struct(">BQ")


class TreeDigestError(AishellError):
    """The tree holds something the digest cannot represent, or the stream is broken."""


@dataclass(frozen=True)
class TreeDigest:
    """A tree's digest with the number of regular files and their total size."""

    digest: str
    files: int
    bytes: int


def _dir_record(path: bytes) -> bytes:
    return b"d" + _U32.pack(len(path)) + path


def _file_record(path: bytes, executable: bool, size: int, content_hash: bytes) -> bytes:
    return b"f" + _U32.pack(len(path)) + path + _FILE.pack(int(executable), size) + content_hash


def _link_record(path: bytes, target: bytes) -> bytes:
    return b"l" + _U32.pack(len(path)) + path + _U32.pack(len(target)) + target


class _Builder:
    """Collects entries in any order and hashes them sorted."""

    def __init__(self, exclude: Collection[str | bytes]) -> None:
        self.records: dict[bytes, bytes] = {}
        self.sizes: dict[bytes, int] = {}
        self.exclude = {os.fsencode(e).strip(b"/") for e in exclude}

    def excluded(self, path: bytes) -> bool:
        if not self.exclude:
            return False
        if path in self.exclude:
            return True
        return any(path.startswith(e + b"/") for e in self.exclude)

    def add(self, path: bytes, record: bytes) -> None:
        # A path seen twice (a tar appended to) keeps its last entry, as tar extraction does.
        self.records[path] = record
        self.sizes.pop(path, None)

    def add_file(self, path: bytes, executable: bool, size: int, content_hash: bytes) -> None:
        self.records[path] = _file_record(path, executable, size, content_hash)
        self.sizes[path] = size

    def result(self) -> TreeDigest:
        data = b"".join(self.records[p] for p in sorted(self.records))
        return TreeDigest(derive(CONTEXT, data), len(self.sizes), sum(self.sizes.values()))


# -- a directory on the host -------------------------------------------------------


def _hash_fd(fd: int, size: int, buf: bytearray) -> bytes:
    if size >= _MMAP_THRESHOLD:
        with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
            return blake3(mapped, max_threads=blake3.AUTO).digest()
    hasher = blake3()
    view = memoryview(buf)
    while True:
        n = os.readv(fd, [view])
        if not n:
            break
        hasher.update(view[:n])
    return hasher.digest()


def digest_directory(root: Path | str, *, exclude: Collection[str | bytes] = ()) -> TreeDigest:
    """The tree digest of the directory ``root`` (which itself is not an entry).

    Args:
        root: a directory; symlinks inside it are recorded, never followed.
        exclude: relative paths (and everything below them) left out of the digest.

    Raises:
        TreeDigestError: the tree holds a device, FIFO or socket, or cannot be read.
    """
    base = os.fsencode(root)
    builder = _Builder(exclude)
    buf = bytearray(_CHUNK)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    stack: list[bytes] = [b""]
    try:
        while stack:
            rel_dir = stack.pop()
            # Raw bytes paths (names need not be UTF-8), which pathlib does not take.
            where = os.path.join(base, rel_dir) if rel_dir else base  # noqa: PTH118
            with os.scandir(where) as it:
                entries = list(it)
            for entry in entries:
                rel = rel_dir + b"/" + entry.name if rel_dir else entry.name
                if builder.excluded(rel):
                    continue
                if entry.is_symlink():
                    builder.add(rel, _link_record(rel, os.readlink(entry.path)))  # noqa: PTH115
                elif entry.is_dir(follow_symlinks=False):
                    builder.add(rel, _dir_record(rel))
                    stack.append(rel)
                elif entry.is_file(follow_symlinks=False):
                    fd = os.open(entry.path, flags)
                    try:
                        st = os.fstat(fd)
                        content = _hash_fd(fd, st.st_size, buf)
                    finally:
                        os.close(fd)
                    builder.add_file(rel, bool(st.st_mode & stat.S_IXUSR), st.st_size, content)
                else:
                    raise TreeDigestError(
                        f"cannot digest {os.fsdecode(entry.path)}: not a file, directory or symlink"
                    )
    except OSError as exc:
        raise TreeDigestError(f"cannot read {exc.filename or os.fsdecode(base)}: {exc.strerror}"
                              ) from exc
    return builder.result()


# -- a tar stream -----------------------------------------------------------------


class ChunkReader(io.RawIOBase):
    """A readable binary file over an iterator of byte chunks (an engine's HTTP body)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.consumed += n
        return n


def _member_path(path: bytes, strip: bytes | None) -> bytes | None:
    """The member's path relative to the root, b"" for the root, None when outside it."""
    while path.startswith(b"./"):
        path = path[2:]
    path = path.strip(b"/")
    if path == b".":
        path = b""
    if strip is not None:
        if path == strip:
            return b""
        if not path.startswith(strip + b"/"):
            return None
        path = path[len(strip) + 1 :]
    return path


def digest_tar(
    stream: BinaryIO | Iterable[bytes],
    *,
    strip: str | None = None,
    exclude: Collection[str | bytes] = (),
    on_bytes: Callable[[int], None] | None = None,
) -> TreeDigest:
    """The tree digest of the tree a tar stream holds, read once, front to back.

    Args:
        stream: a binary file, or an iterator of byte chunks (the engine's archive body).
        strip: the name of the tree's root inside the archive: the engine's archive of
            ``/tools`` holds ``tools`` and ``tools/...``; ``None`` for archives made
            relative to the root (``tar -C root -c .``).
        exclude: relative paths (and everything below them) left out of the digest.
        on_bytes: called with the number of content bytes hashed so far (progress).

    Raises:
        TreeDigestError: a member is a device, FIFO or socket, lies outside ``strip``,
            is a hard link to nothing, or the stream is not a complete, valid tar.
    """
    fileobj: BinaryIO = (
        stream if hasattr(stream, "read")  # type: ignore[assignment]
        else io.BufferedReader(ChunkReader(stream), _CHUNK)
    )
    walker = _TarWalker(os.fsencode(strip).strip(b"/") if strip else None, exclude, on_bytes)
    reader = TarReader(fileobj)
    try:
        for member in reader:
            walker.add(reader, member)
    except TarError as exc:
        raise TreeDigestError(f"the archive stream is not a valid tar: {exc}") from exc
    return walker.builder.result()


class _TarWalker:
    def __init__(self, prefix: bytes | None, exclude: Collection[str | bytes],
                 on_bytes: Callable[[int], None] | None) -> None:
        self.prefix = prefix
        self.builder = _Builder(exclude)
        self.on_bytes = on_bytes
        self.content: dict[bytes, tuple[bool, int, bytes]] = {}
        self.done = 0
        self.builder_started = False

    def add(self, reader: TarReader, member: Member) -> None:
        if self.done == 0 and not self.builder_started and member.path == b"/":
            # Podman 4's archive of a directory is rooted at `/`, not at the directory's name.
            self.prefix = None
        self.builder_started = True
        rel = _member_path(member.path, self.prefix)
        shown = os.fsdecode(member.path)
        if rel is None:
            raise TreeDigestError(f"archive member {shown!r} lies outside the root "
                                  f"{os.fsdecode(self.prefix or b'')!r}")
        if rel == b"" or self.builder.excluded(rel):
            return
        if member.kind == tarstream.REGULAR:
            self.content[rel] = (bool(member.mode & stat.S_IXUSR), member.size,
                                 self._hash(reader, member.size))
            self.builder.add_file(rel, *self.content[rel])
        elif member.kind == tarstream.HARDLINK:
            target = _member_path(member.linkname, self.prefix)
            if target is None or target not in self.content:
                raise TreeDigestError(
                    f"archive member {shown!r} is a hard link to "
                    f"{os.fsdecode(member.linkname)!r}, which the archive does not hold before it"
                )
            self.content[rel] = self.content[target]
            self.builder.add_file(rel, *self.content[target])
        elif member.kind == tarstream.SYMLINK:
            self.builder.add(rel, _link_record(rel, member.linkname))
        elif member.kind == tarstream.DIRECTORY:
            self.builder.add(rel, _dir_record(rel))
        else:
            raise TreeDigestError(
                f"cannot digest archive member {shown!r}: not a file, directory or symlink"
            )

    def _hash(self, reader: TarReader, size: int) -> bytes:
        hasher = blake3(max_threads=blake3.AUTO) if size >= _MMAP_THRESHOLD else blake3()
        reader.stream_content(hasher.update)
        self.done += size
        if self.on_bytes is not None:
            self.on_bytes(self.done)
        return hasher.digest()
