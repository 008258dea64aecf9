"""The canonical layer of an env image: one tar, a function of the tree alone.

An env volume becomes a single-layer OCI image whose layer is this tar. It holds the tree
under ``tools/`` (so the image's ``/tools`` is the env) and nothing else: no marker, no
mtimes (all 0), no owners (0:0, no names), modes reduced to what the tree digest sees
(directories 0755, files 0755 when owner-executable else 0644, symlinks 0777). Entries
come depth-first with the names of each directory sorted bytewise — the order Go's
``filepath.WalkDir`` gives, so the engine's own archive of a volume arrives in it — and a
second name of a hard-linked file is a hard link to the first, with the first's mode (an
engine that unpacks the layer applies a link's mode to the shared file, so a link header
of 0644 would take the executable bit off its target). Long or non-UTF-8 names go
into pax records, which :mod:`tarfile` writes deterministically.

The same tree therefore gives the same bytes on every machine, whether it is read from
the volume's directory (:func:`host_entries`) or from the engine's archive stream
(:func:`stream_entries`); the engine records the layer's diff id as the SHA-256 of
exactly these bytes (docker keeps the stream with tar-split), so two machines that built
the same lock publish the same layer.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

from aishell.store import tarstream
from aishell.store.tarstream import TarReader
from aishell.store.treedigest import TreeDigestError

ROOT = b"tools"
_CHUNK = 1 << 20
BLOCK = tarstream.BLOCK



@dataclass(frozen=True)
class Entry:
    """One tree entry, its path relative to the tree root; ``chunks`` yields a file's content."""

    path: bytes
    kind: str  # tarstream.REGULAR / DIRECTORY / SYMLINK / HARDLINK
    executable: bool = False
    size: int = 0
    linkname: bytes = b""
    chunks: Callable[[], Iterator[bytes]] | None = None


def _key(path: bytes) -> tuple[bytes, ...]:
    return tuple(path.split(b"/"))


def _excluded(path: bytes, exclude: set[bytes]) -> bool:
    return path in exclude or any(path.startswith(e + b"/") for e in exclude)


def host_entries(root: str | os.PathLike[str], *,
                 exclude: Collection[str] = ()) -> Iterator[Entry]:
    """The tree under the directory ``root``, in canonical order (symlinks never followed)."""
    base = os.fsencode(root)
    skip = {os.fsencode(e).strip(b"/") for e in exclude}
    seen: dict[tuple[int, int], bytes] = {}
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)

    def walk(rel_dir: bytes) -> Iterator[Entry]:
        where = os.path.join(base, rel_dir) if rel_dir else base  # noqa: PTH118 - bytes paths
        with os.scandir(where) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = rel_dir + b"/" + entry.name if rel_dir else entry.name
            if _excluded(rel, skip):
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                yield Entry(rel, tarstream.SYMLINK, linkname=os.readlink(entry.path))  # noqa: PTH115
            elif stat.S_ISDIR(st.st_mode):
                yield Entry(rel, tarstream.DIRECTORY)
                yield from walk(rel)
            elif stat.S_ISREG(st.st_mode):
                if st.st_nlink > 1:
                    first = seen.setdefault((st.st_dev, st.st_ino), rel)
                    if first != rel:
                        yield Entry(rel, tarstream.HARDLINK, linkname=first)
                        continue
                yield Entry(rel, tarstream.REGULAR, bool(st.st_mode & stat.S_IXUSR),
                            st.st_size, chunks=_file_chunks(entry.path, flags, st.st_size))
            else:
                raise TreeDigestError(f"cannot export {os.fsdecode(entry.path)}: "
                                      "not a file, directory or symlink")

    yield from walk(b"")


def _file_chunks(path: bytes, flags: int, size: int) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        fd = os.open(path, flags)
        try:
            left = size
            while left:
                data = os.read(fd, min(left, _CHUNK))
                if not data:
                    raise TreeDigestError(f"{os.fsdecode(path)} shrank while it was exported")
                left -= len(data)
                yield data
        finally:
            os.close(fd)
    return chunks


def stream_entries(reader: TarReader, *, strip: str | None,
                   exclude: Collection[str] = ()) -> Iterator[Entry]:
    """The tree an engine archive holds (members ``strip/...``), checked to be canonical.

    Raises:
        TreeDigestError: the archive is not in canonical order (an engine whose archive
            walks differently), or holds something other than files, dirs and symlinks.
    """
    prefix = os.fsencode(strip).strip(b"/") if strip else b""
    skip = {os.fsencode(e).strip(b"/") for e in exclude}
    last: tuple[bytes, ...] = ()
    for member in reader:
        path = member.path.strip(b"/")
        while path.startswith(b"./"):
            path = path[2:]
        if prefix:
            if path == prefix:
                continue
            if not path.startswith(prefix + b"/"):
                raise TreeDigestError(f"archive member {os.fsdecode(member.path)!r} lies "
                                      "outside the tree")
            path = path[len(prefix) + 1:]
        if path in (b"", b".") or _excluded(path, skip):
            continue
        if _key(path) <= last:
            raise TreeDigestError("the engine's archive is not in canonical order "
                                  f"({os.fsdecode(path)!r}); cannot export it reproducibly")
        last = _key(path)
        if member.kind == tarstream.REGULAR:
            yield Entry(path, member.kind, bool(member.mode & stat.S_IXUSR), member.size,
                        chunks=reader.iter_content)
        elif member.kind == tarstream.HARDLINK:
            target = member.linkname.strip(b"/")
            if prefix and target.startswith(prefix + b"/"):
                target = target[len(prefix) + 1:]
            yield Entry(path, member.kind, linkname=target)
        elif member.kind in (tarstream.SYMLINK, tarstream.DIRECTORY):
            yield Entry(path, member.kind, linkname=member.linkname)
        else:
            raise TreeDigestError(f"cannot export archive member {os.fsdecode(path)!r}: "
                                  "not a file, directory or symlink")


_TYPES = {tarstream.REGULAR: tarfile.REGTYPE, tarstream.DIRECTORY: tarfile.DIRTYPE,
          tarstream.SYMLINK: tarfile.SYMTYPE, tarstream.HARDLINK: tarfile.LNKTYPE}


def _header(path: bytes, entry: Entry | None, executable: bool = False) -> bytes:
    info = tarfile.TarInfo(os.fsdecode(path))
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry is None or entry.kind == tarstream.DIRECTORY:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    info.type = _TYPES[entry.kind]
    if entry.kind == tarstream.REGULAR:
        info.mode, info.size = (0o755 if entry.executable else 0o644), entry.size
    elif entry.kind == tarstream.SYMLINK:
        info.mode, info.linkname = 0o777, os.fsdecode(entry.linkname)
    else:
        info.mode = 0o755 if executable else 0o644
        info.linkname = os.fsdecode(ROOT + b"/" + entry.linkname)
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def canonical_tar(entries: Iterable[Entry]) -> Iterator[bytes]:
    """The canonical layer tar of ``entries`` as a stream of chunks (see the module doc)."""
    yield _header(ROOT, None)
    executable: set[bytes] = set()  # regular files with the executable bit, for their links
    for entry in entries:
        yield _header(ROOT + b"/" + entry.path, entry, entry.linkname in executable)
        if entry.kind == tarstream.REGULAR and entry.executable:
            executable.add(entry.path)
        if entry.kind != tarstream.REGULAR or not entry.size:
            continue
        if entry.chunks is None:
            raise ValueError(f"entry {entry.path!r} has no content")
        got = 0
        for chunk in entry.chunks():
            got += len(chunk)
            yield chunk
        if got != entry.size:
            raise TreeDigestError(f"{os.fsdecode(entry.path)} changed size while it was "
                                  "exported")
        if entry.size % BLOCK:
            yield bytes(BLOCK - entry.size % BLOCK)
    yield bytes(2 * BLOCK)
