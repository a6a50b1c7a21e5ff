"""The layers of docs/architecture.md hold in the imports: no cycle between ngbench's parts (a subpackage
such as ngbench.flows, or a top-level module such as ngbench.run), counting imports inside functions too."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ngbench"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """ngbench.flows.ort.flow -> ngbench.flows; ngbench.run -> ngbench.run; ngbench -> ngbench."""
    return ".".join(module.split(".")[:2])


def imports_of(path: Path, modules: set[str]) -> list[tuple[str, int]]:
    """(imported ngbench module, line) of every import statement in the file, at any depth."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names if f"{base}.{alias.name}" in modules]
    return [(target, line) for target, line in found if target == "ngbench" or target.startswith("ngbench.")]


def dependency_graph() -> dict[str, dict[str, str]]:
    """part -> {part it imports: where (file:line)}."""
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in files}
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for path in files:
        source = part_of(module_name(path))
        for target, line in imports_of(path, modules):
            if part_of(target) != source:
                graph[source].setdefault(part_of(target), f"{path.relative_to(PACKAGE.parent)}:{line}")
    return graph


def cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """The strongly connected components with more than one part (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in graph.get(node, {}):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_cycles_are_found_on_a_hand_made_graph():
    graph = {"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}, "d": {"a": ""}, "e": {"e": ""}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": ""}, "b": {}}) == []


def test_the_graph_sees_imports_inside_functions():
    graph = dependency_graph()
    assert "ngbench.flows" in graph["ngbench.run"]          # run.py imports flows inside functions only
    assert "ngbench.trace" in graph["ngbench.flows"]


def test_no_import_cycle_between_ngbench_parts():
    graph = dependency_graph()
    problems = []
    for component in cycles(graph):
        edges = [f"{a} -> {b} ({graph[a][b]})" for a in component for b in component if b in graph.get(a, {})]
        problems.append("; ".join(edges))
    assert not problems, "import cycles: " + " | ".join(problems)


def test_trace_sits_below_flows_and_report_reads_files_only():
    graph = dependency_graph()
    assert "ngbench.flows" not in graph.get("ngbench.trace", {})
    assert not {"ngbench.flows", "ngbench.trace", "ngbench.models", "ngbench.run"} & set(graph.get("ngbench.report", {}))
