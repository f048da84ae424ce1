"""The layout holds: imports between semsearch's modules point one way, even inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "semsearch"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """module -> the semsearch modules it imports anywhere (top level, functions, TYPE_CHECKING)."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:  # `from . import embed` names a module
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle_even_through_function_level_imports():
    graph = _imports()
    # a package's __init__ re-exports its modules; its modules must not import it back
    for name, deps in graph.items():
        assert not any(name.startswith(d + ".") for d in deps), f"{name} imports its own package face"
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_only_the_presentation_layer_renders():
    graph = _imports()
    assert {m for m, deps in graph.items() if "semsearch.tables" in deps} <= {"semsearch.results"}
    assert {m for m, deps in graph.items() if "semsearch.cli" in deps} == {"semsearch.launch"}  # the entry point
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "cli.py":
            assert "import typer" not in text, path
        if path.name not in ("cli.py", "render.py"):  # the command and what it prints
            assert "from rich" not in text and "import rich" not in text, path


def test_stages_point_one_way():
    """A stage imports only stages before it: ingest -> records -> embed -> store -> build/update -> query."""
    order = ["semsearch.errors", "semsearch.version", "semsearch.ingest", "semsearch.records", "semsearch.provenance",
             "semsearch.embed", "semsearch.store", "semsearch.builder", "semsearch.update", "semsearch.fetch",
             "semsearch.tables", "semsearch.results", "semsearch.cluster", "semsearch.themes", "semsearch.fusion",
             "semsearch.facets", "semsearch.recommend", "semsearch.query",
             "semsearch.export", "semsearch.enrich", "semsearch.evaluate", "semsearch.serve", "semsearch.mcp_server",
             "semsearch.render", "semsearch.cli",
             "semsearch.launch", "semsearch.__main__"]

    def stage(module: str) -> int:
        return max(i for i, s in enumerate(order) if module == s or module.startswith(s + "."))

    for name, deps in _imports().items():
        if name == "semsearch":
            continue
        for dep in deps:
            if dep != "semsearch":
                assert stage(dep) <= stage(name), f"{name} imports {dep}, a later stage"
