"""The core's import graph: the modules of meshcore/ import one another without a circle, lazy imports
inside functions included (a circle hidden by a lazy import is still a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = "meshcore"


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports anywhere in its source (``from meshcore import x``,
    ``from meshcore.x import y``, ``import meshcore.x``)."""
    package = package_dir.name
    modules = {f.stem for f in package_dir.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {}
    for mod in sorted(modules):
        deps: set[str] = set()
        for node in ast.walk(ast.parse((package_dir / f"{mod}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == package:
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(f"{package}."):
                deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith(f"{package}.")}
        graph[mod] = (deps & modules) - {mod}
    return graph


def a_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of the graph (``[a, b, ..., a]``), or None when it has none (a depth-first search)."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return None
        for dep in sorted(graph.get(node, ())):
            found = visit(dep, [*path, node])
            if found is not None:
                return found
        done.add(node)
        return None

    for node in sorted(graph):
        found = visit(node, [])
        if found is not None:
            return found
    return None


def test_the_core_imports_without_a_circle() -> None:
    graph = import_graph(ROOT / PACKAGE)
    assert "config" in graph and "config_checks" in graph["config_parse"], "the graph reads the real modules"
    assert a_circle(graph) is None, " -> ".join(a_circle(graph) or [])


def test_a_circle_is_found_even_through_a_lazy_import(tmp_path: Path) -> None:
    pkg = tmp_path / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from meshcore import b\n")
    (pkg / "b.py").write_text("import meshcore.c\n")
    (pkg / "c.py").write_text("def f():\n    from meshcore.a import x\n    return x\n")
    (pkg / "d.py").write_text("from meshcore import a\n")
    graph = import_graph(pkg)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert a_circle(graph) == ["a", "b", "c", "a"]
    (pkg / "c.py").write_text("x = 1\n")
    assert a_circle(import_graph(pkg)) is None
