"""Sensitive-file detection: one walk of the project, names matched case-insensitively.

The patterns of SPEC section 8 (plus the user's ``[security] custom_patterns``) are
compiled once into a :class:`Matcher`: exact names become dictionary lookups, ``*.ext``
globs a second lookup on the extension, and every other glob one combined regular
expression whose alternatives are ordered by precedence. The walk (:func:`scan`) is a
single iterative ``os.scandir`` pass that never descends into the skip list, so the cost
is one ``lower()``, two dict lookups and at most one regex match per file, whatever the
number of patterns.

Precedence, first wins: custom patterns (the user may raise or lower a built-in), then
HIGH, then LOW (``.env.example`` is LOW although ``.env.*`` is MEDIUM), then MEDIUM.
"""

from __future__ import annotations

import fnmatch
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from aishell import process
from aishell.errors import AishellError

Severity = Literal["high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("high", "medium", "low")

SKIP_DIRS = frozenset({
    ".git", "node_modules", "vendor", "target", "build", "dist", "__pycache__",
    ".venv", "venv", ".cache",
})

HIGH = (
    "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "*.ppk", "*.p12", "*.pfx", "*.jks",
    "*.keystore", "application_default_credentials.json", "terraform.tfstate*", ".pypirc",
    ".netrc", "master.key", "credentials*.yml.enc",
)
MEDIUM = (
    ".env", ".env.*", ".envrc", "*.pem", "*.key", "kubeconfig", ".kube/config", ".npmrc",
    ".yarnrc.yml", ".terraformrc", "credentials.tfrc.json", ".docker/config.json",
    "secret.*", "secrets.*", "vault.*", "token.*", "apikey.*", "private.*", ".pgpass",
    ".my.cnf", "database.yml",
)
# .env files that are documentation, not secrets; checked before MEDIUM.
LOW = (".env*example*", ".env*sample*")

_GLOB_CHARS = re.compile(r"[*?\[]")


# NamedTuples, not dataclasses: this module is imported on every launch and a frozen
# dataclass costs ~0.7 ms to create.
class Rule(NamedTuple):
    pattern: str
    severity: Severity
    custom: bool = False


class AllowEntry(NamedTuple):
    path: str
    reason: str


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the project, '/'-separated
    severity: Severity
    pattern: str
    may_be_committed: bool = False


@dataclass(frozen=True)
class DetectionResult:
    findings: tuple[Finding, ...]
    files_scanned: int
    seconds: float
    allowed: tuple[tuple[str, str], ...] = ()  # (path, reason) of findings the allowlist hid
    in_git_repo: bool = False

    def by_severity(self) -> dict[Severity, list[Finding]]:
        groups: dict[Severity, list[Finding]] = {s: [] for s in SEVERITIES}
        for finding in self.findings:
            groups[finding.severity].append(finding)
        return groups

    @property
    def high(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "high"]


class Matcher:
    """Every pattern, compiled once into one tier-ordered lookup; :meth:`match` classifies
    one file name.

    Each rule has a rank (its tier: custom, HIGH, LOW, MEDIUM). Exact names and ``*.ext``
    globs go to dictionaries that keep the best-ranked rule; the other globs form one
    regex whose alternatives are sorted by rank, so its first match is its best. A name
    takes the best-ranked of those (at most three) candidates.
    """

    def __init__(self, custom: Mapping[str, str] | None = None) -> None:
        tiers: list[list[Rule]] = [
            [Rule(p, s, custom=True) for p, s in (custom or {}).items() if s in SEVERITIES],
            [Rule(p, "high") for p in HIGH],
            [Rule(p, "low") for p in LOW],
            [Rule(p, "medium") for p in MEDIUM],
        ]
        self.exact: dict[str, tuple[int, Rule]] = {}
        self.ext: dict[str, tuple[int, Rule]] = {}
        self.paths: dict[str, list[tuple[str, int, Rule]]] = {}  # last name -> (dir/name, …)
        self.globs: list[tuple[int, Rule]] = []
        self.path_globs: list[tuple[int, Rule]] = []
        for rank, rules in enumerate(tiers):
            for rule in rules:
                pat = rule.pattern.lower().strip("/")
                if "/" in pat:
                    if _GLOB_CHARS.search(pat):
                        self.path_globs.append((rank, Rule(pat, rule.severity, rule.custom)))
                    else:
                        last = pat.rsplit("/", 1)[1]
                        self.paths.setdefault(last, []).append((pat, rank, rule))
                elif not _GLOB_CHARS.search(pat):
                    self.exact.setdefault(pat, (rank, rule))
                elif pat.startswith("*.") and not _GLOB_CHARS.search(pat[2:]) \
                        and "." not in pat[2:]:
                    self.ext.setdefault(pat[2:], (rank, rule))
                else:
                    self.globs.append((rank, rule))
        self.regex = _combine([r for _, r in self.globs])
        self.path_regex = _combine([r for _, r in self.path_globs])

    def match(self, name: str, rel: str | None = None) -> Rule | None:
        """The rule ``name`` (at ``rel``, relative to the project) falls under, if any."""
        lname = name.lower()
        best = self.exact.get(lname)
        dot = lname.rfind(".")
        if dot > 0:  # a leading dot is a hidden name, not an extension
            hit = self.ext.get(lname[dot + 1:])
            if hit is not None and (best is None or hit[0] < best[0]):
                best = hit
        if self.regex is not None:
            m = self.regex.match(lname)
            if m is not None:
                hit = self.globs[int(m.lastgroup[1:])]  # type: ignore[index]
                if best is None or hit[0] < best[0]:
                    best = hit
        if lname in self.paths or self.path_regex is not None:
            lrel = (rel if rel is not None else name).lower()
            for suffix, rank, rule in self.paths.get(lname, ()):
                if (lrel == suffix or lrel.endswith("/" + suffix)) and (
                        best is None or rank < best[0]):
                    best = (rank, rule)
            if self.path_regex is not None:
                m = self.path_regex.match(lrel)
                if m is not None:
                    hit = self.path_globs[int(m.lastgroup[1:])]  # type: ignore[index]
                    if best is None or hit[0] < best[0]:
                        best = hit
        return None if best is None else best[1]


def _combine(rules: Sequence[Rule]) -> re.Pattern[str] | None:
    if not rules:
        return None
    parts = [f"(?P<r{i}>{fnmatch.translate(r.pattern.lower())})" for i, r in enumerate(rules)]
    return re.compile("|".join(parts))


class Allowlist:
    """``[security] allowlist`` entries: a path, a directory (its whole subtree) or a glob."""

    def __init__(self, entries: Iterable[AllowEntry]) -> None:
        self.exact: dict[str, AllowEntry] = {}
        self.dirs: list[tuple[str, AllowEntry]] = []
        globs: list[AllowEntry] = []
        for entry in entries:
            pat = entry.path.lower().replace("\\", "/").strip()
            pat = pat.removeprefix("./").rstrip("/")
            if _GLOB_CHARS.search(pat):
                globs.append(AllowEntry(pat, entry.reason))
            else:
                self.exact[pat] = entry
                self.dirs.append((pat + "/", entry))
        self.globs = globs
        self.regex = _combine([Rule(g.path, "low") for g in globs])

    def reason(self, rel: str) -> str | None:
        lrel = rel.lower()
        entry = self.exact.get(lrel)
        if entry is None:
            entry = next((e for prefix, e in self.dirs if lrel.startswith(prefix)), None)
        if entry is None and self.regex is not None:
            m = self.regex.match(lrel)
            if m is not None:
                entry = self.globs[int(m.lastgroup[1:])]  # type: ignore[index]
        return None if entry is None else entry.reason


def walk(root: Path, matcher: Matcher) -> tuple[list[tuple[str, Rule]], int]:
    """One pass over ``root``: (relative path, rule) of every match, and the file count."""
    hits: list[tuple[str, Rule]] = []
    count = 0
    stack: list[tuple[str, str]] = [(str(root), "")]
    skip = SKIP_DIRS
    match = matcher.match
    while stack:
        path, prefix = stack.pop()
        try:
            it = os.scandir(path)
        except OSError:  # unreadable or vanished directory: nothing to report from it
            continue
        with it:
            for entry in it:
                name = entry.name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if is_dir:
                    if name not in skip:
                        stack.append((entry.path, prefix + name + "/"))
                    continue
                count += 1
                rel = prefix + name
                rule = match(name, rel)
                if rule is not None:
                    hits.append((rel, rule))
    hits.sort(key=lambda h: h[0])
    return hits, count


def git_not_ignored(project: Path, paths: Sequence[str]) -> tuple[set[str], bool]:
    """Which of ``paths`` git would not ignore (one ``git check-ignore --stdin``).

    Returns (not-ignored paths, whether ``project`` is inside a git work tree). Outside a
    repository nothing can be committed, so the set is empty.
    """
    if not paths:
        return set(), False
    try:
        result = process.run(
            ["git", "check-ignore", "-z", "--stdin"],
            check=False, cwd=project, input="\0".join(paths) + "\0",
        )
    except AishellError:  # no git on the host: we cannot tell, say nothing
        return set(), False
    if result.returncode not in (0, 1):  # 128: not a git repository
        return set(), False
    ignored = {p for p in result.stdout.split("\0") if p}
    return {p for p in paths if p not in ignored}, True


def _allow_entries(raw: object) -> list[AllowEntry]:
    entries = []
    for item in raw if isinstance(raw, list) else ():
        if isinstance(item, dict) and isinstance(item.get("path"), str):
            entries.append(AllowEntry(item["path"], str(item.get("reason", ""))))
    return entries


def scan(
    project: Path,
    *,
    custom_patterns: Mapping[str, str] | None = None,
    allowlist: Iterable[AllowEntry] = (),
) -> DetectionResult:
    """Walk ``project`` once and classify every file name."""
    start = time.perf_counter()
    hits, count = walk(project, Matcher(custom_patterns))
    allow = Allowlist(allowlist)
    kept: list[tuple[str, Rule]] = []
    allowed: list[tuple[str, str]] = []
    for rel, rule in hits:
        reason = allow.reason(rel)
        if reason is None:
            kept.append((rel, rule))
        else:
            allowed.append((rel, reason))
    high = [rel for rel, rule in kept if rule.severity == "high"]
    not_ignored, in_repo = git_not_ignored(project, high)
    findings = tuple(
        Finding(rel, rule.severity, rule.pattern, rel in not_ignored) for rel, rule in kept
    )
    return DetectionResult(findings, count, time.perf_counter() - start, tuple(allowed), in_repo)


def scan_project(project: Path, security: Mapping[str, Any]) -> DetectionResult:
    """:func:`scan` with the ``[security]`` table's custom patterns and allowlist."""
    return scan(
        project,
        custom_patterns=security.get("custom_patterns") or {},
        allowlist=_allow_entries(security.get("allowlist")),
    )


# -- rendering (pure: lines of text) ----------------------------------------------

COLLAPSE_OVER = 3
LABELS: dict[Severity, str] = {
    "high": "HIGH (credentials an agent should never see)",
    "medium": "MEDIUM (may hold secrets)",
    "low": "LOW (example files, usually harmless)",
}


def _groups(findings: Sequence[Finding]) -> list[list[Finding]]:
    """Findings of one pattern together, in first-seen order."""
    by_pattern: dict[str, list[Finding]] = {}
    for finding in findings:
        by_pattern.setdefault(finding.pattern, []).append(finding)
    return list(by_pattern.values())


def _describe(finding: Finding) -> str:
    return f"{finding.path}  (may be committed)" if finding.may_be_committed else finding.path


def render_lines(findings: Sequence[Finding]) -> list[str]:
    """Findings grouped by severity, then by pattern; a pattern with more than three
    files collapses to a count and two examples."""
    lines: list[str] = []
    for severity in SEVERITIES:
        mine = [f for f in findings if f.severity == severity]
        if not mine:
            continue
        lines.append(f"{LABELS[severity]}:")
        for group in _groups(mine):
            if len(group) > COLLAPSE_OVER:
                committed = sum(f.may_be_committed for f in group)
                examples = ", ".join(f.path for f in group[:2])
                extra = f", {committed} may be committed" if committed else ""
                lines.append(f"  {len(group)} files match {group[0].pattern}"
                             f" (e.g. {examples}{extra})")
            else:
                lines.extend(f"  {_describe(f)}" for f in group)
    return lines
