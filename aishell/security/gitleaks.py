"""Gitleaks: the command line it runs, and when each project was last scanned.

The scan time of each project lives in the state directory, one small JSON file per
project (``gitleaks/<project hash>.json``), written atomically: a concurrent scan of
another project never races with this one, and a crash leaves the old record intact.
Launches compare it with ``[security] gitleaks_freshness_days`` (default 7; 0 turns
the warning off).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3

if TYPE_CHECKING:
    from aishell.project.context import Context

DEFAULT_FRESHNESS_DAYS = 7
SCAN_COMMANDS = ("detect", "protect")
OTHER_COMMANDS = ("version", "help", "completion")
# The gitleaks in Debian (8.16) predates `gitleaks dir` / `gitleaks git`, which the
# original aishell documented (`aishell gitleaks dir .`): translate them.
NEW_STYLE = {"dir": ["detect", "--no-git", "--source"], "git": ["detect", "--source"]}
DEFAULT_ARGS = ("detect", "--no-git", "--redact", "--verbose", "--source")


def gitleaks_argv(args: Sequence[str], project: Path) -> list[str]:
    """The gitleaks command for ``aishell gitleaks ARGS``.

    No arguments (or only options) scans the project's files (``detect --no-git``,
    secrets redacted, findings listed); ``dir [PATH]`` and ``git [PATH]`` are the newer
    gitleaks spellings; anything else is passed to gitleaks unchanged.
    """
    args = list(args)
    if not args or args[0].startswith("-"):
        return ["gitleaks", *DEFAULT_ARGS, str(project), *args]
    if args[0] in NEW_STYLE:
        rest = args[1:]
        path = rest.pop(0) if rest and not rest[0].startswith("-") else str(project)
        return ["gitleaks", *NEW_STYLE[args[0]], path, *rest]
    return ["gitleaks", *args]


def is_scan(argv: Sequence[str]) -> bool:
    return len(argv) > 1 and argv[1] in SCAN_COMMANDS and not {"-h", "--help"} & set(argv)


def completed(argv: Sequence[str], returncode: int, output: str) -> bool:
    """Whether gitleaks finished a whole scan (leaks found or not).

    Exit 1 means "leaks found" but also "bad flag" or "not a git repository", so the
    log decides: a full scan ends with ``no leaks found`` or ``leaks found: N``, a scan
    that hit errors says ``partial scan``.
    """
    if not is_scan(argv) or "partial scan" in output:
        return False
    return returncode == 0 or re.search(r"leaks found: \d+", output) is not None


@dataclass(frozen=True)
class ScanRecord:
    project: str
    scanned_at: str  # ISO 8601, UTC
    exit_code: int
    seconds: float

    @property
    def when(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.scanned_at)


def _record_path(state: Path, project: Path) -> Path:
    key = blake3.blake3(str(project).encode()).hexdigest()[:16]
    return state / "gitleaks" / f"{key}.json"


def record_scan(state: Path, project: Path, *, exit_code: int, seconds: float,
                now: dt.datetime | None = None) -> ScanRecord:
    """Write the scan record of ``project`` atomically (temp file + rename)."""
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    record = ScanRecord(str(project), when.isoformat(timespec="seconds"), exit_code,
                        round(seconds, 3))
    path = _record_path(state, project)
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # noqa: PLC0415 - only `aishell gitleaks` writes; launches only read

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(record), fh, indent=2, sort_keys=True)
            fh.write("\n")
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return record


def last_scan(state: Path, project: Path) -> ScanRecord | None:
    """The recorded scan of ``project``; None when there is none (or it is unreadable)."""
    try:
        data: Any = json.loads(_record_path(state, project).read_text(encoding="utf-8"))
        record = ScanRecord(str(data["project"]), str(data["scanned_at"]),
                            int(data["exit_code"]), float(data["seconds"]))
        record.when  # noqa: B018 - validates the timestamp
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if record.project == str(project) else None


def freshness_days(security: Mapping[str, Any]) -> int:
    value = security.get("gitleaks_freshness_days", DEFAULT_FRESHNESS_DAYS)
    return value if isinstance(value, int) else DEFAULT_FRESHNESS_DAYS


def freshness_message(record: ScanRecord | None, days: int,
                      now: dt.datetime | None = None) -> str | None:
    """The warning for a scan record, or None when it is fresh (or ``days`` is 0)."""
    if days <= 0:
        return None
    if record is None:
        return ("no Gitleaks scan recorded for this project: run `aishell gitleaks` to "
                "check it for committed secrets")
    age = (now or dt.datetime.now(dt.UTC)) - record.when
    if age <= dt.timedelta(days=days):
        return None
    return (f"the last Gitleaks scan of this project was {age.days} days ago "
            f"(more than {days}): run `aishell gitleaks`")


def freshness_warning(ctx: Context, now: dt.datetime | None = None) -> str | None:
    """The launch-time warning about this project's Gitleaks scan, if any."""
    return freshness_message(last_scan(ctx.paths.state, ctx.project),
                             freshness_days(ctx.config.table("security")), now)
