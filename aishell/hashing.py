"""BLAKE3 hashing with domain separation, shared by every content address aishell makes."""

from __future__ import annotations

import json
from typing import Any

from blake3 import blake3


def derive(context: str, data: bytes) -> str:
    """Hex BLAKE3 of ``data`` in key-derivation mode under ``context``.

    Each kind of id (foundation, env, tree digest, …) has its own versioned context
    string, so equal bytes hashed for different purposes never give equal ids.
    """
    return blake3(data, derive_key_context=context).hexdigest()


def canonical_json(value: Any) -> bytes:
    """A canonical serialization: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def plain(data: bytes) -> str:
    """Hex BLAKE3 of ``data`` (for content hashes of single inputs)."""
    return blake3(data).hexdigest()
