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

from bench import detection, rows_launch, rows_store
from bench.context import BenchContext
from bench.timing import Row

ROWS: dict[str, Callable[[BenchContext], Row]] = {
    "cli": rows_launch.cli_start,
    "launch": rows_launch.launch,
    "detection": detection.detection_row,
    "digest-dir": rows_store.digest_directory_row,
    "digest-volume": rows_store.digest_volume_row,
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
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--live", action="store_true", help="include rows that use the real registry")
    args = parser.parse_args()
    names = [n for n in args.rows.split(",") if n]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown rows: {', '.join(unknown)}")
    results: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="aishell-bench-") as tmp:
        os.environ.setdefault("AISHELL_HOME", str(Path(tmp) / "home"))
        ctx = BenchContext(workdir=Path(tmp), repeat=args.repeat, live=args.live)
        for name in names:
            print(f"… {name}", file=sys.stderr, flush=True)
            results.append(ROWS[name](ctx))
    print(render(results))
    if args.json:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
        doc = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            "commit": commit,
            "rows": [
                {"figure": r.figure, "aishell": r.aishell.as_dict(),
                 "baseline": r.baseline.as_dict() if r.baseline else None,
                 "ratio": r.ratio, "added": r.added, "target": r.target, "ok": r.ok,
                 "note": r.note, **r.extra}
                for r in results
            ],
        }
        Path(args.json).write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
