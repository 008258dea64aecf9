"""The one error base for expected failures.

Every error a user can cause or fix derives from :class:`AishellError`; the CLI's
top-level handler prints it as one line plus a hint and exits 1. Anything else is a
bug and gets a bug-report log.
"""

from __future__ import annotations

from pathlib import Path


class AishellError(Exception):
    """An expected failure: printed as one line with an optional hint."""

    exit_code = 1
    # The last lines of a failed step's output: the handler prints them above the error.
    log: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(AishellError):
    """The command line itself is wrong (exit 2, like argparse)."""

    exit_code = 2


class ConfigError(AishellError):
    """A malformed or invalid file; carries the file and line when known."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line else f"{path}: "
        super().__init__(where + message, hint=hint)
        self.path = path
        self.line = line


class ProcessError(AishellError):
    """An external command failed; the text shows command, exit code and output."""

    def __init__(self, argv: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        tail = (stderr.strip() or stdout.strip()).splitlines()[-10:]
        detail = ("\n  " + "\n  ".join(tail)) if tail else ""
        super().__init__(f"command failed with exit code {returncode}: {' '.join(argv)}{detail}")


class EngineError(AishellError):
    """Base of the engine boundary's typed errors."""


class EngineUnavailable(EngineError):
    """No container engine answers."""


class EngineNotFound(EngineError):
    """An image, volume or container does not exist."""


class EngineConflict(EngineError):
    """The object exists already or is in use."""


class BuildFailed(EngineError):
    """An image build failed; ``log`` holds the failing step's output."""

    def __init__(self, message: str, *, log: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.log = log
