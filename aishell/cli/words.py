"""The words of a command line, split without argparse (the launch path reads them first)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs ~4 ms to import; mypy reads this as True
if TYPE_CHECKING:
    from collections.abc import Sequence

# Options of aishell (global and `run`) that take a value, so the harness name is found
# by skipping them; `--opt=value` and `-eNAME` forms are a single word anyway.
VALUE_OPTIONS = frozenset({"--project", "--name", "-e", "--env", "--volume", "-p", "--publish",
                           "--substituter"})
# First words whose launch may have a cached plan (:mod:`aishell.run.fast`).
LAUNCH_WORDS = frozenset({"exec", "attach"})


def split(args: Sequence[str]) -> tuple[list[str], str | None, list[str]]:
    """Options before the first plain word, that word, and everything after it."""
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            return list(args[:i]), None, list(args[i + 1:])
        if not word.startswith("-") or word == "-":
            return list(args[:i]), word, list(args[i + 1:])
        i += 2 if word in VALUE_OPTIONS else 1
    return list(args), None, []
