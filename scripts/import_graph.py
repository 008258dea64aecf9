"""The package graph of aishell, read from the code: who imports whom, and the layer rule.

    python scripts/import_graph.py            # Mermaid drawing of the stages (docs/architecture.md)
    python scripts/import_graph.py --modules  # every module-level arrow, one per line
    python scripts/import_graph.py --check    # exit 1 when an arrow breaks the layer rule

Every import counts: top-level, inside functions (lazy) and under ``TYPE_CHECKING``.
tests/test_architecture.py runs the check and keeps the drawing in the docs current.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "aishell"
STAGES = ("engine", "project", "lock", "security", "store", "run", "cli")
# What each room may import besides itself. The core (top-level modules) imports no room.
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "engine": frozenset({"core"}),
    "project": frozenset({"core", "engine"}),
    "lock": frozenset({"core", "project"}),
    "security": frozenset({"core", "project"}),
    "store": frozenset({"core", "engine", "project", "lock"}),
    "run": frozenset({"core", "engine", "project", "lock", "security", "store"}),
    "cli": frozenset({"core", "engine", "project", "lock", "security", "store", "run"}),
}
# Drawn top to bottom: the rooms in the order the rule stacks them.
ORDER = ("cli", "run", "store", "security", "lock", "project", "engine", "core")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def room(module: str) -> str:
    """The room a module lives in: its stage package, or ``core`` for top-level modules."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in STAGES:
        return parts[1]
    if module == "aishell.__main__":
        return "cli"
    return "core"


def _imported(tree: ast.AST, known: dict[str, Path]) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("aishell"):
                    yield _nearest(alias.name, known)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "aishell":
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                yield candidate if candidate in known else _nearest(node.module, known)


def _nearest(name: str, known: dict[str, Path]) -> str:
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def graph() -> dict[str, set[str]]:
    """module -> the aishell modules it imports (never itself)."""
    known = modules()
    return {
        name: {dep for dep in _imported(ast.parse(path.read_text(encoding="utf-8")), known)
               if dep != name}
        for name, path in known.items()
    }


def violations(edges: dict[str, set[str]]) -> list[str]:
    out = []
    for src, deps in sorted(edges.items()):
        for dep in sorted(deps):
            a, b = room(src), room(dep)
            if a != b and b not in ALLOWED[a]:
                out.append(f"{src} ({a}) imports {dep} ({b})")
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles between modules (each reported once, from its smallest member)."""
    found: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for dep in sorted(edges.get(node, ())):
            if dep == start:
                key = tuple(sorted(path))
                if key not in seen:
                    seen.add(key)
                    found.append([*path, start])
            elif dep not in path and dep > start:
                walk(start, dep, [*path, dep])

    for start in sorted(edges):
        walk(start, start, [start])
    return found


def room_edges(edges: dict[str, set[str]]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for src, deps in edges.items():
        for dep in deps:
            a, b = room(src), room(dep)
            if a != b:
                counts[(a, b)] = counts.get((a, b), 0) + 1
    return counts


def mermaid(edges: dict[str, set[str]]) -> str:
    """The rooms as boxes listing their modules, arrows labelled with how many imports."""
    members: dict[str, list[str]] = {r: [] for r in ORDER}
    for name in sorted(edges):
        short = name.split(".")[-1] if room(name) != "core" else name.removeprefix("aishell.")
        if name.split(".")[-1] != room(name) or room(name) == "core":
            members[room(name)].append(short)
    lines = ["flowchart TD"]
    for r in ORDER:
        label = f"{r}<br/><small>{' · '.join(members[r])}</small>"
        lines.append(f'    {r}["{label}"]')
    for (a, b), n in sorted(room_edges(edges).items(), key=lambda kv: (ORDER.index(kv[0][0]),
                                                                        ORDER.index(kv[0][1]))):
        lines.append(f"    {a} -->|{n}| {b}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    edges = graph()
    if "--check" in argv:
        problems = violations(edges) + [" -> ".join(c) for c in cycles(edges)]
        for line in problems:
            print(line)
        return 1 if problems else 0
    if "--modules" in argv:
        for src in sorted(edges):
            for dep in sorted(edges[src]):
                print(f"{src} -> {dep}")
        return 0
    print(mermaid(edges), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
