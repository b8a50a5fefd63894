"""The one-pass BLAS updates (nurinet._runtime.blas) agree with NumPy, and the optimizers agree with and without them."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
from nurinet._runtime import blas as _blas
from nurinet._runtime import settings

BIG = settings.BLAS_MIN_ELEMENTS * 2

needs_blas = pytest.mark.skipif(not _blas.available(), reason="no OpenBLAS axpby/axpy found in this NumPy")


@pytest.fixture
def blas_restored():
    old = _blas.set_enabled(True)
    yield
    _blas.set_enabled(old)


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axpby_and_axpy_match_numpy(dtype, blas_restored):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(BIG).astype(dtype), rng.standard_normal(BIG).astype(dtype)
    expected = 0.3 * x + 0.9 * y
    assert _blas.axpby(0.3, x, 0.9, y)
    np.testing.assert_allclose(y, expected, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)
    expected = y - 0.01 * x
    assert _blas.axpy(-0.01, x, y)
    np.testing.assert_allclose(y, expected, rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)


def test_arrays_the_blas_cannot_take_are_left_to_numpy(blas_restored):
    rng = np.random.default_rng(1)
    y = rng.standard_normal(BIG).astype(np.float32)
    before = y.copy()
    assert not _blas.axpy(1.0, np.ones(BIG), y)  # mixed dtypes
    assert not _blas.axpy(1.0, np.ones(2 * BIG, np.float32)[::2], y)  # strided
    assert not _blas.axpy(1.0, y, y)  # the same memory
    small = np.ones(8, np.float32)
    assert not _blas.axpy(1.0, small.copy(), small)  # too small to pay
    frozen = y.copy()
    frozen.flags.writeable = False
    assert not _blas.axpy(1.0, np.ones(BIG, np.float32), frozen)
    _blas.set_enabled(False)
    assert not _blas.axpy(1.0, np.ones(BIG, np.float32), y)
    np.testing.assert_array_equal(y, before)  # nothing was written where the BLAS said no


def _train(make_optimizer, use_blas: bool, steps: int = 12) -> np.ndarray:
    _blas.set_enabled(use_blas)
    rng = np.random.default_rng(2)
    p = nt.nn.Parameter(nt.tensor(rng.standard_normal((256, 160)).astype(np.float32)))
    opt = make_optimizer([p])
    for step in range(steps):
        p.grad = nt.tensor(rng.standard_normal((256, 160)).astype(np.float32) * (1 + step % 3))
        opt.step()
    return p.numpy().copy()


@needs_blas
@pytest.mark.parametrize("make_optimizer", [
    lambda ps: nt.optim.SGD(ps, lr=0.05),
    lambda ps: nt.optim.SGD(ps, lr=0.05, momentum=0.9),
    lambda ps: nt.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-3),
    lambda ps: nt.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: nt.optim.Adam(ps, lr=1e-2),
    lambda ps: nt.optim.AdamW(ps, lr=1e-2),
    lambda ps: nt.optim.RMSprop(ps, lr=1e-3, centered=True),
], ids=["sgd", "momentum", "dampening", "nesterov", "adam", "adamw", "rmsprop"])
def test_optimizers_agree_with_and_without_blas(make_optimizer, blas_restored):
    assert _train(make_optimizer, True).size >= BIG
    np.testing.assert_allclose(_train(make_optimizer, True), _train(make_optimizer, False), rtol=2e-5, atol=2e-6)
