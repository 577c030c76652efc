"""The project's import graph (issue 16): no import cycle, no import inside a function or under
``if TYPE_CHECKING:``, no private name of another module — over the packages, the tests and the benchmarks.

A cycle held together by an in-function import is still a cycle: the package graph comes from grimp, which
counts every import wherever it stands. The rules on the source text are checked with ``ast`` on every file.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The project's packages (import name → directory).
PACKAGES = {"broadcaster": "broadcaster", "audio": "audio", "schedules": "schedules", "devices": "devices",
            "firmware_sim": "firmware-sim"}
#: Directories of scripts imported by their bare module name (pytest and the benchmarks put them on sys.path).
SCRIPT_DIRS = ("tests", "bench")
#: Our own source directories; tests/vendor holds only third-party JavaScript (axe-core). tests/vendor_node is
#: included: it is Python in this repository, held to the same rules.
SOURCE_DIRS = (*PACKAGES.values(), *SCRIPT_DIRS)
#: Names that look private but are the object's own (``self``) or its class's.
OWN = {"self", "cls", "super()"}


def python_files() -> list[Path]:
    return sorted(p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts)


def where(path: Path, node: ast.stmt | ast.expr) -> str:
    return f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{node.lineno}"


def is_private(name: str) -> bool:
    """``_name`` (not a dunder such as ``__init__``)."""
    return name.startswith("_") and not name.startswith("__")


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of two or more modules that import one another, directly or through others."""
    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reach = {module: reachable(module) for module in edges}
    groups = {frozenset({m} | {o for o in reach[m] if m in reach.get(o, ())}) for m in edges if m in reach[m]}
    return sorted(sorted(g) for g in groups)


# ------------------------------------------------------------------------------------------------ (a) cycles
def package_edges() -> dict[str, set[str]]:
    """Every import between the project's modules (grimp: also those inside functions or TYPE_CHECKING)."""
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def script_modules() -> dict[str, Path]:
    """Module name → file, for tests/ and bench/ (``test_panel``, ``sim_worker``, ``vendor_node.vendor_node``)."""
    out = {}
    for d in SCRIPT_DIRS:
        for path in (ROOT / d).rglob("*.py"):
            parts = path.relative_to(ROOT / d).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def script_edges() -> dict[str, set[str]]:
    """Imports among the tests' and benchmarks' own modules (the packages never import them, so a cycle through
    both cannot exist: these two graphs are checked apart)."""
    modules = script_modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        edges[name] = {target for target in offences(path).imports if target in modules and target != name}
    return edges


@pytest.mark.parametrize("graph", [package_edges, script_edges], ids=["packages", "tests-and-bench"])
def test_no_import_cycle(graph):
    cycles = strongly_connected(graph())
    assert not cycles, "modules that import one another (directly or in a ring):\n" + "\n".join(
        "  " + " ↔ ".join(group) for group in cycles)


# ------------------------------------------------------------------------------------------ (b), (c) source
class Offences(ast.NodeVisitor):
    """What one file breaks: imports inside a function or under ``if TYPE_CHECKING:`` (``lazy``), and
    ``from x import _name`` or ``something._name`` where something is not ``self``/``cls``/``super()``
    (``private``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lazy: list[str] = []
        self.private: list[str] = []
        self.imports: set[str] = set()  # absolute module names it imports, and ``module.name`` for each from-import
        self.context: list[str] = []  # the enclosing functions / TYPE_CHECKING blocks, innermost last
        self.visit(ast.parse(path.read_text(), str(path)))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.context.append(f"inside {node.name}()")
        self.generic_visit(node)
        self.context.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if "TYPE_CHECKING" not in ast.unparse(node.test):
            self.generic_visit(node)
            return
        self.context.append("under if TYPE_CHECKING")
        for child in node.body:
            self.visit(child)
        self.context.pop()
        for child in node.orelse:  # the branch that runs
            self.visit(child)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        if self.context:
            self.lazy.append(f"{where(self.path, node)}: {ast.unparse(node)}  ({self.context[-1]})")
        if isinstance(node, ast.Import):
            self.imports |= {alias.name for alias in node.names}

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self.visit_Import(node)
        if node.module and not node.level:
            self.imports |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        for alias in node.names:
            if is_private(alias.name):
                self.private.append(f"{where(self.path, node)}: from {'.' * node.level}{node.module or ''} "
                                    f"import {alias.name}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if is_private(node.attr) and ast.unparse(node.value) not in OWN:
            self.private.append(f"{where(self.path, node)}: {ast.unparse(node)}")
        self.generic_visit(node)


@functools.cache
def offences(path: Path) -> Offences:
    return Offences(path)


def test_every_import_is_at_module_level():
    found = [line for path in python_files() for line in offences(path).lazy]
    assert not found, "imports inside a function or under if TYPE_CHECKING (put them at the module top):\n" + \
        "\n".join("  " + line for line in found)


def test_no_module_uses_another_modules_private_names():
    found = [line for path in python_files() for line in offences(path).private]
    assert not found, "private names used from outside their module (make the name public, or use the public " \
        "behaviour):\n" + "\n".join("  " + line for line in found)


def test_the_checks_see_what_they_look_for(tmp_path):
    """The rules catch each kind of offender (so an empty list above means something)."""
    sample = tmp_path / "sample.py"
    sample.write_text("from typing import TYPE_CHECKING\nfrom a import _hidden\nif TYPE_CHECKING:\n    import b\n"
                      "def f(x):\n    import c\n    return x._inner, self._mine, super()._theirs, x.__class__\n")
    found = Offences(sample)
    assert found.lazy == [f"{sample}:4: import b  (under if TYPE_CHECKING)", f"{sample}:6: import c  (inside f())"]
    assert sorted(found.private) == [f"{sample}:2: from a import _hidden", f"{sample}:7: x._inner"]
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []
