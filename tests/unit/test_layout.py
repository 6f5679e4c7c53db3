"""The shape of glance_lite's code: rooms of a readable size, imports that point one way,
made at the top of each module, and eventlet kept inside the server package."""

import dis
import functools
import types
from collections.abc import Iterator
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "glance_lite"
MAX_LINES = 700
# Modules that import eventlet: the server package and the entry points that
# monkey-patch it before anything else.
EVENTLET_PLACES = ("glance_lite.server", "glance_lite.cmd.api", "glance_lite.cmd.registry")
# Each module is read as the byte code Python runs (from __pycache__ when it is fresh):
# an import statement is an IMPORT_NAME instruction, in the module's own code when it
# runs at import time, in a function's or class body's code object otherwise. Loading
# the cached code takes 50 ms where parsing every module into syntax trees took 300 ms,
# and the trees (150,000 objects) slowed every later garbage collection of the run.
IMPORT_NAME = dis.opmap["IMPORT_NAME"]


@functools.cache
def modules() -> dict[str, types.CodeType]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = SourceFileLoader(name, str(path)).get_code(name)
    return found


def inner_code(code: types.CodeType) -> Iterator[types.CodeType]:
    """The code of every function, class body, lambda and comprehension inside `code`."""
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield const
            yield from inner_code(const)


def imports(code: types.CodeType) -> Iterator[dis.Instruction]:
    """The IMPORT_NAME instructions of `code` itself (not of the code inside it)."""
    # instructions are two bytes, the operation first: most code has no import at all
    if IMPORT_NAME in code.co_code[::2]:
        yield from (i for i in dis.get_instructions(code) if i.opcode == IMPORT_NAME)


def imported(code: types.CodeType, known: set[str]) -> set[str]:
    """The glance_lite modules a module imports when it is imported (`import a.b`, and
    `from a import b` names a.b when b is a module)."""
    out = set()
    module = None
    for instruction in dis.get_instructions(code):
        if instruction.opname == "IMPORT_NAME":
            module = instruction.argval
            out.add(module)
        elif instruction.opname == "IMPORT_FROM":
            out.add(f"{module}.{instruction.argval}")
    return out & known


def test_no_module_is_over_700_lines():
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_imports_are_made_at_the_top_of_each_module():
    inside = [
        f"{name}:{instruction.positions.lineno}"
        for name, code in modules().items()
        for inner in inner_code(code)
        for instruction in imports(inner)
    ]
    assert inside == []


def test_no_import_circle_between_glance_lite_modules():
    codes = modules()
    known = set(codes)
    graph = {name: imported(code, known) - {name} for name, code in codes.items()}
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
    def named(module: str) -> bool:
        return module == library or module.startswith(f"{library}.")

    users = {
        name
        for name, code in modules().items()
        for each in (code, *inner_code(code))
        if any(map(named, each.co_names))  # an imported module's name is one of these
        for instruction in imports(each)
        if named(instruction.argval)
    }
    assert users
    assert {u for u in users if not u.startswith(EVENTLET_PLACES)} == set()
