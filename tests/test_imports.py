"""The core's import graph: the modules of meshcore/ import one another without a circle, lazy imports
inside functions included (a circle hidden by a lazy import is still a circle), and its subpackages keep their
floors: a package imports only the leaves and the packages below it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = "meshcore"
FLOORS = ("", "chart", "config", "mesh", "doctor")
"""meshcore's packages, lowest first ("" the shared leaves at its top: keypaths, yamlio, errors)."""


def modules_of(package_dir: Path) -> dict[str, Path]:
    """Dotted name inside the package (``config.model``, ``keypaths``) -> its file; packages' ``__init__`` left out."""
    return {".".join(f.relative_to(package_dir).with_suffix("").parts): f
            for f in sorted(package_dir.rglob("*.py")) if f.name != "__init__.py"}


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports anywhere in its source (``from meshcore import x``,
    ``from meshcore.config import model``, ``from meshcore.config.model import y``, ``import meshcore.x``)."""
    package = package_dir.name
    modules = modules_of(package_dir)
    graph: dict[str, set[str]] = {}
    for mod, path in modules.items():
        named: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and (node.module + ".").startswith(f"{package}."):
                base = node.module[len(package) + 1:]
                named |= {base} | {f"{base}.{a.name}".lstrip(".") for a in node.names}
            elif isinstance(node, ast.Import):
                named |= {a.name[len(package) + 1:] for a in node.names if a.name.startswith(f"{package}.")}
        graph[mod] = (named & set(modules)) - {mod}
    return graph


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph of the packages ("" for the top-level modules): package -> the other packages it imports."""
    def pkg(mod: str) -> str:
        return mod.rpartition(".")[0]
    out: dict[str, set[str]] = {}
    for mod, deps in graph.items():
        out.setdefault(pkg(mod), set()).update(pkg(d) for d in deps if pkg(d) != pkg(mod))
    return out


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


def upward(packages: dict[str, set[str]]) -> list[str]:
    """Each import of a package by one on a lower floor (``FLOORS``), as ``low -> high``."""
    return [f"{p or 'meshcore'} -> {d}" for p, deps in sorted(packages.items()) for d in sorted(deps)
            if FLOORS.index(d) > FLOORS.index(p)]


def test_the_core_imports_without_a_circle() -> None:
    graph = import_graph(ROOT / PACKAGE)
    assert "config.model" in graph and "config.checks" in graph["config.parse"], "the graph reads the real modules"
    assert a_circle(graph) is None, " -> ".join(a_circle(graph) or [])


def test_the_core_packages_keep_their_floors() -> None:
    packages = package_graph(import_graph(ROOT / PACKAGE))
    assert set(packages) == set(FLOORS), "every package of meshcore has its floor"
    assert packages["doctor"] >= {"mesh", "config", "chart"}, "the graph reads the real packages"
    assert upward(packages) == []
    assert a_circle(packages) is None


def test_a_circle_is_found_even_through_a_lazy_import(tmp_path: Path) -> None:
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from meshcore import b\n")
    (pkg / "b.py").write_text("import meshcore.sub.c\n")
    (pkg / "sub" / "c.py").write_text("def f():\n    from meshcore.a import x\n    return x\n")
    (pkg / "d.py").write_text("from meshcore.sub import c\n")
    graph = import_graph(pkg)
    assert graph == {"a": {"b"}, "b": {"sub.c"}, "sub.c": {"a"}, "d": {"sub.c"}}
    assert a_circle(graph) == ["a", "b", "sub.c", "a"]
    assert package_graph(graph) == {"": {"sub"}, "sub": {""}}
    (pkg / "sub" / "c.py").write_text("x = 1\n")
    assert a_circle(import_graph(pkg)) is None


def test_an_import_up_a_floor_is_found() -> None:
    assert upward({"": set(), "chart": {"config"}, "config": {"chart", ""}, "mesh": set(), "doctor": {"mesh"}}) == [
        "chart -> config"]
