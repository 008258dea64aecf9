"""Rows: CLI start-up and sandbox launch overhead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.context import BenchContext
from bench.timing import Row, alternate, time_command


def cli_start(ctx: BenchContext) -> Row:
    aishell, baseline = alternate(
        lambda: time_command([*ctx.aishell, "--version"]),
        lambda: time_command([sys.executable, "-c", "pass"]),
        ctx.repeat,
    )
    added = aishell.median - baseline.median
    return Row("CLI start (`aishell --version` vs `python -c pass`)", aishell, baseline,
               "≤ 30 ms added", added <= 0.030)


def launch_project(ctx: BenchContext) -> tuple[Path, str]:
    """A project without harnesses, and the foundation image its sandboxes run (built)."""
    project = ctx.workdir / "launch project"
    project.mkdir(exist_ok=True)
    subprocess.run([*ctx.aishell, "build", "-q"], cwd=project, check=True)
    info = subprocess.run([*ctx.aishell, "info", "--json"], cwd=project, check=True,
                          capture_output=True, text=True).stdout
    return project, json.loads(info)["foundation_tag"]


def launch(ctx: BenchContext) -> Row:
    project, image = launch_project(ctx)
    uid, gid = os.getuid(), os.getgid()
    plain = ["docker", "run", "--rm", "--init", "--user", f"{uid}:{gid}",
             "--mount", f"type=bind,source={project},target={project}", "--workdir", str(project),
             "--entrypoint", "", image, "true"]
    aishell, baseline = alternate(
        lambda: time_command([*ctx.aishell, "exec", "--", "true"], cwd=str(project)),
        lambda: time_command(plain, cwd=str(project)),
        ctx.repeat,
    )
    added = aishell.median - baseline.median
    ratio = aishell.median / baseline.median
    return Row("launch (`aishell exec -- true` vs `docker run --rm --init`)", aishell, baseline,
               "≤ 1.10× and ≤ 50 ms added", ratio <= 1.10 and added <= 0.050)




def attach(ctx: BenchContext) -> Row:
    """`aishell attach NAME -- true` vs `docker exec` into the same running sandbox."""
    project, _image = launch_project(ctx)
    name = "bench-attach"
    subprocess.run([*ctx.aishell, "shell", "--detach", "--name", name], cwd=project, check=True,
                   capture_output=True)
    ctx.cleanups.append(lambda: subprocess.run([*ctx.aishell, "stop", name, "-t", "0"],
                                               cwd=project, capture_output=True, check=False))
    ps = json.loads(subprocess.run([*ctx.aishell, "ps", "--json"], cwd=project, check=True,
                                   capture_output=True, text=True).stdout)
    container = next(s["container"] for s in ps["sandboxes"] if s["name"] == name)
    uid, gid = os.getuid(), os.getgid()
    plain = ["docker", "exec", "--interactive", "--user", f"{uid}:{gid}", "--workdir",
             str(project), container, "true"]
    aishell, baseline = alternate(
        lambda: time_command([*ctx.aishell, "attach", name, "--", "true"], cwd=str(project)),
        lambda: time_command(plain, cwd=str(project)),
        ctx.repeat,
    )
    ratio = aishell.median / baseline.median
    return Row("attach (`aishell attach NAME -- true` vs `docker exec`)", aishell, baseline,
               "≤ 1.15×", ratio <= 1.15)
