"""`aishell gitleaks [ARGS]`: run Gitleaks over the project inside a sandbox."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aishell import process
from aishell.project.context import Context
from aishell.request import cli_args
from aishell.run.launch import sandbox_request
from aishell.security import gitleaks


@dataclass(frozen=True)
class ScanResult:
    argv: tuple[str, ...]  # the gitleaks command run in the sandbox
    exit_code: int
    seconds: float
    recorded: bool  # a complete scan: its time is now the project's last scan
    stdout: str
    stderr: str


def scan(ctx: Context, args: Sequence[str]) -> ScanResult:
    """Run gitleaks to completion in a fresh sandbox and record a completed scan.

    The sandbox has no network (a scan needs none) and no TTY; output is captured so
    the log can tell a finished scan from a failed one (see :func:`gitleaks.completed`).
    """
    argv = gitleaks.gitleaks_argv(args, ctx.project)
    req = sandbox_request(ctx, argv, tty=False)
    req = dataclasses.replace(req, interactive=False, network="none")
    start = time.perf_counter()
    result = process.run(cli_args(req, ctx.engine.cli), check=False, env=req.process_env())
    seconds = time.perf_counter() - start
    done = gitleaks.completed(argv, result.returncode, result.stdout + result.stderr)
    if done:
        gitleaks.record_scan(ctx.paths.ensure_state(), ctx.project,
                             exit_code=result.returncode, seconds=seconds)
    return ScanResult(tuple(argv), result.returncode, seconds, done, result.stdout,
                      result.stderr)


def print_result(ctx: Context, result: ScanResult) -> None:
    """Gitleaks' own output, then one line saying whether the scan was recorded."""
    sys.stdout.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.write(result.stderr)
    if not ctx.quiet and result.recorded:
        verdict = "no leaks found" if result.exit_code == 0 else "leaks found"
        print(f"aishell: Gitleaks scan recorded ({verdict}, {result.seconds:.1f} s)",
              file=sys.stderr)
    sys.stderr.flush()
