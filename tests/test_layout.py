"""The package's shape (issue 15): no import cycles, lazy imports included; a short top level; SQL only in
the store.

The import graph is read from the source with `ast`, every `import` counted wherever it stands (inside a
function or under `TYPE_CHECKING` it still ties two modules together), so no cycle can hide behind one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "monitor"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (migration scripts aside: Alembic loads them by path)."""
    return {module_name(path): path for path in ROOT.rglob("*.py") if "versions" not in path.parts}


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of this package that `path` imports, wherever the import stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def parents(name: str) -> set[str]:
    """A module's packages: importing `a.b.c` runs `a.b` first, which is no cycle of `a.b.c`'s making."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(path, known) - {name} - parents(name) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_cycle_check_finds_cycles() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set()}
    assert cycles(edges) == [["a", "b", "c"], ["d", "e"]]


def test_the_graph_sees_lazy_and_type_only_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from monitor.store import Store\n"
        "def f():\n    import monitor.daemon\n    from monitor.cli import main\n"
    )
    known = modules()
    assert imported(source, known) >= {"monitor.store", "monitor.daemon", "monitor.cli.main"}


def test_the_package_has_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_the_top_level_is_short() -> None:
    top = sorted(path.name for path in ROOT.iterdir() if path.suffix == ".py")
    packages = sorted(path.name for path in ROOT.iterdir() if (path / "__init__.py").exists())
    assert len(top) <= 6, top
    assert len(packages) <= 6, packages


def test_only_the_store_speaks_sql() -> None:
    speaks = re.compile(r"sqlalchemy|\.execute\(")
    outside = [
        f"{path.relative_to(ROOT.parent)}:{number}: {line.strip()}"
        for path in sorted(ROOT.rglob("*.py"))
        if path.relative_to(ROOT).parts[0] != "store"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if speaks.search(line)
    ]
    assert outside == []
