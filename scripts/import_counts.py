"""Count imports between Warden's apps (docs/architecture.md, "Imports, before and after").

Cross-app imports by direction (one per import statement and module it imports), function-level
imports of project modules, and import circles: groups of modules that import each other,
lazily or not. Migrations are left out.

    python scripts/import_counts.py [checkout]   # default: this one
"""

import ast
import sys
from collections import Counter, defaultdict
from pathlib import Path

APPS = ["governance", "submissions", "reviews", "compliance", "decisions", "config"]  # base first
RANK = {app: i for i, app in enumerate(APPS)}


def project_modules(root: Path) -> dict[str, tuple[Path, bool]]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] not in APPS or "migrations" in rel.parts:
            continue
        parts = list(rel.with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return modules


def imported(module: str, is_package: bool, node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level == 0:
        base = node.module or ""
    else:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
    return [f"{base}.{alias.name}" for alias in node.names]


def module_level(tree: ast.Module) -> set[int]:
    """Ids of the nodes that run at import time (not inside a function or class body)."""
    ids: set[int] = set()
    for statement in tree.body:
        if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            ids.update(id(node) for node in ast.walk(statement))
    return ids


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def main(root: Path) -> None:
    modules = project_modules(root)

    def owner(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    direction: Counter[tuple[str, str]] = Counter()
    lazy_direction: Counter[tuple[str, str]] = Counter()
    lazy: list[tuple[str, str]] = []
    graph: dict[str, set[str]] = defaultdict(set)
    for module, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text())
        at_import = module_level(tree)
        for node in ast.walk(tree):
            targets = {t for t in (owner(name) for name in imported(module, is_package, node)) if t and t != module}
            for target in sorted(targets):
                graph[module].add(target)
                source_app, target_app = module.split(".")[0], target.split(".")[0]
                if id(node) not in at_import:
                    lazy.append((module, target))
                if source_app != target_app:
                    direction[(source_app, target_app)] += 1
                    lazy_direction[(source_app, target_app)] += id(node) not in at_import

    def upward(pair: tuple[str, str]) -> bool:
        return pair[0] != "config" and RANK[pair[1]] > RANK[pair[0]]

    print("cross-app imports by direction (of which inside functions):")
    for pair in sorted(direction, key=lambda p: (RANK[p[0]], RANK[p[1]])):
        arrow = "UP  " if upward(pair) else "down"
        print(f"  {arrow} {pair[0]} -> {pair[1]}: {direction[pair]} ({lazy_direction[pair]} lazy)")
    print(f"total cross-app {sum(direction.values())}, upward {sum(n for p, n in direction.items() if upward(p))}")
    print(f"function-level imports of project modules: {len(lazy)}")
    for source, target in lazy:
        print(f"    {source} -> {target}")
    found = circles(graph)
    print(f"import circles: {len(found)}")
    for group in found:
        print("    " + " <-> ".join(group))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
