"""Shared test fixtures."""

import os
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import nurinet

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed() -> None:
    nurinet.manual_seed(0)


@pytest.fixture(params=["compiled", "python"])
def engine_loop(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test twice: with the engine's compiled parts (``Function.__call__``, a plain backward's node
    loop and its leaves' gradients in C, native/engine.c) and with its Python code. The C run is skipped
    where the extension cannot be built."""
    from nurinet._runtime import extension
    from nurinet.autograd import compiled as compiled_engine
    from nurinet.autograd.function import Function

    compiled = request.param == "compiled"
    if compiled and extension.load("engine") is None:
        pytest.skip(f"the compiled engine cannot be built here: {extension.reason('engine')}")
    old = compiled_engine.use_compiled(compiled)
    try:
        in_c = type(Function.__dict__["__call__"]).__name__ == "method_descriptor"
        assert in_c == compiled and (compiled_engine.engine_module() is not None) == compiled
        yield request.param
    finally:
        compiled_engine.use_compiled(old)


def _gemm_providers() -> list[str]:
    from nurinet._runtime import gemm

    return ["numpy"] + (["mkl"] if gemm.mkl_available() else []) + (["native"] if gemm.native_available() else [])


@pytest.fixture(params=_gemm_providers())
def gemm_provider(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test with each matrix-product provider this machine has (NumPy's BLAS, MKL, nurinet's own
    GEMM), restoring the provider after; ``parametrize("gemm_provider", ["numpy"], indirect=True)`` picks one."""
    from nurinet._runtime import gemm

    old = gemm.set_provider(request.param)
    try:
        yield request.param
    finally:
        gemm.set_provider(old)


@pytest.fixture
def fresh_python() -> Callable[[str], subprocess.CompletedProcess]:
    """Runs ``python -c code`` in a new interpreter from the repository root, with this checkout first
    on ``PYTHONPATH`` (so that it imports the checkout's nurinet), and returns the finished process
    (stdout and stderr as text; its exit status is the test's to check). For what an import loads."""

    def run(code: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                              timeout=120, check=False)

    return run


@pytest.fixture
def fake_cupy(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The CuPy double of tests/fake_cupy.py, imported as ``cupy`` for this test only.

    Tests that ask for it can move tensors and modules to ``"cuda"``; every other test keeps
    seeing no CuPy (the fixture's monkeypatch restores ``sys.modules`` and nurinet.backend's cache).

    Returns:
        The fake ``cupy`` module.
    """
    from tests import fake_cupy as double

    return double.install(monkeypatch)


@pytest.fixture
def torch():
    """PyTorch with float64 as its default dtype for this test (skipped where PyTorch is missing).

    The comparisons against PyTorch run in float64; optimizers such as NAdam keep their state
    (mu_product, the step) in the default dtype.
    """
    torch = pytest.importorskip("torch")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(previous)
