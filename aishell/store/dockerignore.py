"""`.dockerignore` matching, as the engine applies it to a build context.

Rules, in order, last match wins: a pattern excludes matching paths, ``!pattern``
re-includes them. Patterns are slash-separated and relative to the context root
(a leading ``/`` is ignored); ``*`` and ``?`` do not cross ``/``, ``**`` matches any
number of directories. A path is excluded when it or any of its parent directories
matches an exclusion that no later ``!`` rule undoes.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    include: bool


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):  # "**/" matches zero or more directories
                i += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1:end]
                negate = body[:1] in ("!", "^")
                body = body[1:] if negate else body
                out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
                i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def parse(text: str) -> list[Rule]:
    rules: list[Rule] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        if include:
            line = line[1:].strip()
        line = posixpath.normpath(line.lstrip("/")) if line.lstrip("/") else ""
        if not line or line == ".":
            continue
        rules.append(Rule(re.compile(_translate(line) + r"\Z"), include))
    return rules


class Matcher:
    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)

    @lru_cache(maxsize=4096)  # noqa: B019 - matchers are short-lived, per build
    def excluded(self, path: str) -> bool:
        """Whether ``path`` (relative, slash-separated) is left out of the context."""
        if not self.rules:
            return False
        parts = path.split("/")
        state = False
        for rule in self.rules:
            # A rule applies to the path itself or to any parent directory of it.
            for depth in range(len(parts), 0, -1):
                if rule.regex.match("/".join(parts[:depth])):
                    state = not rule.include
                    break
        return state
