"""The files a launch plan is computed from, noted as they are read.

A launch from the plan cache (:mod:`aishell.run.fast`) replays a plan only while every
file noted while it was computed is as it was then (present or absent, same size, inode,
mtime and ctime). Each reader of a plan input calls :func:`note` with what it looked at,
including paths it found missing: a mount source or a config file that appears later
changes the plan too. Outside a recording, :func:`note` costs one comparison.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from types import TracebackType

_noted: dict[str, list[int] | None] | None = None


def note(*paths: str | os.PathLike[str]) -> None:
    """Record that the plan being computed depends on ``paths``, as they are now.

    The signature is taken when the path is read, so a file that changes between its
    read and the plan's save is caught (:func:`changed`).
    """
    if _noted is not None:
        for path in paths:
            name = os.fspath(path)
            _noted[name] = signature(name)


def changed(noted: dict[str, list[int] | None]) -> list[str]:
    """The noted paths that are no longer as they were when read."""
    return [path for path, sig in noted.items() if signature(path) != sig]


_argv: list[str] | None = None


class Recording:
    """``with Recording(argv) as noted:`` collects every path noted inside the block, with
    its signature when it was read; ``argv`` is the command line being served."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def __enter__(self) -> dict[str, list[int] | None]:
        global _noted, _argv
        self._outer = _noted, _argv
        _noted, _argv = {}, self.argv
        return _noted

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        global _noted, _argv
        _noted, _argv = self._outer


def current() -> tuple[list[str], dict[str, list[int] | None]] | None:
    """The command line being served and what it has noted so far (None: no recording)."""
    if _noted is None or _argv is None:
        return None
    return _argv, _noted


def signature(path: str) -> list[int] | None:
    """What a path is now: [mtime_ns, ctime_ns, size, inode, mode], or None when absent."""
    try:
        st = os.stat(path)  # noqa: PTH116 - pathlib costs ~4 ms on the fast launch path
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        return [-1, -1, -1, -1, -1]  # unreadable: recorded as such, compared as such
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_mode]
