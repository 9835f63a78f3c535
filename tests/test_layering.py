"""The package layering (docs/architecture.md): which package may import which, and no import
circles, checked on the source (function-level imports included, so a lazy import cannot hide one)."""

from __future__ import annotations

import ast
from pathlib import Path

import mirrordet

ROOT = Path(mirrordet.__file__).parent
# package -> packages it may import (besides itself); a package missing here may import nothing
ALLOWED: dict[str, set[str]] = {
    "version": set(),
    "utils": {"version"},
    "registry": {"utils"},
    "cfg": {"utils"},
    "ops": {"utils"},
    "metrics": {"ops", "utils"},
    "plotting": {"metrics", "ops", "utils"},
    "data": {"ops", "utils"},
    "nn": {"ops", "registry", "utils"},
    "losses": {"ops", "registry", "utils"},
    "engine": {"cfg", "data", "losses", "metrics", "nn", "ops", "plotting", "registry", "utils", "version"},
    "model": {"engine", "nn", "utils"},  # the Python facade; nothing below it may import it
    "cli": {"cfg", "engine", "model", "utils", "version"},
    "__main__": {"cli"},
    "__init__": {"model", "version"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = ("mirrordet", *p.relative_to(ROOT).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every mirrordet module ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mirrordet"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mirrordet"))
    return {m for m in found if m in modules}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


GRAPH = {m: _imports(p, _modules()) - {m} for m, p in _modules().items()}


def test_every_package_imports_only_the_layers_below_it():
    bad = sorted(f"{m} imports {t}" for m, targets in GRAPH.items() for t in targets
                 if _package(t) != _package(m) and _package(t) not in ALLOWED.get(_package(m), set()))
    assert not bad, "\n".join(bad)


def test_no_import_circles():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"


def test_the_checker_sees_lazy_imports():
    # compare.py imports its report writer inside a function: the graph must still hold that edge
    assert "mirrordet.engine.compare_report" in GRAPH["mirrordet.engine.compare"]
    assert "mirrordet.model" in GRAPH["mirrordet"]  # mirrordet/__init__.py's lazy Model
