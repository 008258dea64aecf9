"""Rows: the real Claude Code doing a tool-call loop, through aishell and through a bare
`docker run` of the same foundation image and env volume (live: the env comes from npm).

Both run ``claude -p`` headless against the stub of the Anthropic Messages API the tests use
(``tests/stubs/anthropic.py``), bound to the engine host's address on the default network:
turn 1 the stub asks for a ``Write`` of a file in the project, turn 2 it ends the turn.
*Time to first model request* is from the process's start to the stub receiving the first
``/v1/messages`` request; *agent round trip* is the whole run (two turns and the write).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from bench.context import BenchContext
from bench.project import EXAMPLE
from bench.timing import Row, Stats, bench_env

KEY = "sk-ant-bench-not-a-real-key"
PROMPT = "Write the file bench.txt."


def _project(ctx: BenchContext) -> tuple[Path, dict[str, str], str, str]:
    """The lock example's project under its own names (its env shared with the live tests),
    synced; its environment, foundation image and env volume."""
    if "agent" not in ctx.state:
        from aishell.engine import Engine
        from tests.lock.test_locking_live import MANIFEST
        from tests.stubs.base import engine_host_address

        project = ctx.workdir / "agent project"
        project.mkdir(parents=True, exist_ok=True)
        (project / "aishell.toml").write_text(MANIFEST, encoding="utf-8")
        shutil.copy(EXAMPLE, project / "aishell.lock")
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        env = bench_env({"AISHELL_HOME": str(ctx.workdir / "agent home"),
                         "HOME": str(ctx.workdir / "agent user")})
        env.pop("npm_config_registry", None)
        Path(env["HOME"]).mkdir(exist_ok=True)
        subprocess.run([*ctx.aishell, "sync", "--locked", "-q"], cwd=project, env=env, check=True)
        info = subprocess.run([*ctx.aishell, "info", "--json"], cwd=project, env=env, check=True,
                              capture_output=True, text=True).stdout
        import json

        from aishell.lock.freshness import read_lock
        from aishell.store.envs import volume_name

        lock = read_lock(project / "aishell.lock")
        assert lock is not None
        volume = volume_name(lock.env_ids()["linux/amd64"])
        engine = Engine()
        ctx.state["agent"] = (project, env, json.loads(info)["foundation_tag"], volume,
                              engine_host_address(engine))
        engine.close()
    project, env, image, volume, _host = ctx.state["agent"]
    return project, env, image, volume


def _timed(argv: list[str], env: dict[str, str], cwd: Path, stub: object) -> tuple[float, float]:
    """(seconds to the first model request, seconds for the whole run)."""
    requests = stub.requests  # type: ignore[attr-defined]
    before = len(requests)
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, cwd=str(cwd), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    total = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} … exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    model = [r for r in requests[before:] if "/v1/messages" in r.path]
    if len(model) < 2:
        raise RuntimeError(f"the stub saw {len(model)} model request(s), not a loop")
    return model[0].at - start, total


def agent_rows(ctx: BenchContext) -> list[Row]:
    from tests.stubs.anthropic import AnthropicStub
    from tests.stubs.base import Script, StubServer

    project, env, image, volume = _project(ctx)
    host = ctx.state["agent"][4]
    target = project / "bench.txt"
    with StubServer(AnthropicStub, Script(str(target), "bench\n"), host) as stub:
        run_env = {**env, "ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": stub.base_url}
        mine = [*ctx.aishell, "claude", "-p", PROMPT, "--output-format", "text"]
        uid, gid = os.getuid(), os.getgid()
        bare = ["docker", "run", "--rm", "--init", "--interactive", "--user", f"{uid}:{gid}",
                "--entrypoint", "",
                "--mount", f"type=volume,source={volume},target=/tools,readonly",
                "--mount", f"type=bind,source={project},target={project}",
                "--workdir", str(project),
                "--env", "PATH=/tools/bin:/tools/node/bin:/usr/bin:/bin", "--env", "HOME=/tmp",
                "--env", "IS_SANDBOX=1", "--env", "DISABLE_AUTOUPDATER=1",
                "--env", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
                "--env", f"ANTHROPIC_API_KEY={KEY}", "--env", f"ANTHROPIC_BASE_URL={stub.base_url}",
                image, "claude", "--dangerously-skip-permissions", "-p", PROMPT,
                "--output-format", "text"]
        first_a: list[float] = []
        first_b: list[float] = []
        total_a: list[float] = []
        total_b: list[float] = []
        _timed(mine, run_env, project, stub)  # warm-up, both
        _timed(bare, run_env, project, stub)
        for i in range(ctx.live_repeat * 2):
            order = ((mine, first_a, total_a), (bare, first_b, total_b))
            for argv, first, total in (order if i % 2 == 0 else order[::-1]):
                target.unlink(missing_ok=True)
                f, t = _timed(argv, run_env, project, stub)
                first.append(f)
                total.append(t)
    a1, b1, a2, b2 = (Stats(tuple(x)) for x in (first_a, first_b, total_a, total_b))
    return [
        Row("time to first model request (`aishell claude -p` vs `docker run` of the same "
            "image and env volume, against a stub API)", a1, b1, "≤ 1.10×",
            a1.median / b1.median <= 1.10),
        Row("agent round trip (two model turns and a file write, same pair)", a2, b2,
            "≤ 1.10×", a2.median / b2.median <= 1.10),
    ]


def first_request_row(ctx: BenchContext) -> Row:
    rows = agent_rows(ctx)
    ctx.state["agent_rows"] = rows
    return rows[0]


def round_trip_row(ctx: BenchContext) -> Row:
    rows = ctx.state.get("agent_rows") or agent_rows(ctx)
    return rows[1]


def broker_row(ctx: BenchContext) -> Row:
    """`aishell claude --version` with its key brokered vs the same with the key passed in
    (`[credentials] mode = "env"`): what the broker adds to a launch (egress service up)."""
    from bench.timing import alternate, time_command

    project, env, _image, _volume = _project(ctx)
    passed = ctx.workdir / "agent project, key passed in"
    passed.mkdir(exist_ok=True)
    for name in ("aishell.toml", "aishell.lock"):
        shutil.copy(project / name, passed / name)
    with (passed / "aishell.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[credentials]\nmode = "env"\n')
    run_env = {**env, "ANTHROPIC_API_KEY": KEY}
    argv = [*ctx.aishell, "claude", "--version"]
    for where in (project, passed):
        subprocess.run(argv, cwd=where, env=run_env, check=True, capture_output=True)
    a, b = alternate(lambda: time_command(argv, env=run_env, cwd=str(project)),
                     lambda: time_command(argv, env=run_env, cwd=str(passed)), ctx.repeat)
    added = a.median - b.median
    return Row("brokered launch (`aishell claude --version`, key brokered vs passed in)", a, b,
               "≤ 150 ms added", added <= 0.150)
