"""Import cycles among bidproc's modules, found from the source (no import is executed).

    .venv/bin/python scripts/import_cycles.py [--lazy]

Reads every module under bidproc/ with :mod:`ast`, takes the edges "module A imports module B" (``from
bidproc.x import y`` is an edge to ``bidproc.x.y`` when that is a module, else to ``bidproc.x``;
imports under ``if TYPE_CHECKING:`` are not run, so not edges) and prints each strongly connected
component of more than one module: a cycle. By default only imports run when the module is loaded
count; ``--lazy`` adds the ones inside functions, which cannot break loading but still tie two modules
together. Exit 1 when a cycle is found. Written by hand: pydeps and import-linter are not installed
here, and thirty lines of ``ast`` and Tarjan's algorithm need neither.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules(package: str = "bidproc") -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, name: str, is_package: bool, lazy: bool) -> list[tuple[str, list[str]]]:
    """(imported module, names imported from it) for each import that runs when the module loads."""
    out: list[tuple[str, list[str]]] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                out.extend((a.name, []) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package this module is in
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                out.append((base, [a.name for a in node.names]))
            elif isinstance(node, ast.If) and _type_checking(node):
                visit(node.orelse)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if lazy:
                    visit(node.body)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):  # class bodies, try, with, if
                    inner = getattr(node, field, None)
                    if isinstance(inner, list):
                        visit([n for n in inner if isinstance(n, ast.stmt)]
                              + [s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body])

    visit(tree.body)
    return out


def graph(lazy: bool = False) -> dict[str, set[str]]:
    mods = modules()
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        for target, names in _imports(tree, name, path.name == "__init__.py", lazy):
            if not target.startswith("bidproc"):
                continue
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in mods]
            for dep in subs or [target]:
                if dep in mods and dep != name:
                    edges[name].add(dep)
            if names and len(subs) < len(names) and target in mods and target != name:
                edges[name].add(target)  # names that are not submodules come from the module itself
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm; the graph is small)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strong(w)
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
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found


def main(argv: list[str]) -> int:
    lazy = "--lazy" in argv
    edges = graph(lazy)
    found = cycles(edges)
    kind = "imports at load time and inside functions" if lazy else "imports at load time"
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} edges ({kind}): {len(found)} cycle(s)")
    for component in found:
        print("  cycle: " + " <-> ".join(component))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
