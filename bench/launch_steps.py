"""Where `aishell exec -- true` spends its time, step by step, against plain `docker run`.

The engine CLI aishell execs is found on PATH, so the bench puts a `docker` wrapper first on
PATH that records the moment aishell hands over (its exec) and then execs the real CLI. Each
sample splits into

  python start      `python -c pass`, same interpreter (measured alternately)
  aishell (Python)  start of `aishell exec` until it execs the engine CLI, minus python start
  docker run        from that exec until the container has exited (aishell's request:
                    its mounts, env, and the entrypoint that maps the host user)

and is compared with `docker run --rm --init --user UID:GID` of the same image and mount
(the `launch` row's baseline), alternately.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

from bench.context import BenchContext
from bench.rows_launch import launch_project
from bench.timing import Row, Stats, bench_env, time_command


def launch_steps_row(ctx: BenchContext) -> Row:
    project, image = launch_project(ctx)
    real = shutil.which("docker")
    assert real is not None
    wrap = ctx.workdir / "docker-wrapper"
    wrap.mkdir(exist_ok=True)
    stamp = wrap / "stamp"
    (wrap / "docker").write_text(f'#!/bin/sh\ndate +%s.%N > "{stamp}"\nexec "{real}" "$@"\n')
    (wrap / "docker").chmod(0o755)
    env = bench_env({"PATH": f"{wrap}:{os.environ['PATH']}"})
    uid, gid = os.getuid(), os.getgid()
    plain = ["docker", "run", "--rm", "--init", "--user", f"{uid}:{gid}",
             "--mount", f"type=bind,source={project},target={project}", "--workdir", str(project),
             "--entrypoint", "", image, "true"]

    def aishell_once() -> tuple[float, float]:
        start = time.time()
        subprocess.run([*ctx.aishell, "exec", "--", "true"], cwd=project, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        end = time.time()
        handed = float(stamp.read_text())
        return handed - start, end - handed

    py, python_part, docker_part, totals, base = [], [], [], [], []
    aishell_once()
    time_command(plain, cwd=str(project))
    for i in range(ctx.repeat):
        order = [0, 1, 2] if i % 2 == 0 else [2, 1, 0]
        for step in order:
            if step == 0:
                py.append(time_command([sys.executable, "-c", "pass"]))
            elif step == 1:
                p, d = aishell_once()
                python_part.append(p)
                docker_part.append(d)
                totals.append(p + d)
            else:
                base.append(time_command(plain, cwd=str(project)))
    med = statistics.median
    extra = {"python_start": med(py), "aishell_python": med(python_part) - med(py),
             "aishell_docker_run": med(docker_part), "plain_docker_run": med(base)}
    a, b = Stats(tuple(totals)), Stats(tuple(base))
    return Row("launch, step by step (`aishell exec -- true` split at its exec of the engine CLI) "
               "vs `docker run --rm --init`", a, b, "≤ 1.10× and ≤ 50 ms added",
               a.median <= 1.10 * b.median and a.median - b.median <= 0.050,
               note=(f"python start {extra['python_start'] * 1000:.0f} ms + aishell before exec "
                     f"{extra['aishell_python'] * 1000:.0f} ms + docker run of its request "
                     f"{extra['aishell_docker_run'] * 1000:.0f} ms; plain docker run "
                     f"{extra['plain_docker_run'] * 1000:.0f} ms"),
               extra=extra)
