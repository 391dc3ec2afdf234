"""No import circles in ``executor/``: arrows point down, inside a package too.

Every ``import`` and ``from ... import`` counts, wherever it stands: at module level, inside a
function (an import put off to run time still closes a circle), under ``if TYPE_CHECKING:``.
A circle is reported with each import that closes it, as ``module -> module (file:line)``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import executor

Graph = dict[str, dict[str, int]]  # module -> imported module of ours -> line of the import


def modules(root: Path, package: str) -> dict[str, tuple[Path, bool]]:
    """Every module under ``root`` (the directory of ``package``): name -> (file, is a package)."""
    found: dict[str, tuple[Path, bool]] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _ours(name: str, known: dict[str, tuple[Path, bool]]) -> str | None:
    """The module of ours ``name`` is, or is inside (``a.b.C`` -> ``a.b``)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _imported(node: ast.AST, base: str, known: dict[str, tuple[Path, bool]]) -> Iterator[str]:
    """The modules an import statement names (each ``from m import x`` is ``m.x`` when that is
    a module, else ``m``)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            parent = base.split(".")[: len(base.split(".")) - (node.level - 1)]
            module = ".".join([*parent, *([node.module] if node.module else [])])
        else:
            module = node.module or ""
        for alias in node.names:
            whole = f"{module}.{alias.name}"
            yield whole if whole in known else module


def import_graph(root: Path, package: str) -> Graph:
    known = modules(root, package)
    graph: Graph = {name: {} for name in known}
    for name, (path, is_package) in known.items():
        base = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _imported(node, base, known):
                module = _ours(target, known)
                if module is not None and module != name:
                    graph[name].setdefault(module, node.lineno)
    return graph


def circles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def describe(component: list[str], graph: Graph, root: Path, package: str) -> str:
    known = modules(root, package)
    inside = set(component)
    edges = [
        f"  {a} -> {b} ({known[a][0].relative_to(root.parent)}:{line})"
        for a in component
        for b, line in sorted(graph[a].items())
        if b in inside
    ]
    return "\n".join([f"circle of {len(component)} modules:", *edges])


def test_executor_has_no_import_circle() -> None:
    """No module of executor/ imports, however indirectly, one that imports it back."""
    root = Path(executor.__file__).parent
    graph = import_graph(root, "executor")
    found = [describe(c, graph, root, "executor") for c in circles(graph)]
    assert not found, "\n".join(found)


def test_a_circle_closed_inside_a_function_or_for_types_is_found(tmp_path: Path) -> None:
    """The check sees what it must: a function-level import, a TYPE_CHECKING one, relative
    imports and ``from package import module``; a chain without a way back is no circle."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.sub.c import x\n")
    (pkg / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import y\nx = 1\n"
    )
    (pkg / "d.py").write_text("import pkg.a\n")  # into the circle, not back out of it
    graph = import_graph(pkg, "pkg")
    assert circles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    text = describe(circles(graph)[0], graph, pkg, "pkg")
    assert "pkg.b -> pkg.sub.c (pkg/b.py:2)" in text and "pkg.sub.c -> pkg.a" in text
    (pkg / "sub" / "c.py").write_text("x = 1\n")
    assert circles(import_graph(pkg, "pkg")) == []


def test_only_the_docker_backend_imports_docker() -> None:
    """``docker`` (the SDK) is imported under ``executor/engine/docker/`` and nowhere else."""
    root = Path(executor.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.is_relative_to(root / "engine" / "docker"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(n == "docker" or n.startswith("docker.") for n in names):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert found == []
