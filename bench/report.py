"""The results table of docs/performance.md from a `python -m bench --json` file.

    uv run python -m bench.report bench/results/run.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

FIGURES = {
    "cli": "CLI start: `aishell --version` vs `python -c pass`",
    "launch": "launch: `aishell exec -- true` vs `docker run --rm --init`, same image, mount, user",
    "lock-check": "no-op lock check: `aishell lock --check`, fresh lock, no network, no engine",
    "noop-sync": "no-op sync: `aishell sync`, everything present",
    "cold-sync": "cold sync: four real harnesses, empty download cache, new env volume vs "
                 "`npm install -g` of the same four into a fresh volume",
    "attach": "attach: `aishell attach NAME -- true` vs `docker exec` into the same sandbox",
    "offline-sync": "offline rebuild: env volume removed, no restore archive, cache warm "
                    "(`sync --offline`) vs the cold sync",
    "restore": "restore: env volume removed, `sync --offline` from the local restore archive vs "
               "the cold sync",
    "substituted": "substituted sync: fresh home, empty cache, env pulled from a loopback "
                   "`docker-registry` vs the cold sync",
    "harness-version": "harness start: `aishell claude --version` vs `docker run … claude "
                       "--version`, same env volume",
    "verify": "verify: `aishell verify` of the four-harness env vs `sha256sum` over the same files",
    "gc": "gc: 300 items (200 volumes, 100 images), half unreachable, vs `docker volume rm` + "
          "`docker rmi` of the same 150",
    "detection": "detection: sensitive-file scan of a 100,000-file tree vs `find TREE -type f`",
    "sharing": "sharing: 10 projects with one lock, `aishell sync` in each",
    "digest-dir": "tree digest of a directory vs `sha256sum` of every file",
    "digest-volume": "tree digest of a volume through the engine's tar stream vs `docker cp` "
                     "into `sha256sum`",
}
THROUGHPUT = {"verify", "digest-dir", "digest-volume"}


def _t(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _span(s: dict[str, float]) -> str:
    if s["median"] < 10:
        return f"{s['min'] * 1000:.0f} / **{s['median'] * 1000:.0f}** / {s['max'] * 1000:.0f} ms"
    return f"{s['min']:.1f} / **{s['median']:.1f}** / {s['max']:.1f} s"


def line(r: dict[str, Any]) -> str:
    name, a, b = r["name"], r["aishell"], r["baseline"]
    figure = FIGURES.get(name, r["figure"])
    if r["unit"] != "s":
        cells = [f"**{a['median']:.2f} {r['unit']}** ({r.get('volumes', '?')} env volume)",
                 f"{b['median']:.2f} {r['unit']}", f"{r['ratio']:.2f}×"]
    elif name in THROUGHPUT:
        cells = [_span(a), _t(b["median"]), f"**{b['median'] / a['median']:.1f}× their throughput**"]
    elif name in ("cli", "lock-check", "noop-sync", "gc"):
        extra = f"{r['ratio']:.2f}×" if name == "gc" else f"+{r['added'] * 1000:.0f} ms"
        cells = [_span(a), _t(b["median"]), extra]
    else:
        added = f", {r['added'] * 1000:+.0f} ms" if name.startswith("launch") else ""
        cells = [_span(a), _t(b["median"]), f"{r['ratio']:.2f}×{added}"]
    return f"| {figure} | {' | '.join(cells)} | {r['target']} | {'✓' if r['ok'] else '✗'} |"


def main() -> int:
    doc = json.loads(Path(sys.argv[1]).read_text())
    print("| figure | aishell min / **median** / max | baseline (median) | ratio | target | |")
    print("|---|---|---|---|---|---|")
    for r in doc["rows"]:
        print(line(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
