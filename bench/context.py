"""What every benchmark row receives."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BenchContext:
    workdir: Path
    repeat: int
    live: bool
    live_repeat: int = 3
    # What one row sets up and later rows reuse (the synced four-harness project, the cold
    # sync's samples, the warm download cache), and what to remove when the run ends.
    state: dict[str, Any] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def aishell(self) -> list[str]:
        exe = Path(sys.executable).parent / "aishell"
        return [str(exe)] if exe.exists() else [sys.executable, "-m", "aishell"]
