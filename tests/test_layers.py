"""Layers read top-down (STYLE rule 11), checked on the import graph, not by hand.

`cli.py` and `commands/` on top; the services and tools (`consumers/`, `api/`, `stacks/`, and
the coming `deploy/`, `cost/`) in the middle; the library `adpulse/` at the bottom, importing
none of them. And no import circle anywhere, counting imports inside functions and under
TYPE_CHECKING too: a circle drawn lazily is still two modules that cannot be read apart.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("adpulse", "commands", "consumers", "api", "stacks", "deploy", "cost")
TOP = {"cli", "commands"}
SERVICES = {"consumers", "api", "stacks", "deploy", "cost"}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in its body)."""
    files = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    if (root / "cli.py").exists():
        files["cli"] = root / "cli.py"

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            else:
                continue
            found.update(r for n in names if (r := resolve(n)) is not None)
        graph[module] = found - {module}
    return graph


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, imports in sorted(graph.items()):
        layer = module.split(".")[0]
        for target in sorted(imports):
            target_layer = target.split(".")[0]
            upward = (layer == "adpulse" and target_layer != "adpulse") or (
                layer in SERVICES and target_layer in TOP
            )
            if upward:
                bad.append(f"{module} imports {target}")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
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
                    work.append((child, iter(sorted(graph.get(child, ())))))
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


def test_the_library_imports_no_service_and_services_import_no_command() -> None:
    graph = import_graph(ROOT)
    assert "adpulse.settings" in graph and "commands.local.launcher" in graph  # it saw the tree
    assert layer_violations(graph) == [], (
        "imports must point down (cli, commands -> services -> adpulse); move the code that "
        "needs the upper module up a layer, or the shared part down"
    )


def test_no_import_circle() -> None:
    assert cycles(import_graph(ROOT)) == [], (
        "modules that import each other: move what both need into a module of its own"
    )


def test_the_checks_catch_an_upward_import_and_a_circle(tmp_path: Path) -> None:
    for name, text in {
        "adpulse/__init__.py": "",
        "adpulse/a.py": "def f():\n    from adpulse.b import g\n",
        "adpulse/b.py": "if TYPE_CHECKING:\n    import adpulse.a\n",
        "adpulse/c.py": "from api.server import build\n",
        "api/__init__.py": "",
        "api/server.py": "from commands import up\n",
        "commands/__init__.py": "",
        "commands/up.py": "from adpulse import a\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert layer_violations(graph) == [
        "adpulse.c imports api.server",
        "api.server imports commands",  # `from commands import up` runs the package too
        "api.server imports commands.up",
    ]
    assert cycles(graph) == [["adpulse.a", "adpulse.b"]]
