"""The package's layering, read from the source (no harness module is imported).

Imports go one way: cli -> bench / report / track -> model / store. Every import counts,
function-level ones included: a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "harness"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def _modules() -> dict[str, Path]:
    """Module name -> file, for every .py file of the package."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The package module a dotted name lives in (an attribute's module, a package's
    __init__), or None when it is not part of the package."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules `module` imports anywhere in its body."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, one level up per extra dot
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from harness.report import charts` depends on the submodule charts; a name
            # that is no module (`from harness.engine import Client`) on the package
            names = [f"{prefix}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                target = _resolve(name, modules)
                if target and target != module:
                    found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_through(graph, c) for c in components]


def _cycle_through(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A concrete cycle inside a strongly connected component, as a path back to its start."""
    members = set(component)
    start = component[0]
    path, seen = [start], {start}
    while True:
        here = path[-1]
        nxt = sorted(graph[here] & members)
        if start in nxt and len(path) > 1:
            return path + [start]
        unseen = [n for n in nxt if n not in seen]
        if not unseen:  # every way on has been visited: close the loop where it meets
            back = nxt[0]
            return path[path.index(back):] + [back]
        path.append(unseen[0])
        seen.add(unseen[0])


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    for name in ("__init__.py", "a.py", "sub/__init__.py", "sub/b.py", "sub/c.py"):
        (pkg / name).write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from . import c\n    from ..a import x\n")
    (pkg / "a.py").write_text("from harness.sub import thing\n")
    modules = {"harness": pkg / "__init__.py", "harness.a": pkg / "a.py",
               "harness.sub": pkg / "sub/__init__.py", "harness.sub.b": pkg / "sub/b.py",
               "harness.sub.c": pkg / "sub/c.py"}
    assert imports_of("harness.sub.b", modules["harness.sub.b"], modules) == {
        "harness.sub.c", "harness.a"}
    assert imports_of("harness.a", modules["harness.a"], modules) == {"harness.sub"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def _calls(name: str) -> bool:
    """Whether any module of the package or any test but this one calls `name`."""
    files = [*ROOT.rglob("*.py"), *ROOT.parent.joinpath("tests").rglob("*.py")]
    return any(f"{name}(" in p.read_text() for p in files
               if p != Path(__file__).resolve() and not p.read_text().count(f"def {name}("))


# Imports allowed to close a cycle while callers move, each with the condition that ends it.
TRANSITIONAL: dict = {}


def test_no_import_cycle_between_modules():
    graph = import_graph()
    for (module, target), needed in TRANSITIONAL.items():
        assert needed(), f"{module} -> {target} is no longer needed: remove the import and its exemption"
        graph[module].discard(target)
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_layers_import_downwards_only():
    graph = import_graph()
    rules = {  # package -> packages it must not import
        "harness.report": ("harness.track", "harness.bench", "harness.cli", "harness.engine"),
        # track reads budgets from the variants manifest (bench.variants), never the runner
        "harness.track": ("harness.bench.runner", "harness.cli", "harness.engine"),
        "harness.bench": ("harness.report", "harness.track", "harness.cli"),
        "harness.engine": ("harness.report", "harness.track", "harness.bench", "harness.cli"),
        "harness.analysis": ("harness.report", "harness.track", "harness.bench", "harness.cli"),
        "harness.model": ("harness.report", "harness.track", "harness.bench", "harness.cli",
                          "harness.engine"),
        "harness.store": ("harness.report", "harness.track", "harness.bench", "harness.cli",
                          "harness.engine"),
    }
    wrong = sorted(f"{m} imports {t}" for m, targets in graph.items() for t in targets
                   for package, banned in rules.items()
                   if _in(m, package) and any(_in(t, b) for b in banned))
    assert not wrong, "\n".join(wrong)
