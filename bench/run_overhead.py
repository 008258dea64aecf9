"""`aishell exec -- true` against the engine CLI given the very same container, side by side.

Three commands, alternated run by run (so drift hits all of them alike):

  aishell      `aishell exec -- true` in a project with a [run] config
  same-argv    the exact `docker run …` argv aishell execs (same image, mounts, env,
               labels, entrypoint): the difference is aishell's own cost
  plain        `docker run --rm --init` of the same image with the same bind mounts
               and the image's entrypoint, without aishell's env and labels

Run: `uv run python -m bench.run_overhead [--repeat 20]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _time(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run_overhead")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aishell-overhead-") as tmp:
        root = Path(tmp)
        project = root / "project"
        project.mkdir()
        data = root / "data"
        data.mkdir()
        (project / "aishell.toml").write_text(
            f'[run]\nmounts = ["{data}:/data:ro"]\nenv = {{ DEBUG = "1" }}\n'
            'docker_args = ["--label", "dev.aishell.test=1"]\n', encoding="utf-8")
        env = {**os.environ, "AISHELL_HOME": str(root / "state")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        aishell = [sys.executable, "-m", "aishell"]
        subprocess.run([*aishell, "build", "-q"], cwd=project, env=env, check=True)

        os.environ["AISHELL_HOME"] = env["AISHELL_HOME"]
        from aishell.project.context import Context
        from aishell.request import cli_args
        from aishell.run.launch import RunOptions, prepare

        ctx = Context.create(str(project))
        req = prepare(ctx, RunOptions(), tty=False, one_shot=True, command=["true"]).request
        same = cli_args(req, "docker")
        same_env = {**env, **req.process_env()}
        plain = ["docker", "run", "--rm", "--init", "--label", "dev.aishell.test=1"]
        for m in req.mounts:
            plain += ["--mount", m.spec()]
        plain += ["--workdir", str(project), req.image, "true"]

        commands = {
            "aishell exec -- true": ([*aishell, "exec", "--", "true"], env),
            "docker run (same argv as aishell)": (same, same_env),
            "docker run --rm --init (same image, same mounts)": (plain, env),
        }
        for argv, e in commands.values():  # warm-up: page cache, bytecode
            _time(argv, project, e)
        samples: dict[str, list[float]] = {k: [] for k in commands}
        for _ in range(args.repeat):
            for key, (argv, e) in commands.items():
                samples[key].append(_time(argv, project, e))
    base = statistics.median(samples["docker run --rm --init (same image, same mounts)"])
    print(f"{'command':52} {'min':>8} {'median':>8} {'max':>8}  vs plain (median)")
    for key, values in samples.items():
        med = statistics.median(values)
        print(f"{key:52} {min(values) * 1000:7.0f}ms {med * 1000:7.0f}ms "
              f"{max(values) * 1000:7.0f}ms  {med / base:5.2f}x  {(med - base) * 1000:+5.0f} ms")
    print(f"(n = {args.repeat} alternating runs each, {len(req.mounts)} mounts)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
