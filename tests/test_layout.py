"""The package's shape: no import cycle anywhere in nas/, and each shared concept defined once."""

from __future__ import annotations

import ast
import re
from pathlib import Path

NAS = Path(__file__).resolve().parents[1] / "nas"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(NAS.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Modules of nas/ that ``path`` imports (at any depth of the file: lazy imports count too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        out.update(n for n in names if n in modules)
    return out


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in NAS.rglob("*.py")}
    modules = set(files)
    graph = {name: _imports(path, modules) - {name} for name, path in files.items()}
    # importing a.b.c runs a/__init__ and a/b/__init__ first; a package does not depend on its own children
    for name, deps in graph.items():
        for dep in list(deps):
            parts = dep.split(".")
            deps.update(".".join(parts[:i]) for i in range(2, len(parts)) if ".".join(parts[:i]) in modules)
        graph[name] = {d for d in deps if d != name and not d.startswith(name + ".") and not name.startswith(d + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_in_nas() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def _definitions(pattern: str) -> list[str]:
    rx = re.compile(pattern, re.MULTILINE)
    return [str(p.relative_to(NAS.parent)) for p in NAS.rglob("*.py") if rx.search(p.read_text(encoding="utf-8"))]


def test_shared_concepts_are_defined_once() -> None:
    assert _definitions(r"^TRIAL_COLUMNS\b.*=") == ["nas/run/record.py"]
    assert _definitions(r"^STATUSES\b.*=") == ["nas/run/record.py"]
    assert _definitions(r"^class Objective\b") == ["nas/objectives.py"]
    assert _definitions(r"^def (front_ranks|non_dominated|_fast_non_domination)") == ["nas/objectives.py"]
    assert _definitions(r"moocore\.pareto_rank") == ["nas/objectives.py"]


def test_user_facing_exceptions_live_in_errors() -> None:
    outside = [p for p in _definitions(r"^class \w+\((NASError|\w+Error)\)") if p != "nas/errors.py"]
    assert outside == []
