"""The shape of the package: no import loop, every module below the ones that import it, small files."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import segkit

PACKAGE = Path(segkit.__file__).parent
MAX_LINES = 400


def module_files() -> dict[str, Path]:
    """segkit's modules by dotted name ('segkit.report' for report/__init__.py)."""
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("segkit", *path.relative_to(PACKAGE).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imports() -> dict[str, set[str]]:
    """The segkit modules each module imports, anywhere in the file (inside functions too)."""
    files = module_files()
    graph = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from segkit.report import prose` imports the module segkit.report.prose
                found |= {f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in files else node.module
                          for alias in node.names}
        graph[name] = {module for module in found if module in files and module != name}
    return graph


def documented_order() -> list[str]:
    """The modules in the order segkit/__init__.py lists them, lowest first."""
    listing = [line for line in (segkit.__doc__ or "").splitlines() if line.startswith("    ")]
    names = []
    for line in listing:
        modules = re.split(r"\s{2,}", line.strip())[0]
        names += [f"segkit.{name.strip()}" for name in modules.split(",")]
    return names


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A loop of imports (its first module repeated at the end), or None: a depth-first search."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        path.append(module)
        for imported in sorted(graph[module]):
            if imported in path:
                return path[path.index(imported):] + [imported]
            if imported not in done and (cycle := visit(imported)):
                return cycle
        path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done and (cycle := visit(module)):
            return cycle
    return None


def test_find_cycle_finds_a_loop_and_only_a_loop():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_of_segkit_imports_itself_back():
    cycle = find_cycle(imports())
    assert cycle is None, "import loop: " + " -> ".join(cycle)


def test_every_module_imports_only_modules_listed_below_it():
    order = documented_order()
    graph = imports()
    assert sorted(order) == sorted(set(order)), "a module is listed twice in segkit/__init__.py"
    assert set(graph) - {"segkit"} == set(order), "list every module, and only those, in segkit/__init__.py"
    rank = {name: i for i, name in enumerate(order)}
    upward = [f"{name} imports {imported}" for name in order for imported in sorted(graph[name])
              if imported != "segkit" and rank[imported] > rank[name]]
    assert not upward, "a module imports one listed after it in segkit/__init__.py: " + "; ".join(upward)


def test_no_file_of_segkit_is_longer_than_400_lines():
    long = {str(path.relative_to(PACKAGE)): n for path in module_files().values()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_importing_segkit_imports_none_of_its_modules():
    loaded = subprocess.run([sys.executable, "-c", "import sys, segkit; print(sorted(m for m in sys.modules "
                             "if m.startswith('segkit.')))"], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
