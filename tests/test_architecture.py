"""The house has no circles: imports point one way (data <- models/train <- diagnose <- experiments
<- story <- cli), no module imports in a cycle, and every module imports first in a fresh
interpreter."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "facekit"

# The layer of each module (prefix match, longest first): a module may import only its own layer
# (inside its own package) or lower layers.
LAYERS: dict[str, float] = {
    "facekit.text": -1,  # wraps what every module prints to the notebook's width
    "facekit.data": 0, "facekit.synthetic": 1,
    "facekit.core": 0.5, "facekit.runs": 0.5,  # data as arrays, the at-chance rule; the run caches
    "facekit.models": 1, "facekit.train": 1,
    "facekit.profiles": 2, "facekit.evaluate": 2, "facekit.style": 2,
    "facekit.claims": 0,  # prints a sentence
    "facekit.results": 1,  # reads committed files (facekit.core's DEEP imported only when needed)
    "facekit.diagnose": 3,
    "facekit.ablation": 4, "facekit.generalize": 4, "facekit.exercises": 4,
    "facekit.plots": 4.5,  # draws what every experiment returns
    "facekit.story": 5,
    "facekit.cli": 6, "facekit.cli_doctor": 6, "facekit.__main__": 6,
    "facekit": 0,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def facekit_imports(name: str) -> set[str]:
    """The facekit modules ``name`` imports anywhere in its file (function-level imports too)."""
    tree = ast.parse(MODULES[name].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "facekit"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "facekit":
            for a in node.names:  # `from facekit.data import cache` names a module
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in MODULES else node.module)
    return found - {name}


def layer(name: str) -> float:
    return LAYERS[max((k for k in LAYERS if name == k or name.startswith(k + ".")), key=len)]


def test_every_module_is_in_a_layer():
    assert set(MODULES) >= {"facekit.data", "facekit.data.dataset", "facekit.diagnose.probes"}
    for name in MODULES:
        layer(name)


def test_imports_point_one_way():
    wrong = []
    for name in MODULES:
        for dep in facekit_imports(name):
            same_package = dep.rsplit(".", 1)[0] == name.rsplit(".", 1)[0] or dep.startswith(name + ".")
            if layer(dep) > layer(name) or (layer(dep) == layer(name) and not same_package
                                            and name != "facekit"):
                wrong.append(f"{name} (layer {layer(name)}) imports {dep} (layer {layer(dep)})")
    assert not wrong, "\n".join(wrong)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (cycle := visit(m)):
                return cycle
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_no_import_cycle():
    graph = {name: facekit_imports(name) for name in MODULES}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def _import_alone(name: str) -> tuple[str, int, str]:
    code = "import sys; sys.argv = ['x', '--help']; import " + name if name == "facekit.__main__" else \
        f"import {name}"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=PACKAGE.parent, timeout=300)
    return name, p.returncode, p.stderr[-800:]


@pytest.mark.parametrize("chunk", [0, 1], ids=["first-half", "second-half"])
def test_every_module_imports_first_in_a_fresh_interpreter(chunk):
    names = [n for n in MODULES if n != "facekit.__main__"][chunk::2]
    with ThreadPoolExecutor(max_workers=2) as pool:
        failed = [(n, err) for n, rc, err in pool.map(_import_alone, names) if rc != 0]
    assert not failed, "\n\n".join(f"import {n}:\n{err}" for n, err in failed)


def _public_imports() -> dict[str, set[str]]:
    """module -> the names other facekit modules (and the benchmarks) import from it by name."""
    used: dict[str, set[str]] = {}
    files = [*MODULES.values(), *sorted((PACKAGE.parent / "benchmarks").glob("*.py"))]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in MODULES and path != MODULES[node.module]:
                used.setdefault(node.module, set()).update(
                    a.name for a in node.names if f"{node.module}.{a.name}" not in MODULES)
    return used


def test_every_module_says_what_it_exports_and_lists_what_others_import():
    missing, unlisted = [], []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        alls = [n for n in tree.body if isinstance(n, ast.Assign)
                and any(getattr(t, "id", None) == "__all__" for t in n.targets)]
        if not alls and not name.endswith("__main__"):
            missing.append(name)
    for name, names in _public_imports().items():
        listed = set(getattr(__import__(name, fromlist=["__all__"]), "__all__", []))
        unlisted += [f"{name}.{n}" for n in sorted(names) if not n.startswith("_") and n not in listed]
    assert not missing, f"modules without __all__: {missing}"
    assert not unlisted, f"imported from outside but not in the module's __all__: {unlisted}"


SIZED = [p for p in sorted(PACKAGE.rglob("*.py"))] + sorted((PACKAGE.parent / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("path", SIZED, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_module_over_400_lines_and_no_function_over_60(path):
    src = path.read_text()
    assert len(src.splitlines()) <= 400, f"{path.name}: {len(src.splitlines())} lines; split it by idea"
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(ast.parse(src))
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.end_lineno - n.lineno >= 60]
    assert not long, f"{path.name}: {', '.join(long)}"
