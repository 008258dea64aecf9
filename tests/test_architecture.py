"""The package layout holds: arrows only downwards, no cycles, small modules, a current drawing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_LINES = 420  # STYLE.md 13: a module over ~400 lines is a sign to split


def _graph_module():
    spec = importlib.util.spec_from_file_location("import_graph", REPO / "scripts" / "import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_graph", module)
    spec.loader.exec_module(module)
    return module


graph = _graph_module()


def test_every_arrow_points_down_the_layer_rule():
    assert graph.violations(graph.graph()) == []


def test_lock_and_security_never_import_the_engine():
    edges = graph.graph()
    reach = {src: deps for src, deps in edges.items()
             if graph.room(src) in ("lock", "security")}
    assert reach, "the lock and security packages exist"
    assert not [f"{s} -> {d}" for s, deps in reach.items() for d in deps
                if graph.room(d) == "engine"]


def test_the_engine_imports_only_the_core():
    edges = graph.graph()
    assert {graph.room(d) for s, deps in edges.items() if graph.room(s) == "engine"
            for d in deps} <= {"engine", "core"}


def test_no_import_cycles_between_modules():
    assert graph.cycles(graph.graph()) == []


def test_the_rule_catches_an_upward_arrow():
    edges = {"aishell.lock.resolver": {"aishell.engine.client"},
             "aishell.engine.client": {"aishell.store.envs"},
             "aishell.store.envs": {"aishell.lock.resolver"}}
    assert graph.violations(edges) == [
        "aishell.engine.client (engine) imports aishell.store.envs (store)",
        "aishell.lock.resolver (lock) imports aishell.engine.client (engine)",
    ]
    assert graph.cycles(edges) == [["aishell.engine.client", "aishell.store.envs",
                                    "aishell.lock.resolver", "aishell.engine.client"]]


def test_no_module_is_over_the_size_limit():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines())
             for name, path in graph.modules().items()}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}


def test_docs_architecture_shows_the_current_graph():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    drawing = graph.mermaid(graph.graph())
    assert f"```mermaid\n{drawing}```" in text, (
        "docs/architecture.md is out of date: paste `python scripts/import_graph.py` into it")


def test_tests_mirror_the_packages():
    rooms = {p.name for p in (REPO / "aishell").iterdir()
             if p.is_dir() and (p / "__init__.py").exists() and p.name != "resources"}
    test_dirs = {p.name for p in (REPO / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert rooms <= test_dirs
