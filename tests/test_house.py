"""The shape of the house: small modules, imports that point one way, only the assembly knows every service."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parents[1] / "server"
MAX_LINES = 500
SERVICES = (
    "earsight.streams", "earsight.listen", "earsight.embed", "earsight.display", "earsight.sonify", "earsight.audio.process",
    "earsight.scenes", "earsight.link",
)
"""The services the app wires; they share the state and utilities (rings, audio io, paths), never each other."""


def module_name(path: Path) -> str:
    parts = path.relative_to(SERVER).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("earsight", *parts))


def runtime_imports(path: Path) -> set[str]:
    """earsight modules ``path`` imports when it runs (lazy imports in functions count; TYPE_CHECKING blocks do not)."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("earsight"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            if base.startswith("earsight"):
                found.update(f"{base}.{a.name}" for a in node.names)
                found.add(base)  # (kept only where a name is not a submodule: see graph())
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the earsight modules it imports. ``from pkg import sub`` depends on ``pkg.sub``, not on
    ``pkg`` itself (importing a submodule runs its parent package first in any case)."""
    modules = {module_name(p): p for p in SERVER.rglob("*.py")}
    out: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = {m for m in runtime_imports(path) if m in modules and m != name}
        parents = {m for m in found if any(other.startswith(m + ".") for other in found)}
        out[name] = found - {p for p in parents if name.startswith(p + ".")}
    return out


def test_no_runtime_module_is_over_500_lines() -> None:
    long = {str(p.relative_to(SERVER)): n for p in SERVER.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_imports_have_no_cycles() -> None:
    g = graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)


def test_only_the_assembly_knows_the_app_and_services_do_not_know_each_other() -> None:
    g = graph()
    assert {m for m, deps in g.items() if "earsight.app" in deps} <= {"earsight.cli", "earsight.bench"}
    for module, deps in g.items():
        owner = next((s for s in SERVICES if module == s or module.startswith(s + ".")), None)
        if owner is None:
            continue
        others = {d for d in deps for s in SERVICES if s != owner and (d == s or d.startswith(s + "."))}
        assert not others, f"{module} reaches into another service: {sorted(others)}"


def test_the_command_table_imports_no_service() -> None:
    g = graph()
    table = [m for m in g if m == "earsight.commands" or m.startswith("earsight.commands.")]
    for module in table:
        services = {d for d in g[module] if d.startswith(SERVICES) and not d.startswith("earsight.sonify.params")}
        assert not services, f"{module} imports {sorted(services)}"
