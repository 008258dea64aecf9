"""npm's semver: versions, ranges and the choice of a version, as node-semver does it.

Supported: exact versions, primitive comparators (``<``, ``<=``, ``>``, ``>=``, ``=``),
x-ranges (``*``, ``1.x``, ``1.2``), tilde and caret ranges, hyphen ranges, and ``||``.
A prerelease version satisfies a range only when a comparator of the same comparator set
names a prerelease of the same ``major.minor.patch`` (node-semver's rule, without
``includePrerelease``). Reference: https://github.com/npm/node-semver#ranges
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import total_ordering

_NUM = r"0|[1-9]\d*"
_VERSION_RE = re.compile(
    rf"^\s*[v=]?\s*({_NUM})\.({_NUM})\.({_NUM})"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\s*$"
)
_XR = r"x|X|\*|0|[1-9]\d*"
_PARTIAL_RE = re.compile(
    rf"^[v=]?({_XR})(?:\.({_XR})(?:\.({_XR})"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?)?$"
)
_OP_RE = re.compile(r"^(<=|>=|<|>|=|~>|~|\^)?(.*)$")
TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]*$")


class SemverError(ValueError):
    """A version or range that npm would not accept."""


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple[int | str, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION_RE.match(text)
        if not m:
            raise SemverError(f"not a version: {text!r}")
        pre = tuple(int(p) if p.isdigit() else p for p in m.group(4).split(".")) if m.group(4) else ()
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, m.group(5) or "")

    @classmethod
    def try_parse(cls, text: str) -> Version | None:
        try:
            return cls.parse(text)
        except SemverError:
            return None

    def __str__(self) -> str:
        out = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            out += "-" + ".".join(str(p) for p in self.prerelease)
        return out

    @property
    def release(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def _key(self) -> tuple[object, ...]:
        # A release sorts after its prereleases; numeric identifiers sort before alphanumeric.
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.prerelease)
        return (self.release, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


_ZERO = Version(0, 0, 0)


def _lowest(major: int, minor: int, patch: int) -> Version:
    """``X.Y.Z-0``: the smallest version of a release, used for exclusive upper bounds."""
    return Version(major, minor, patch, (0,))


@dataclass(frozen=True)
class Comparator:
    op: str  # one of < <= > >= =
    version: Version

    def test(self, v: Version) -> bool:
        if self.op == "<":
            return v < self.version
        if self.op == "<=":
            return v <= self.version
        if self.op == ">":
            return v > self.version
        if self.op == ">=":
            return v >= self.version
        return v == self.version

    def __str__(self) -> str:
        return f"{'' if self.op == '=' else self.op}{self.version}"


def _xnum(part: str | None) -> int | None:
    return None if part is None or part in ("x", "X", "*") else int(part)


def _desugar(token: str) -> list[Comparator]:  # noqa: PLR0911 - one return per range form
    """One range token (``^1.2``, ``>=3``, ``1.x``) as plain comparators."""
    m = _OP_RE.match(token)
    assert m is not None
    op, rest = m.group(1) or "", m.group(2)
    p = _PARTIAL_RE.match(rest)
    if not p:
        raise SemverError(f"invalid version in range: {token!r}")
    ma, mi, pa = _xnum(p.group(1)), _xnum(p.group(2)), _xnum(p.group(3))
    if ma is None:
        mi = pa = None
    elif mi is None:
        pa = None
    pre = tuple(int(x) if x.isdigit() else x for x in p.group(4).split(".")) if p.group(4) else ()
    if pre and pa is None:
        raise SemverError(f"a prerelease needs a full version: {token!r}")
    if op in ("~", "~>"):
        if ma is None:
            return [Comparator(">=", _ZERO)]
        if mi is None:
            return [Comparator(">=", Version(ma, 0, 0)), Comparator("<", _lowest(ma + 1, 0, 0))]
        return [Comparator(">=", Version(ma, mi, pa or 0, pre)),
                Comparator("<", _lowest(ma, mi + 1, 0))]
    if op == "^":
        if ma is None:
            return [Comparator(">=", _ZERO)]
        if mi is None:
            return [Comparator(">=", Version(ma, 0, 0)), Comparator("<", _lowest(ma + 1, 0, 0))]
        low = Version(ma, mi, pa or 0, pre)
        if ma > 0:
            high = _lowest(ma + 1, 0, 0)
        elif mi > 0 or pa is None:
            high = _lowest(0, mi + 1, 0)
        else:
            high = _lowest(0, 0, pa + 1)
        return [Comparator(">=", low), Comparator("<", high)]
    if ma is None:  # *, x, or an operator with a bare x: anything (npm: "<x" matches nothing)
        return [Comparator("<", _ZERO)] if op in ("<", ">") else [Comparator(">=", _ZERO)]
    if mi is None or pa is None:  # a partial version: an x-range
        low = Version(ma, mi or 0, 0)
        high = _lowest(ma + 1, 0, 0) if mi is None else _lowest(ma, mi + 1, 0)
        if op in ("", "="):
            return [Comparator(">=", low), Comparator("<", high)]
        if op == ">":
            return [Comparator(">=", Version(*high.release))]
        if op == "<=":
            return [Comparator("<", high)]
        if op == "<":
            return [Comparator("<", _lowest(*low.release))]
        return [Comparator(">=", low)]
    return [Comparator(op or "=", Version(ma, mi, pa, pre))]


def _hyphen_bound(text: str, upper: bool) -> list[Comparator]:
    p = _PARTIAL_RE.match(text)
    if not p:
        raise SemverError(f"invalid version in range: {text!r}")
    ma, mi, pa = _xnum(p.group(1)), _xnum(p.group(2)), _xnum(p.group(3))
    if not upper:
        return _desugar(">=" + text) if ma is not None else []
    if ma is None:
        return []
    if mi is None:
        return [Comparator("<", _lowest(ma + 1, 0, 0))]
    if pa is None:
        return [Comparator("<", _lowest(ma, mi + 1, 0))]
    return _desugar("<=" + text)


@dataclass(frozen=True)
class Range:
    """A parsed npm range: comparator sets joined by ``||``."""

    raw: str
    sets: tuple[tuple[Comparator, ...], ...]

    @classmethod
    def parse(cls, text: str) -> Range:
        sets: list[tuple[Comparator, ...]] = []
        for raw in text.split("||"):
            part = raw.strip()
            hyphen = re.match(r"^(\S+)\s+-\s+(\S+)$", part)
            comps: list[Comparator] = []
            if hyphen:
                comps = _hyphen_bound(hyphen.group(1), False) + _hyphen_bound(hyphen.group(2), True)
            else:
                # "> 1.2" means ">1.2": glue operators to their version.
                glued = re.sub(r"(<=|>=|<|>|=|~>|~|\^)\s+", r"\1", part)
                for token in glued.split():
                    comps += _desugar(token)
            sets.append(tuple(comps) or (Comparator(">=", _ZERO),))
        return cls(text, tuple(sets))

    def __str__(self) -> str:
        return " || ".join(" ".join(str(c) for c in s) for s in self.sets)

    def test(self, v: Version) -> bool:
        return any(_test_set(s, v) for s in self.sets)

    def lower_bound(self) -> Version:
        """The smallest version any comparator set starts from (for "nearest" hints)."""
        lows = [c.version for s in self.sets for c in s if c.op in (">=", ">", "=")]
        return min(lows) if lows else _ZERO


def _test_set(comps: Sequence[Comparator], v: Version) -> bool:
    if not all(c.test(v) for c in comps):
        return False
    if not v.prerelease:
        return True
    return any(c.version.prerelease and c.version.release == v.release for c in comps)


def valid_range(text: str) -> bool:
    try:
        Range.parse(text)
    except SemverError:
        return False
    return True


def is_exact(text: str) -> bool:
    return Version.try_parse(text) is not None


def sort_versions(versions: Iterable[str]) -> list[Version]:
    """Every valid version of ``versions``, ascending (invalid strings are dropped)."""
    parsed = (Version.try_parse(v) for v in versions)
    return sorted(v for v in parsed if v is not None)


def max_satisfying(versions: Iterable[str], spec: str) -> Version | None:
    rng = Range.parse(spec)
    found = [v for v in sort_versions(versions) if rng.test(v)]
    return found[-1] if found else None


def pick(versions: Iterable[str], spec: str, dist_tags: dict[str, str]) -> Version | None:
    """The version npm installs for ``spec``: a dist-tag, else ``latest`` when it
    satisfies the range, else the highest satisfying version (npm-pick-manifest)."""
    available = list(versions)
    if spec in ("", "latest") or (TAG_RE.match(spec) and not valid_range(spec)):
        tagged = dist_tags.get(spec or "latest")
        return Version.try_parse(tagged) if tagged and tagged in available else None
    rng = Range.parse(spec)
    latest = Version.try_parse(dist_tags.get("latest", ""))
    if latest is not None and str(latest) in available and rng.test(latest):
        return latest
    return max_satisfying(available, spec)


def nearest(versions: Iterable[str], spec: str, count: int = 5) -> list[str]:
    """Up to ``count`` published versions around where ``spec`` points, ascending."""
    ordered = [v for v in sort_versions(versions) if not v.prerelease] or sort_versions(versions)
    if not ordered:
        return []
    try:
        anchor = Range.parse(spec).lower_bound()
    except SemverError:
        anchor = ordered[-1]
    index = next((i for i, v in enumerate(ordered) if v >= anchor), len(ordered))
    start = max(0, min(index - count // 2, len(ordered) - count))
    return [str(v) for v in ordered[start:start + count]]
