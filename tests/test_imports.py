"""The package has no import cycle: every module of ``gantools/`` and of the plugin packages in
``plugins/`` is parsed with ``ast`` (nothing is imported) and the graph of its ``import`` and
``from ... import`` statements is searched for cycles.

Every statement counts, wherever it is: module level, inside functions (lazy imports) and under
``if TYPE_CHECKING:`` (a type-only circle is still a circle of concepts). ``from pkg import name``
is an edge to ``pkg.name`` when that is a module, else to ``pkg``. Importing a submodule also runs
its parent packages' ``__init__``, but those implicit edges are not counted: an ``__init__`` that
re-exports lazily would otherwise put every module on a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: source roots and the top-level packages under them that belong to the project
SOURCES = ((ROOT, ("gantools",)), (ROOT / "plugins", None))

Graph = dict[str, set[str]]


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for ``gantools`` and every package in ``plugins/``."""
    modules: dict[str, Path] = {}
    for root, packages in SOURCES:
        tops = packages or sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file())
        for top in tops:
            for path in sorted((root / top).rglob("*.py")):
                parts = path.relative_to(root).with_suffix("").parts
                modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _targets(node: ast.Import | ast.ImportFrom, module: str, path: Path, known: set[str]) -> set[str]:
    """Project modules that one import statement of ``module`` refers to."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    base = node.module or ""
    if node.level:
        package = _package_of(module, path).split(".")
        anchor = ".".join(package[: len(package) - node.level + 1])
        base = f"{anchor}.{base}" if base else anchor
    found = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known}
    if len(found) < len(node.names):  # some names are attributes of ``base`` itself
        found.add(base)
    return found


def import_graph() -> Graph:
    """Module -> project modules it imports (see the module docstring for what counts)."""
    modules = project_modules()
    known = set(modules)
    graph: Graph = {}
    for module, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _targets(node, module, path, known)
        graph[module] = {t for t in edges if t in known and t != module}
    return graph


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def shortest_cycle(graph: Graph, component: list[str]) -> list[str]:
    """A shortest cycle through the first module of ``component`` (start repeated at the end)."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{component} is not a cycle")


def describe_cycles(graph: Graph) -> list[str]:
    """One line per strongly connected component: its size and a shortest cycle in it."""
    lines = []
    for comp in strongly_connected(graph):
        cycle = " -> ".join(shortest_cycle(graph, comp))
        lines.append(f"{len(comp)} modules import each other, e.g. {cycle}" + (f" (all: {', '.join(comp)})" if len(comp) > 2 else ""))
    return lines


def test_cycle_finder_names_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert describe_cycles(graph) == ["3 modules import each other, e.g. a -> b -> c -> a (all: a, b, c)"]
    assert describe_cycles({"a": {"b"}, "b": set()}) == []


def test_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    assert "gantools.train.task" in graph["gantools.train.engine"]  # from ... import at module level
    assert "gantools.train.losses" in graph["gantools.train.engine"]  # from package import submodule
    assert {"gantools_upscale", "gantools_stylize", "gantools_faces"} <= set(graph)  # plugin packages
    assert "gantools.registry" in graph["gantools.train.task"]


def test_no_import_cycles() -> None:
    cycles = describe_cycles(import_graph())
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
