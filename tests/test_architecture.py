"""The architecture holds: every import points down, no module reads another's privates.

import-linter (run by ``make test``) checks the layers of pyproject.toml; these tests add
what a layers contract cannot see: a cycle between modules of the same package, and a
module reaching into another module's private names.
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import grimp
import pytest

SRC = pathlib.Path(__file__).resolve().parent.parent / "src" / "sendoff"
#: NamedTuple's public API, spelt with a leading underscore so as not to clash with fields.
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make", "_field_defaults"}


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(root: str) -> None:
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def test_the_module_graph_has_no_cycle() -> None:
    # grimp sees every import: module level, inside functions, and under TYPE_CHECKING
    graph = grimp.build_graph("sendoff", include_external_packages=False)
    assert len(graph.modules) > 50
    assert import_cycles(graph) == []


def test_the_cycle_check_finds_a_cycle(tmp_path: pathlib.Path) -> None:
    package = tmp_path / "loopy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import high\n"
    )
    (package / "high.py").write_text("def f():\n    from . import low\n")
    sys.path.insert(0, str(tmp_path))
    try:
        graph = grimp.build_graph("loopy", include_external_packages=False)
    finally:
        sys.path.remove(str(tmp_path))
    assert import_cycles(graph) == [["loopy.high", "loopy.low"]]


def _defined_private_names(tree: ast.Module) -> set[str]:
    """Private names a module defines: its globals, functions, classes, the attributes its
    classes set on ``self``/``cls`` and their ``__slots__``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
        ) and isinstance(node.value, ast.Tuple | ast.List):
            names.update(
                e.value for e in node.value.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            )
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def foreign_private_uses(path: pathlib.Path) -> list[str]:
    """Uses in ``path`` of private names another module defines."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _defined_private_names(tree)
    imported_modules = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom | ast.Import)
        for alias in node.names
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.name}:{node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.Attribute):
            attr = node.attr
            if not attr.startswith("_") or attr.startswith("__") or attr in NAMEDTUPLE_API:
                continue
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                continue
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "super":
                continue
            from_module = isinstance(value, ast.Name) and value.id in imported_modules
            if attr in own and not from_module:
                continue  # the module's own class, seen from outside self (a copy, __eq__)
            found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_reads_another_modules_private_names() -> None:
    found = [use for path in sorted(SRC.rglob("*.py")) for use in foreign_private_uses(path)]
    assert found == []


def test_the_private_name_check_finds_a_foreign_read(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "reader.py"
    source.write_text(
        "from .engine import _engine\nfrom . import default\n"
        "def f(request, engine):\n"
        "    return request._timeout, engine._engine, default._default\n"
    )
    assert foreign_private_uses(source) == [
        "reader.py:1: imports _engine",
        "reader.py:4: request._timeout",
        "reader.py:4: engine._engine",
        "reader.py:4: default._default",
    ]


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("http/url.py", "from ..clients.default import get_default_client\n"),
        ("delivery/pool.py", "from ..clients.external import External\n"),
        ("transports/tls.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from ..hmvc.app import App\n"),
    ],
)
def test_import_linter_fails_on_an_upward_import(
    tmp_path: pathlib.Path, module: str, upward: str
) -> None:
    """The contracts are not decoration: one upward import, and lint-imports fails."""
    copy = tmp_path / "src"
    subprocess.run(["cp", "-r", str(SRC.parent), str(copy)], check=True)
    target = copy / "sendoff" / module
    text = target.read_text(encoding="utf-8")
    head, sep, rest = text.partition("from __future__ import annotations\n")
    target.write_text(head + sep + upward + rest, encoding="utf-8")
    config = SRC.parent.parent / "pyproject.toml"
    run = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "lint-imports"),
         "--config", str(config), "--no-cache"],
        capture_output=True, text=True, cwd=tmp_path,
        env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "BROKEN" in run.stdout
