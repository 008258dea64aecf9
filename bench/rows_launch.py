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
               "≤ 40 ms added", added <= 0.040)


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


