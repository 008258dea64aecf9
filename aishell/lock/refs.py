"""What a lockfile references in the store: env ids and download-cache tarballs.

The garbage collector reads locks only through these functions, so the day the lock
format changes only this module follows (lock/README.md is the format's reference).
They read the TOML generically and never validate: gc must keep working on a lock an
older or newer aishell wrote.
"""

from __future__ import annotations

import base64
import binascii
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SRI_ALGORITHMS = ("sha512", "sha384", "sha256", "sha1")


class LockUnreadable(Exception):
    """The lock exists but is not TOML (e.g. merge-conflict markers)."""


def _parse(data: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LockUnreadable(str(exc)) from exc


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair anywhere in a parsed TOML document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def env_ids_of(data: bytes) -> set[str]:
    """The env ids a lock's bytes name (see :func:`lock_env_ids`)."""
    # The lock format (lock/README.md): one table per platform, `[env."linux/amd64"] id = "…"`.
    env = _parse(data).get("env")
    if not isinstance(env, dict):
        return set()
    return {t["id"] for t in env.values() if isinstance(t, dict) and isinstance(t.get("id"), str)
            and t["id"]}


def lock_env_ids(lock_path: Path) -> set[str]:
    """Every env id the lock at ``lock_path`` references, for every platform.

    Follows lock/README.md: ``[env.<platform>] id``. Only TOML is required, not a lock
    that passes every check: gc must still see what a damaged lock references.

    Raises:
        FileNotFoundError: there is no lock at ``lock_path``.
        LockUnreadable: the file is not valid TOML.
    """
    return env_ids_of(lock_path.read_bytes())


def lock_integrities(data: bytes) -> set[str]:
    """Every SRI ``integrity`` value in a lock's bytes (tarballs, Node.js, npm)."""
    return {v for k, v in _walk(_parse(data)) if k == "integrity" and isinstance(v, str)}


def tarball_keys(integrity: str) -> set[str]:
    """The download-cache keys (``<algorithm>/<hex digest>``) an SRI string names.

    Mirrors the cache layout of :mod:`aishell.lock.cache` (``tarballs/<alg>/<hex[:2]>/<hex>``);
    every algorithm the string names is kept, not only the strongest, to err on the side
    of keeping a file.
    """
    keys: set[str] = set()
    for token in integrity.split():
        algorithm, _, rest = token.partition("-")
        if algorithm.lower() not in SRI_ALGORITHMS or not rest:
            continue
        try:
            digest = base64.b64decode(rest.split("?", 1)[0], validate=True)
        except (binascii.Error, ValueError):
            continue
        keys.add(f"{algorithm.lower()}/{digest.hex()}")
    return keys


def tarball_key_of(path: Path, root: Path) -> str | None:
    """The cache key of a file under the tarball cache ``root``, or None for anything else.

    ``root/sha512/3f/3f9a…`` → ``sha512/3f9a…``; entry locks (``….lock``) map to their
    entry, so they go with it; temporary and foreign files map to None (unreferenced).
    """
    rel = path.relative_to(root).parts
    if len(rel) != 3 or rel[0] not in SRI_ALGORITHMS:
        return None
    name = rel[2].removesuffix(".lock")
    if not name.startswith(rel[1]) or any(c not in "0123456789abcdef" for c in name):
        return None
    return f"{rel[0]}/{name}"
