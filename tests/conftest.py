"""Shared test fixtures."""

import types

import numpy as np
import pytest

import nurinet


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed() -> None:
    nurinet.manual_seed(0)


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
