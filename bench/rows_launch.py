"""Rows: CLI start-up and sandbox launch overhead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.context import BenchContext
from bench.timing import Row, alternate, bench_env, time_command


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


def _allowlist_setup(ctx: BenchContext) -> tuple[Path, Path, dict[str, str]]:
    """The launch project, a twin of it in allowlist mode (one allowed host), and the
    environment of a private aishell home both launch from; its egress service is up."""
    open_project, _image = launch_project(ctx)
    project = ctx.workdir / "allowlist project"
    project.mkdir(exist_ok=True)
    (project / "aishell.toml").write_text(
        '[network]\nmode = "allowlist"\nallow = ["registry.npmjs.org"]\n', encoding="utf-8")
    home = ctx.workdir / "allowlist home"
    env = bench_env({"AISHELL_HOME": str(home)})
    for where in (project, open_project):  # the proxy image built, the plans cached
        subprocess.run([*ctx.aishell, "exec", "--", "true"], cwd=where, env=env, check=True,
                       capture_output=True)
    ctx.cleanups.append(lambda: _remove_service(home))
    return open_project, project, env


def _remove_service(home: Path) -> None:
    label = f"label=dev.aishell.home={home / 'state'}"
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True,
                         text=True, check=False).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)


def allowlist_launch(ctx: BenchContext) -> Row:
    """An allowlist launch (its policy attached to the running egress service) vs an open
    one of the same kind: the cost of the proxy on every launch."""
    open_project, project, env = _allowlist_setup(ctx)
    aishell, baseline = alternate(
        lambda: time_command([*ctx.aishell, "exec", "--", "true"], cwd=str(project), env=env),
        lambda: time_command([*ctx.aishell, "exec", "--", "true"], cwd=str(open_project),
                             env=env),
        ctx.repeat,
    )
    added = aishell.median - baseline.median
    return Row("allowlist launch (`aishell exec -- true`, allowlist vs open mode)", aishell,
               baseline, "≤ 150 ms added", added <= 0.150)


def egress_start(ctx: BenchContext) -> Row:
    """The egress service's start, paid by the first allowlist launch of a home: a launch
    with the service removed first vs one with it running."""
    _open_project, project, env = _allowlist_setup(ctx)
    home = Path(env["AISHELL_HOME"])

    def cold() -> float:
        _remove_service(home)
        return time_command([*ctx.aishell, "exec", "--", "true"], cwd=str(project), env=env)

    aishell, baseline = alternate(
        cold,
        lambda: time_command([*ctx.aishell, "exec", "--", "true"], cwd=str(project), env=env),
        ctx.repeat,
    )
    return Row("egress service start (first allowlist launch of a home vs a later one)",
               aishell, baseline, "reported (paid once per home)", True)


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
