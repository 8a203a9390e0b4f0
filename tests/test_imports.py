"""The house's import rules: no cycles, nothing heavy at import time, layers import downwards only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import harness

PACKAGE = Path(harness.__file__).parent
MODULES = sorted(
    ".".join(("harness", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")
    if p.name != "__main__.py"
)
# measure/, train/ and models/ are usable from a notebook: they never reach up into the run machinery.
LOW_LAYERS = ("harness.measure", "harness.train", "harness.models", "harness.workloads", "harness.data",
              "harness.analysis")
HIGH_LAYERS = ("harness.config", "harness.plan", "harness.runner", "harness.results", "harness.cli", "harness.launch",
               "harness.tasks", "harness.report", "harness.gate")


def _module_path(name: str) -> Path:
    rel = Path(*name.split(".")[1:])
    return PACKAGE / rel / "__init__.py" if (PACKAGE / rel).is_dir() else PACKAGE / rel.with_suffix(".py")


def _top_level_imports(name: str, *, functions: bool = False) -> set[str]:
    """harness modules imported at module level (not under TYPE_CHECKING); with ``functions``, also those imported
    inside functions and classes (run when called: a cycle through them is a cycle all the same)."""
    tree = ast.parse(_module_path(name).read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        nested = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        for sub in ast.walk(node) if functions or not nested else []:
            if isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names if a.name.startswith("harness")}
            elif isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("harness"):
                found.add(sub.module)
                found |= {f"{sub.module}.{a.name}" for a in sub.names if f"{sub.module}.{a.name}" in MODULES}
    return {m for m in found if m in MODULES and m != name}


def test_the_module_list_is_the_package():
    assert "harness.plan" in MODULES and "harness.gate.verdict" in MODULES and "harness" in MODULES


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the import graph as a path, or None. A module importing its own package (which Python runs first
    anyway) is no edge; a package importing its submodules is."""
    state: dict[str, str] = {}

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = "active"
        for nxt in sorted(graph.get(node, ())):
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == "active":
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt, [*stack, nxt])):
                return cycle
        state[node] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module, [module])):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"p": {"p.x"}, "p.x": {"p"}}) is None
    assert find_cycle({"p": {"p.x"}, "p.x": {"q"}, "q": {"p"}}) == ["p", "p.x", "q", "p"]


def test_no_import_cycles_among_harness_modules():
    cycle = find_cycle({m: _top_level_imports(m) for m in MODULES})
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_no_import_cycles_even_through_imports_inside_functions():
    """A lazy import keeps import time low; it does not make a cycle acceptable (the run request, not an argv list
    re-entering the CLI, carries a shard's work)."""
    cycle = find_cycle({m: _top_level_imports(m, functions=True) for m in MODULES})
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_low_layers_never_import_the_run_machinery():
    for module in MODULES:
        if module.startswith(LOW_LAYERS):
            bad = {m for m in _top_level_imports(module) if m.startswith(HIGH_LAYERS)}
            assert not bad, f"{module} imports {sorted(bad)}"


@pytest.mark.slow  # spawns interpreters / asserts a timing verdict: tox -e slow
def test_every_module_imports_alone_in_a_fresh_interpreter():
    """Each module first, with no other harness module loaded (third-party packages stay cached)."""
    code = (
        "import importlib, sys, torch, timm, scipy.stats, pydantic, yaml\n"
        f"failed = []\nfor name in {MODULES!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'harness' or m.startswith('harness')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n        importlib.import_module(name)\n"
        "    except Exception as exc:\n        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed)); sys.exit(1 if failed else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def _imports_torch(snippet: str) -> bool:
    code = f"import sys\n{snippet}\nprint('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1] == "True"


def test_help_and_usage_errors_do_not_import_torch():
    run_main = ("import runpy\nsys.argv = ['harness', {args}]\n"
                "try:\n    runpy.run_module('harness', run_name='__main__')\nexcept SystemExit:\n    pass")
    assert not _imports_torch(run_main.format(args="'--help'"))
    assert not _imports_torch(run_main.format(args="'check', '--help'"))
    assert not _imports_torch(run_main.format(args="'run'"))  # missing SUITE: a usage error
    assert not _imports_torch("import harness, harness.cli, harness.config, harness.models.registry")
    assert not _imports_torch("from harness import register_model")




def test_building_the_command_line_imports_no_numeric_library():
    """Every call builds every command's parser: its defaults (the gate's thresholds) come from light modules, and
    the record types build their validators on first use (scipy, imported for a default, made --help 0.8 s)."""
    code = ("import sys\nfrom harness.cli import build_parser\nbuild_parser()\n"
            "print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_results_never_import_the_gate():
    """The gate reads results (the one benchmark key lives in harness.results.summaries), never the reverse."""
    for module in MODULES:
        if module.startswith("harness.results"):
            assert "harness.gate" not in _module_path(module).read_text(), f"{module} imports from harness.gate"


@pytest.mark.parametrize(("reader", "writer"), [
    ("harness.report", "harness.gate"),  # the report reads results; the gate's threshold is not its business
    ("harness.tasks", "harness.results.summaries"),  # the writing side never imports the reading side
    ("harness.measure", "harness.results.summaries"),
    ("harness.results", "harness.report"),
])
def test_edges_run_downward_even_inside_functions(reader, writer):
    for module in MODULES:
        if module.startswith(reader):
            bad = {m for m in _top_level_imports(module, functions=True) if m.startswith(writer)}
            assert not bad, f"{module} imports {sorted(bad)}"
