"""What every benchmark row receives."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BenchContext:
    workdir: Path
    repeat: int
    live: bool

    @property
    def aishell(self) -> list[str]:
        exe = Path(sys.executable).parent / "aishell"
        return [str(exe)] if exe.exists() else [sys.executable, "-m", "aishell"]
