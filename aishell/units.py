"""Durations (``30d``, ``12h``, ``90m``) and sizes (``10G``, ``512MiB``) typed by users."""

from __future__ import annotations

import re
from datetime import timedelta

from aishell.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` (a number and one unit)."""
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"invalid duration {text!r}",
                         hint="write a number and a unit: 30d, 12h, 90m, 45s or 2w")
    return timedelta(seconds=float(m.group(1)) * _SECONDS[m.group(2).lower()])


def parse_size(text: str) -> int:
    """Bytes from ``10G``, ``1.5GB``, ``512MiB``, ``300k`` or a plain number.

    Decimal units like ``docker system df`` prints them (1G = 1000³ bytes); ``GiB`` and
    friends are binary.
    """
    m = _SIZE.match(text)
    if not m or (m.group(3) and not m.group(2) and m.group(3).lower() != "b"):
        raise UsageError(f"invalid size {text!r}", hint="write a number and a unit: 500M, 10G, 1T")
    base = 1024 if m.group(3).lower().startswith("i") else 1000
    return int(float(m.group(1)) * base ** _POWERS[m.group(2).lower()])


def format_size(size: int) -> str:
    """A short human size in decimal units, as docker prints them: ``812 B``, ``4.2 MB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError  # pragma: no cover


def format_age(delta: timedelta) -> str:
    """``just now``, ``5 minutes ago``, ``3 hours ago``, ``12 days ago``."""
    seconds = int(delta.total_seconds())
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            n = seconds // length
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"
