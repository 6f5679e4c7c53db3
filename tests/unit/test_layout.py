"""The shape of glance_lite's code: rooms of a readable size, imports that point one way,
made at the top of each module, and eventlet kept inside the server package."""

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "glance_lite"
MAX_LINES = 700
# Modules that import eventlet: the server package and the entry points that
# monkey-patch it before anything else.
EVENTLET_PLACES = ("glance_lite.server", "glance_lite.cmd.api", "glance_lite.cmd.registry")


@functools.cache
def modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(), str(path))
    return found


def imported(tree: ast.Module, known: set[str]) -> set[str]:
    """The glance_lite modules a module imports at its top level (imports are absolute)."""
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, "relative import"
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out & known


def test_no_module_is_over_700_lines():
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_imports_are_made_at_the_top_of_each_module():
    scopes = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    inside = []
    for name, tree in modules().items():
        pending = [(child, False) for child in ast.iter_child_nodes(tree)]
        while pending:  # each node once, knowing whether a def or class encloses it
            node, enclosed = pending.pop()
            if enclosed and isinstance(node, ast.Import | ast.ImportFrom):
                inside.append(f"{name}:{node.lineno}")
            enclosed = enclosed or isinstance(node, scopes)
            pending.extend((child, enclosed) for child in ast.iter_child_nodes(node))
    assert inside == []


def test_no_import_circle_between_glance_lite_modules():
    trees = modules()
    known = set(trees)
    graph = {name: imported(tree, known) - {name} for name, tree in trees.items()}
    # a package's __init__ runs before its modules: importing a.b imports a too
    for name in known:
        graph[name] |= {p for m in graph[name] for p in _parents(m)} - {name}
        graph[name] -= set(_parents(name))
    circles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


@pytest.mark.parametrize("library", ["eventlet"])
def test_eventlet_is_imported_only_by_the_server_and_its_entry_points(library):
    users = set()
    for name, tree in modules().items():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            if any(n == library or n.startswith(f"{library}.") for n in names):
                users.add(name)
    assert users
    assert {u for u in users if not u.startswith(EVENTLET_PLACES)} == set()
