"""The package's shape: rooms of at most 450 lines, and no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "anyposixmq"
MAX_LINES = 450


def test_no_module_is_over_450_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def _imports_at_run_time(path: Path) -> set[str]:
    """The package's modules that *path* imports when it runs (not under TYPE_CHECKING)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and inner.level == 1:
                if inner.module is not None:
                    found.add(inner.module.split(".")[0])
                else:
                    found.update(alias.name for alias in inner.names)
            elif isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith(
                "anyposixmq."
            ):
                found.add(inner.module.split(".")[1])  # type: ignore[union-attr]
    return found


def test_no_import_circles() -> None:
    graph = {p.stem: _imports_at_run_time(p) for p in PACKAGE.glob("*.py")}
    graph = {name: {m for m in deps if m in graph and m != name} for name, deps in graph.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        assert name not in path, " -> ".join([*path[path.index(name) :], name])
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
