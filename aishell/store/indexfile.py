"""The host index's file: locked, atomic reads and writes of ``<state>/index.json``.

Kept apart from :mod:`aishell.store.index` (the model) so a launch can record its use with
nothing but ``json``, ``os`` and ``fcntl``: this is on the path of every ``aishell run``.
The lock is a plain ``flock(2)`` (the ``filelock`` package costs ~50 ms to import); the
kernel releases it when the process dies. Writes go to a temporary file that replaces the
index with ``os.replace`` after an fsync, so a crash leaves the old or the new index.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from aishell.errors import AishellError
from aishell.paths import Paths

VERSION = 1
INDEX_FILE = "index.json"
LOCKFILE = "aishell.lock"


class IndexCorrupt(AishellError):
    """The index file exists but cannot be read: gc must not guess what is referenced."""


def index_path(paths: Paths) -> Path:
    return paths.state / INDEX_FILE


def iso_now() -> str:
    """The current UTC minute as ISO 8601 (what ``datetime.fromisoformat`` reads back).

    Minutes are precise enough for "last used" (gc's grace period is an hour), and they
    let repeated launches within a minute leave the index untouched (see update_doc).
    """
    return time.strftime("%Y-%m-%dT%H:%M:00+00:00", time.gmtime())


def project_key(project: Path) -> str:
    return str(project.resolve())


def read_doc(paths: Paths) -> dict[str, Any]:
    """The index document as last committed (an empty one when there is none yet).

    Raises:
        IndexCorrupt: the file is not an index this aishell can read.
    """
    path = index_path(paths)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"version": VERSION}
    except (OSError, UnicodeDecodeError) as exc:  # a directory, no permission, not UTF-8
        raise corrupt(path, getattr(exc, "strerror", None) or exc) from exc
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise corrupt(path, exc) from exc
    if not isinstance(doc, dict):
        raise corrupt(path, "not a JSON object")
    if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
        raise IndexCorrupt(
            f"{path} was written by a newer aishell (index version {doc.get('version')})",
            hint="upgrade aishell; until then gc and pins cannot use this index",
        )
    return doc


def corrupt(path: Path, why: object) -> IndexCorrupt:
    return IndexCorrupt(
        f"{path} is damaged ({why}); gc refuses to guess what is still referenced",
        hint=f"move it aside (`mv {path} {path}.bad`); projects re-register on their "
             "next sync or run, so wait for that before `aishell gc`",
    )


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old or the new bytes, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: importing tempfile costs milliseconds on the launch path.
    tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            mode = path.stat().st_mode & 0o7777  # keep the replaced file's permissions
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # what a plain open() would have made
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def update_doc(paths: Paths, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Read, change and commit the index document under its file lock; returns it."""
    paths.ensure_state()
    fd = os.open(str(index_path(paths)) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = index_path(paths)
        before = path.read_bytes() if path.exists() else b""
        doc = change(read_doc(paths))
        doc["version"] = VERSION
        after = json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n"
        if after != before:  # a launch that changes nothing costs no write (and no fsync)
            write_atomic(path, after)
        return doc
    finally:
        os.close(fd)


_held: set[str] = set()  # the homes whose gc-roots publishing lock this process holds


@contextlib.contextmanager
def roots_lock(paths: Paths) -> Iterator[None]:
    """One publisher of this home's gc roots at a time (aishell.store.engineroots).

    Here, with nothing but ``os`` and ``fcntl``, so a launch's recording child takes it
    the moment it starts. Re-entrant within a process. Whoever takes it next (a test's
    teardown) waits until that child has published.
    """
    lock = paths.state / "locks" / "gcroots.lock"
    path = str(lock)
    if path in _held:
        yield
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _held.add(path)
        yield
    finally:
        _held.discard(path)
        os.close(fd)


def record_launch(paths: Paths, project: Path, images: Sequence[tuple[str, str, str]]) -> None:
    """Record that ``project`` runs these images, (role, id, tag): a launch that knows no env.

    Keeps the project's env ids and generations (``sync`` records those).
    """
    now = iso_now()
    key = project_key(project)
    refs = [{"role": role, "id": image_id, "tag": tag} for role, image_id, tag in images]

    def change(doc: dict[str, Any]) -> dict[str, Any]:
        projects = doc.setdefault("projects", {})
        record = projects.get(key)
        if record is None:
            lock = Path(key) / LOCKFILE
            record = {"path": key, "lock_path": str(lock), "locked": lock.is_file(), "env_ids": {},
                      "first_seen": now, "current": None, "generations": []}
            projects[key] = record
        record["images"] = refs
        record["last_used"] = now
        used = doc.setdefault("last_used", {})
        used.update({f"image:{r['id']}": now for r in refs if r["id"]})
        return doc

    update_doc(paths, change)
