"""Timing commands side by side: alternate runs, report min/median/max and ratios."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stats:
    samples: tuple[float, ...]

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def as_dict(self) -> dict[str, float]:
        return {"min": self.min, "median": self.median, "max": self.max, "n": len(self.samples)}


@dataclass(frozen=True)
class Row:
    figure: str
    aishell: Stats
    baseline: Stats | None
    target: str
    ok: bool
    unit: str = "s"
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline.median == 0:
            return None
        return self.aishell.median / self.baseline.median

    @property
    def added(self) -> float | None:
        return None if self.baseline is None else self.aishell.median - self.baseline.median


def bench_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for timed commands: bytecode caching on, as users have it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra or {})
    return env


def time_command(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 cwd: str | None = None, check: bool = True) -> float:
    start = time.perf_counter()
    proc = subprocess.run(list(argv), env=dict(env) if env else bench_env(), cwd=cwd,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return elapsed


def time_call(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(a: Callable[[], float], b: Callable[[], float], repeat: int,
              warmup: int = 1) -> tuple[Stats, Stats]:
    """Run ``a`` and ``b`` alternately ``repeat`` times each (after warm-up runs)."""
    for _ in range(warmup):
        a()
        b()
    sa: list[float] = []
    sb: list[float] = []
    for i in range(repeat):
        # Alternate which goes first so drift in machine load hits both alike.
        if i % 2:
            sb.append(b())
            sa.append(a())
        else:
            sa.append(a())
            sb.append(b())
    return Stats(tuple(sa)), Stats(tuple(sb))


def repeat_only(a: Callable[[], float], repeat: int, warmup: int = 1) -> Stats:
    for _ in range(warmup):
        a()
    return Stats(tuple(a() for _ in range(repeat)))
