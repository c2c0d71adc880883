"""The layout rules of docs/architecture.md, checked on the code itself."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


def test_import_linter_keeps_the_layers_and_finds_no_cycle():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(exe).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    done = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 kept, 0 broken" in done.stdout


def test_at_most_eight_modules_at_the_top_of_bench():
    top = sorted(p.name for p in BENCH.glob("*.py"))
    assert len(top) <= 8, top


def _functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            named = [*a.posonlyargs, *a.args, *a.kwonlyargs]
            if named and named[0].arg in ("self", "cls"):
                named = named[1:]
            yield node.name, len(named) + bool(a.vararg) + bool(a.kwarg)


def test_no_function_of_the_run_machinery_takes_more_than_six_parameters():
    wide = [
        f"{path.relative_to(ROOT)}:{name} ({n})"
        for path in sorted((BENCH / "execution").glob("*.py"))
        for name, n in _functions(path)
        if n > 6
    ]
    assert not wide, wide


@pytest.mark.parametrize("library", ["pynvml", "amdsmi"])
def test_only_the_hardware_package_imports_vendor_libraries(library):
    importers = set()
    for path in [*BENCH.rglob("*.py"), *(ROOT / "kernels").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n.split(".")[0] == library for n in names):
                importers.add(path.relative_to(ROOT).parts[:2])
    assert importers <= {("bench", "hardware")}, importers


def test_no_code_or_doc_points_outside_the_repository():
    words = ("DESIGN.md", "research-", "../shared")
    places = [*BENCH.rglob("*.py"), *(ROOT / "kernels").rglob("*.py"), *(ROOT / "docs").glob("*")]
    places += [*(ROOT / "tests").glob("*.py"), ROOT / "README.md"]
    found = [
        f"{p.relative_to(ROOT)}: {w}"
        for p in places
        if p.is_file() and p.name != "test_architecture.py"
        for w in words
        if w in p.read_text(errors="replace")
    ]
    assert not found, found
