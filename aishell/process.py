"""The one place external processes are started."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aishell.errors import AishellError, ProcessError

# Set by the CLI for -v: every command is echoed to stderr. (The logging module costs
# ~5 ms to import, on every launch.)
VERBOSE = False


def _trace(kind: str, args: list[str]) -> None:
    if VERBOSE:
        print(f"+ {kind}: {' '.join(args)}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
    capture: bool = True,
    timeout: float | None = None,
) -> Result:
    """Run ``argv`` and return its output.

    ``env`` entries are added to the current environment (``None`` keeps it as is).
    Raises ProcessError on a non-zero exit when ``check``; AishellError when the
    program does not exist.
    """
    args = [str(a) for a in argv]
    _trace("run", args)
    full_env = None if env is None else {**os.environ, **env}
    try:
        proc = subprocess.run(
            args,
            env=full_env,
            cwd=cwd,
            input=input,
            capture_output=capture,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise AishellError(
            f"{args[0]}: command not found", hint=f"install {args[0]} or put it on PATH"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise AishellError(f"{' '.join(args)} timed out after {timeout} s") from exc
    result = Result(proc.returncode, proc.stdout or "", proc.stderr or "")
    if check and proc.returncode != 0:
        raise ProcessError(args, proc.returncode, result.stdout, result.stderr)
    return result


def replace_process(argv: Sequence[str]) -> int:
    """Hand the terminal to ``argv``: exec it in place of this process.

    Used for interactive launches so the engine CLI owns the TTY exactly as when run
    by hand (resize, Ctrl-C, exit status). Returns only in tests that stub execvp.
    """
    args = [str(a) for a in argv]
    _trace("exec", args)
    try:
        os.execvp(args[0], args)  # noqa: S606 - deliberate: the engine CLI takes over the TTY
    except FileNotFoundError as exc:
        raise AishellError(
            f"{args[0]}: command not found", hint=f"install {args[0]} or put it on PATH"
        ) from exc
    return 0  # pragma: no cover - execvp does not return


def run_attached(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> int:
    """Run ``argv`` on this terminal as a child and return its exit status, for a launch
    that must clean up after it (an allowlist sandbox's egress policy) and so cannot :func:`replace_process`.

    The child owns the terminal as an exec'd one would: it is in the foreground process
    group, so Ctrl-C, Ctrl-\\ and window resizes reach it (the engine CLI passes them on);
    this process ignores SIGINT/SIGQUIT meanwhile and forwards SIGTERM/SIGHUP to it.
    A status killed by a signal comes back as 128 + the signal number, as a shell says.
    """
    import signal  # noqa: PLC0415 - only launches in allowlist mode

    args = [str(a) for a in argv]
    _trace("run", args)
    full_env = None if env is None else {**os.environ, **env}
    try:
        child = subprocess.Popen(args, env=full_env)
    except FileNotFoundError as exc:
        raise AishellError(
            f"{args[0]}: command not found", hint=f"install {args[0]} or put it on PATH"
        ) from exc

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    saved = {sig: signal.signal(sig, handler) for sig, handler in (
        (signal.SIGINT, signal.SIG_IGN), (signal.SIGQUIT, signal.SIG_IGN),
        (signal.SIGTERM, forward), (signal.SIGHUP, forward))}
    try:
        code = child.wait()
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code
