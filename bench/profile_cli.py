"""Where a short aishell command spends its time: interpreter, imports, work.

    uv run python -m bench.profile_cli [--repeat 10] [--cwd DIR] -- lock --check

For the given aishell arguments, in one run and alternately with `python -c pass`:

  wall         median wall time of the command (bytecode caching on, as users have it)
  python       median of `python -c pass` (the same interpreter)
  imports      median of a process that only imports the modules the command imports
               (its top-level imports per `-X importtime` that `python -c pass` lacks),
               minus `python -c pass`; -X importtime itself only names them
  work         wall - python - imports (argument parsing, reading files, engine calls)

then one cProfile run, listing the aishell functions with the most cumulative time outside
imports (for `exec`/`run`, up to the exec of the engine CLI, which the profile stubs out).
(importtime and cProfile inflate what they measure: read their figures as shares.)
"""

from __future__ import annotations

import argparse
import io
import pstats
import re
import statistics
import subprocess
import sys
from pathlib import Path

from bench.timing import bench_env, time_command

LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_times(argv: list[str], cwd: str | None, env: dict[str, str]) -> dict[str, int]:
    """Top-level imports of ``argv`` (a Python command line) -> cumulative µs."""
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    out: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        m = LINE.match(line)
        if m and len(m.group(3)) == 1:  # one space of indent: a top-level import
            out[m.group(4)] = out.get(m.group(4), 0) + int(m.group(2))
    return out


def profile(args: list[str], *, cwd: str | None, repeat: int, env: dict[str, str]) -> dict:
    py = [sys.executable]
    cmd = [*py, "-m", "aishell", *args]
    walls, bases, imports = [], [], []
    base_mods = set(import_times([*py, "-c", "pass"], None, env))
    last = import_times(cmd, cwd, env)
    mods = [k for k in last if k not in base_mods and k not in ("runpy", "__main__")]
    only_imports = [*py, "-c", "; ".join(f"import {m}" for m in mods)]
    time_command(cmd, env=env, cwd=cwd, check=False)
    for _ in range(repeat):
        walls.append(time_command(cmd, env=env, cwd=cwd, check=False))
        bases.append(time_command([*py, "-c", "pass"], env=env))
        imports.append(time_command(only_imports, env=env, cwd=cwd))
    top = sorted(((v / 1e3, k) for k, v in last.items() if k not in base_mods), reverse=True)
    wall, base, imp_wall = (statistics.median(x) for x in (walls, bases, imports))
    imp = imp_wall - base
    return {"wall": wall, "python": base, "imports": imp, "work": wall - base - imp,
            "top_imports_ms": top[:8], "functions": _cprofile(args, cwd, env)}


def _cprofile(args: list[str], cwd: str | None, env: dict[str, str]) -> list[tuple[float, str]]:
    script = (
        "import cProfile, pstats, sys, io\n"
        "sys.argv = ['aishell', *sys.argv[1:]]\n"
        "import os\n"
        "def _no_exec(*a, **k):\n    raise SystemExit(0)\n"
        "os.execvp = _no_exec  # launches: profile up to the hand-over to the engine CLI\n"
        "pr = cProfile.Profile(); pr.enable()\n"
        "from aishell.cli import entry\n"
        "try:\n    entry()\nexcept SystemExit:\n    pass\n"
        "pr.disable(); pr.dump_stats('PROFILE')\n"
    )
    out = Path(cwd or ".") / "PROFILE"
    subprocess.run([sys.executable, "-c", script, *args], cwd=cwd, env=env,
                   capture_output=True, check=False)
    stats = pstats.Stats(str(out), stream=io.StringIO())
    out.unlink()
    rows = []
    for (file, line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "/aishell/" in file and "<module>" not in name:
            rows.append((ct * 1000, f"{Path(file).name}:{line}({name})"))
    return sorted(rows, reverse=True)[:12]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_cli")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--cwd")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args()
    args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
    r = profile(args, cwd=ns.cwd, repeat=ns.repeat, env=bench_env())
    print(f"aishell {' '.join(args)}: wall {r['wall'] * 1000:.0f} ms = python "
          f"{r['python'] * 1000:.0f} ms + imports {r['imports'] * 1000:.0f} ms + work "
          f"{r['work'] * 1000:.0f} ms (medians of {ns.repeat})")
    print("top-level imports (ms, cumulative, one -X importtime run):")
    for ms, name in r["top_imports_ms"]:
        print(f"  {ms:6.1f}  {name}")
    print("aishell functions by cumulative time (ms, one cProfile run, imports excluded):")
    for ms, name in r["functions"]:
        print(f"  {ms:6.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
