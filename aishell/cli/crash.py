"""The one top-level error handler: expected errors, Ctrl-C, and bug reports."""

from __future__ import annotations

import sys
from collections.abc import Callable

from aishell import __version__
from aishell.errors import AishellError
from aishell.paths import default_paths
from aishell.render import err


def guard(body: Callable[[], int], *, verbose: bool = False, as_json: bool = False) -> int:  # noqa: PLR0911 - one return per outcome
    """Run ``body``; an expected error becomes one line and a hint (and, with ``as_json``, an
    ``aishell.error`` document on stdout, so a program reading stdout always gets JSON)."""
    try:
        return body()
    except AishellError as exc:
        if exc.log.strip():
            _print_log(exc.log)
        err(f"error: {exc.message}")
        if exc.hint:
            err(f"hint: {exc.hint}")
        if as_json:
            from aishell.render import print_json  # noqa: PLC0415

            print_json("error", {"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code})
        return exc.exit_code
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:
        if exc.filename is None:
            return _crash(exc, verbose=verbose)
        # A file aishell cannot read or write (a directory in its place, permissions, a
        # full disk): the user's machine, not a bug in aishell.
        err(f"error: {exc.filename}: {exc.strerror or exc}")
        err("hint: check that path (a file where aishell expects one, its permissions, "
            "free space)")
        return 1
    except Exception as exc:
        return _crash(exc, verbose=verbose)


def _crash(exc: Exception, *, verbose: bool) -> int:
    """An unexpected exception: one line, and a bug report with the traceback."""
    path = _write_report(exc)
    err(f"aishell crashed: {type(exc).__name__}: {exc}")
    err(f"a bug report was written to {path}" if path else "no bug report could be written")
    if verbose:
        import traceback  # noqa: PLC0415 - only a crash needs it

        traceback.print_exc()
    return 1


LOG_LINES = 40


def _print_log(log: str) -> None:
    """The last lines of a failed step's output, always: without -v none of it was shown."""
    lines = log.rstrip().splitlines()
    if len(lines) > LOG_LINES:
        err(f"  | ({len(lines) - LOG_LINES} earlier lines; -v shows every line)")
    err("\n".join("  | " + line for line in lines[-LOG_LINES:]))


def _write_report(exc: BaseException) -> str | None:
    # Imported here: every command loads this module, only a crash needs these.
    import datetime as dt  # noqa: PLC0415
    import platform  # noqa: PLC0415
    import traceback  # noqa: PLC0415

    try:
        directory = default_paths().bug_reports
        directory.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = directory / f"crash-{stamp}.log"
        text = (
            f"aishell {__version__}\npython {sys.version}\nplatform {platform.platform()}\n"
            f"argv {sys.argv}\n\n" + "".join(traceback.format_exception(exc))
        )
        path.write_text(text, encoding="utf-8")
        return str(path)
    except OSError:
        return None
