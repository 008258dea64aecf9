"""Run the benchmark suite: `uv run python -m bench [--rows a,b] [--repeat N] [--json FILE]`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench import (
    detection,
    gc_store,
    rows_agent,
    rows_launch,
    rows_store,
    rows_substitute,
    rows_sync,
)
from bench.context import BenchContext
from bench.timing import Row

ROWS: dict[str, Callable[[BenchContext], Row]] = {
    "cli": rows_launch.cli_start,
    "launch": rows_launch.launch,
    "attach": rows_launch.attach,
    "allowlist": rows_launch.allowlist_launch,
    "agent-first": rows_agent.first_request_row,
    "agent-loop": rows_agent.round_trip_row,
    "broker": rows_agent.broker_row,
    "egress-start": rows_launch.egress_start,
    "lock-check": rows_sync.lock_check_row,
    "cold-sync": rows_sync.cold_sync_row,
    "offline-sync": rows_sync.offline_sync_row,
    "restore": rows_substitute.restore_row,
    "substituted": rows_substitute.substituted_row,
    "noop-sync": rows_sync.noop_sync_row,
    "harness-version": rows_sync.harness_version_row,
    "verify": rows_sync.verify_row,
    "gc": gc_store.gc_row,
    "detection": detection.detection_row,
    "sharing": rows_sync.sharing_row,
    "digest-dir": rows_store.digest_directory_row,
    "digest-volume": rows_store.digest_volume_row,
}
# Rows that need the real npm registry (the four real harnesses): only with --live.
LIVE = {"agent-first", "agent-loop", "broker", "cold-sync", "offline-sync", "restore", "substituted",
        "noop-sync", "harness-version", "verify", "sharing"}


def _sh(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False).stdout.strip()


def machine() -> dict[str, str]:
    return {
        "nproc": _sh("nproc"),
        "uname": _sh("uname", "-a"),
        "engine": _sh("docker", "version", "--format",
                      "{{.Server.Version}} (API {{.Server.APIVersion}})"),
        "python": platform.python_version(),
        "summary": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
    }


def _fmt(value: float, unit: str) -> str:
    return f"{value * 1000:.0f} ms" if unit == "s" and value < 10 else f"{value:.2f} {unit}"


def render(rows: list[Row]) -> str:
    lines = ["| figure | aishell (min / median / max) | baseline (median) | ratio | added | target | ok |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        a = r.aishell
        base = _fmt(r.baseline.median, r.unit) if r.baseline else "—"
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "—"
        added = _fmt(r.added, r.unit) if r.added is not None else "—"
        lines.append(
            f"| {r.figure} | {_fmt(a.min, r.unit)} / {_fmt(a.median, r.unit)} / {_fmt(a.max, r.unit)} "
            f"| {base} | {ratio} | {added} | {r.target} | {'✓' if r.ok else '✗'} |"
        )
        if r.note:
            lines.append(f"|  ↳ {r.note} | | | | | | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma list of {', '.join(ROWS)}")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--live-repeat", type=int, default=3,
                        help="repeats of the rows that install the real harnesses")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--live", action="store_true", help="include rows that use the real registry")
    args = parser.parse_args()
    names = [n for n in args.rows.split(",") if n]
    if not args.live:
        skipped = [n for n in names if n in LIVE]
        if skipped:
            print(f"skipping {', '.join(skipped)} (they use the real npm registry: --live)",
                  file=sys.stderr)
        names = [n for n in names if n not in LIVE]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown rows: {', '.join(unknown)}")
    results: list[Row] = []
    load_start = os.getloadavg()
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="aishell-bench-") as tmp:
        os.environ.setdefault("AISHELL_HOME", str(Path(tmp) / "home"))
        ctx = BenchContext(workdir=Path(tmp), repeat=args.repeat, live=args.live,
                           live_repeat=args.live_repeat)
        try:
            for name in names:
                print(f"… {name} (load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
                results.append(ROWS[name](ctx))
                print(render(results[-1:]).splitlines()[2], file=sys.stderr, flush=True)
        finally:
            rows_sync.cleanup(ctx)
    load_end = os.getloadavg()
    print(render(results))
    if args.json:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
        doc = {
            "date": started.isoformat(timespec="seconds"),
            "seconds": (dt.datetime.now(dt.UTC) - started).total_seconds(),
            "machine": machine(),
            "load_average": {"start": load_start, "end": load_end},
            "commit": commit,
            "rows": [
                {"name": name, "figure": r.figure, "unit": r.unit, "aishell": r.aishell.as_dict(),
                 "baseline": r.baseline.as_dict() if r.baseline else None,
                 "ratio": r.ratio, "added": r.added, "target": r.target, "ok": r.ok,
                 "note": r.note, **r.extra}
                for name, r in zip(names, results, strict=True)
            ],
        }
        Path(args.json).write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
