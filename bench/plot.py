"""Plots for docs/performance.md from a `python -m bench --json` file.

    uv run python -m bench.plot bench/results/full.json [--out docs]

performance-sync.png    cold sync (aishell vs npm install -g), offline re-sync, no-op sync and
                        no-op lock check on one log axis, min-max whiskers around the median.
performance-ratios.png  every row's time ratio aishell/baseline against its target.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt

AISHELL = "#2f6db5"
BASELINE = "#9a9a9a"


def _bar(ax, y: float, stats: dict[str, float], color: str, label: str | None = None) -> None:
    med = stats["median"]
    ax.barh(y, med, color=color, height=0.6, label=label)
    ax.errorbar(med, y, xerr=[[med - stats["min"]], [stats["max"] - med]], fmt="none",
                ecolor="black", capsize=3, lw=1)
    ax.text(stats["max"] * 1.08, y, f"{med:.2f} s" if med >= 1 else f"{med * 1000:.0f} ms",
            va="center", fontsize=9)


def sync_plot(rows: dict[str, dict[str, Any]], out: Path) -> None:
    bars: list[tuple[str, dict[str, float], str]] = []
    if "cold-sync" in rows:
        bars += [("cold sync: npm install -g (baseline)", rows["cold-sync"]["baseline"], BASELINE),
                 ("cold sync: aishell sync", rows["cold-sync"]["aishell"], AISHELL)]
    if "offline-sync" in rows:
        bars.append(("offline rebuild (cache warm)", rows["offline-sync"]["aishell"], AISHELL))
    if "substituted" in rows:
        bars.append(("substituted (fresh home)", rows["substituted"]["aishell"], AISHELL))
    if "restore" in rows:
        bars.append(("restore from the local archive", rows["restore"]["aishell"], AISHELL))
    if "noop-sync" in rows:
        bars.append(("no-op sync", rows["noop-sync"]["aishell"], AISHELL))
    if "lock-check" in rows:
        bars.append(("no-op lock --check", rows["lock-check"]["aishell"], AISHELL))
        bars.append(("python -c pass", rows["lock-check"]["baseline"], BASELINE))
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(bars) + 1.2))
    for i, (_label, stats, color) in enumerate(reversed(bars)):
        _bar(ax, i, stats, color)
    ax.set_yticks(range(len(bars)), [b[0] for b in reversed(bars)])
    ax.set_xscale("log")
    ax.set_xlim(0.005, max(b[1]["max"] for b in bars) * 4)
    ax.set_xlabel("seconds (log scale); bar = median, whiskers = min–max")
    ax.set_title("Getting the four-harness env (claude, codex, gemini, opencode)")
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "performance-sync.png", dpi=110)
    plt.close(fig)


TARGET_RATIO = {  # rows whose target is a time ratio aishell/baseline (upper bound)
    "launch": 1.10, "attach": 1.15, "cold-sync": 1.0, "restore": 0.35,
    "verify": 1 / 0.8, "detection": 3.0,
}


def ratio_plot(rows: dict[str, dict[str, Any]], out: Path) -> None:
    # Rows with an absolute target (CLI start, lock check, no-op sync, gc) compare with
    # `python -c pass` or a bare engine call: their ratios say little; the table has them.
    names = [n for n, r in rows.items() if r.get("ratio") is not None
             and (n in TARGET_RATIO or n.startswith("digest"))]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(names) + 1.4))
    for i, name in enumerate(reversed(names)):
        r = rows[name]
        ax.barh(i, r["ratio"], color=AISHELL if r["ok"] else "#c0392b", height=0.6)
        ax.text(r["ratio"] * 1.05, i, f"{r['ratio']:.2f}×", va="center", fontsize=9)
        if name in TARGET_RATIO:
            ax.plot([TARGET_RATIO[name]] * 2, [i - 0.4, i + 0.4], color="black", lw=2)
    ax.set_yticks(range(len(names)), list(reversed(names)))
    ax.set_xscale("log")
    ticks = [0.1, 0.2, 0.35, 0.5, 1, 2, 3, 5]
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.minorticks_off()
    ax.axvline(1, color=BASELINE, lw=1, ls="--")
    ax.set_xlabel("time ratio aishell / baseline, same run (log); black tick = target; "
                  "red = misses its target")
    ax.set_title("Rows measured as a ratio to their baseline (lower is faster)")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.set_xlim(right=max(rows[n]["ratio"] for n in names) * 2)
    fig.tight_layout()
    fig.savefig(out / "performance-ratios.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plot")
    parser.add_argument("json")
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    doc = json.loads(Path(args.json).read_text())
    rows = {r["name"]: r for r in doc["rows"]}
    out = Path(args.out)
    sync_plot(rows, out)
    ratio_plot(rows, out)


if __name__ == "__main__":
    main()
