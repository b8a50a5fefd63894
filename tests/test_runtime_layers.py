"""The runtime (nurinet/_runtime) keeps its layers: no import cycles, and the import-linter contract holds."""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import nurinet

ROOT = Path(nurinet.__file__).parent
REPO = ROOT.parent
# The runtime's modules and the fronts over them (the old paths re-export the new ones).
MODULES = ["nurinet.threads", "nurinet.gemm", "nurinet._blas", "nurinet.parallel", "nurinet.allocator",
           "nurinet._native"] + [f"nurinet._runtime.{p.stem}" for p in (ROOT / "_runtime").glob("*.py")
                                 if p.stem != "__init__"] + ["nurinet._runtime.native"]


def _path(module: str) -> Path:
    base = REPO.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _imports(module: str) -> set[str]:
    """The modules of :data:`MODULES` that ``module`` imports anywhere in its file (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(_path(module).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in MODULES and name != module}
    return found


def test_no_import_cycle_among_the_runtime_modules() -> None:
    graph = {module: _imports(module) for module in MODULES}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = path[path.index(module):] + [module]
            pytest.fail(f"import cycle: {' -> '.join(cycle)}")
        if module in done:
            return
        for other in sorted(graph[module]):
            visit(other, [*path, module])
        done.add(module)

    for module in MODULES:
        visit(module, [])


def test_the_runtime_imports_none_of_the_old_paths() -> None:
    old = {"nurinet.threads", "nurinet.gemm", "nurinet._blas", "nurinet.parallel", "nurinet.allocator",
           "nurinet._native"}
    for module in MODULES:
        if module.startswith("nurinet._runtime"):
            assert not _imports(module) & old, module


@pytest.mark.parametrize(("old", "names"), [
    ("nurinet.gemm", ["matmul", "provider", "set_provider", "mkl_available", "sgemm_function", "single_thread"]),
    ("nurinet._blas", ["available", "axpby", "axpy", "set_enabled"]),
    ("nurinet.parallel", ["split", "run", "parts", "set_elementwise_threads", "set_min_elements"]),
    ("nurinet.allocator", ["keep_freed_memory"]),
    ("nurinet._native", ["available", "for_arrays", "library", "reason", "set_enabled", "sgemm"]),
    ("nurinet.threads", ["set_num_threads", "limit_threads", "single_blas_thread", "set_elementwise_threads"]),
])
def test_the_old_paths_still_export_their_public_names(old: str, names: list[str]) -> None:
    module = importlib.import_module(old)
    for name in names:
        assert callable(getattr(module, name)), f"{old}.{name}"


def test_import_linter_contract() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(lint).exists():
        pytest.skip("import-linter is not installed (pip install import-linter)")
    done = subprocess.run([lint, "--config", str(REPO / ".importlinter")], cwd=REPO, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
