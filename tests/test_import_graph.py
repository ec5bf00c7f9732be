"""Imports run downhill: no import cycles, and each stage imports only what it declares.

Every ``import`` in ``src/trialpool`` counts, also those inside functions (a lazy import
hides a cycle; it does not remove it). Each stage's ``__init__`` docstring says which
stages it may import (``May import: ...``); ``trialpool`` itself (the version) and
``trialpool.errors`` are open to all.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
#: top-level modules every stage may use: errors, and text (escaping untrusted text)
OPEN_TO_ALL = {"trialpool", "errors", "text"}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package) for every module of trialpool."""
    out: dict[str, tuple[Path, bool]] = {}
    for path in sorted((SRC / "trialpool").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the trialpool modules it imports (anywhere in the file)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names if alias.name in modules)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                for alias in node.names:
                    if f"{module}.{alias.name}" in modules:  # a submodule
                        deps.add(f"{module}.{alias.name}")
                    elif module in modules:
                        deps.add(module)
        deps.discard(name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def declared(stage: str) -> set[str]:
    """The stages a stage's ``__init__`` docstring says it may import."""
    init = SRC / "trialpool" / stage / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    match = re.search(r"May import(.*?)(?:[.;](?:\s|$))", doc or "", flags=re.S | re.I)
    assert match, f"trialpool/{stage}/__init__.py: no 'May import: ...' sentence"
    return {name.split(".")[-1] for name in re.findall(r"``(?:trialpool\.)?([\w.]+)``", match[1])}


def test_there_are_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_each_stage_imports_only_what_it_declares() -> None:
    graph = import_graph()
    stages = sorted(p.parent.name for p in (SRC / "trialpool").glob("*/__init__.py"))
    assert {"package", "validate", "stats", "analysis", "report", "imports"} <= set(stages)
    wrong: list[str] = []
    for stage in stages:
        allowed = declared(stage) | OPEN_TO_ALL | {stage}
        for module, deps in sorted(graph.items()):
            if _stage(module) != stage:
                continue
            bad = sorted(dep for dep in deps if _stage(dep) not in allowed)
            wrong += [f"{module} imports {dep}" for dep in bad]
    assert wrong == []
