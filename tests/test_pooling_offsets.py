"""Max pooling's one record of its maxima: each output's offset in its window, in every path.

The reference path, the native kernels and the threaded NumPy routine
(``nurinet/_runtime/fast/pooling.py``) all keep the same uint8 window offsets, so a backward may
take another path than its forward; the flat indices of ``return_indices`` are derived from them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np
import pytest

import nurinet.functional as F
from nurinet import Tensor
from nurinet._runtime import native
from nurinet._runtime.modes import forced, reference_only
from nurinet.functional.pooling import AdaptiveMaxPool2d, MaxPool2d

MODES = {"reference": reference_only, "forced": forced, "forced_numpy": lambda: forced(NATIVE=False)}


def _ties_and_nans(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape).astype(np.float32)  # small integers: many ties, the first one wins
    x.reshape(-1)[rng.choice(x.size, 4, replace=False)] = np.nan  # a NaN is its window's maximum
    return x


def _pool(x: np.ndarray, fn: MaxPool2d, mode: AbstractContextManager) -> tuple[np.ndarray, ...]:
    t = Tensor(x, requires_grad=True)
    with mode, np.errstate(invalid="ignore"):
        y = fn(t)
        y.backward(Tensor(np.arange(y.array.size, dtype=x.dtype).reshape(y.shape) + 1))
    return y.array, fn.arg, fn.indices, t.grad.array


@pytest.mark.parametrize(("shape", "kernel"), [((3, 2, 8, 8), (2, 2)), ((2, 3, 7, 9), (2, 3))])
def test_every_path_keeps_the_same_window_offsets(shape: tuple[int, ...], kernel: tuple[int, int]) -> None:
    if not native.available():
        pytest.skip(f"no native kernels here: {native.reason()}")
    x = _ties_and_nans(shape)
    results = {name: _pool(x, MaxPool2d(kernel, kernel, (0, 0), (1, 1), False), mode())
               for name, mode in MODES.items()}
    want = results.pop("reference")
    assert want[1].dtype == np.uint8
    for name, got in results.items():
        assert got[1].dtype == np.uint8, name
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w, err_msg=name)


def test_a_fast_backward_reads_the_offsets_of_a_reference_forward() -> None:
    x = _ties_and_nans((2, 2, 6, 6), seed=1)
    fn = MaxPool2d((2, 2), (2, 2), (0, 0), (1, 1), False)
    with reference_only():
        y = fn(Tensor(x))
    with forced(NATIVE=False):
        fast = fn.backward_arrays(np.ones(y.shape, np.float32))
    with reference_only():
        slow = fn.backward_arrays(np.ones(y.shape, np.float32))
    np.testing.assert_array_equal(fast, slow)
    assert slow.sum() == y.array.size


def test_overlapping_windows_derive_flat_indices_from_the_offsets() -> None:
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    y, idx = F.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    np.testing.assert_array_equal(idx.array[0, 0], [[5, 6, 7, 7], [9, 10, 11, 11], [13, 14, 15, 15],
                                                   [13, 14, 15, 15]])
    np.testing.assert_array_equal(y.array.reshape(-1), x.reshape(-1)[idx.array.reshape(-1)])


def test_windows_of_more_than_256_taps_use_wide_offsets() -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, 34, 17)).astype(np.float32)
    fn = MaxPool2d((17, 17), (17, 17), (0, 0), (1, 1), False)
    t = Tensor(x, requires_grad=True)
    y = fn(t)
    y.sum().backward()
    assert fn.arg.dtype == np.int64  # 289 taps: more than a uint8 counts
    windows = x.reshape(2, 3, 2, 17, 1, 17).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 2, 1, -1)
    np.testing.assert_array_equal(fn.arg, windows.argmax(axis=-1))
    np.testing.assert_array_equal(y.array, windows.max(axis=-1))
    want = np.zeros(x.size, np.float32)
    want[(fn.indices + np.arange(6).reshape(2, 3, 1, 1) * x[0, 0].size).reshape(-1)] = 1
    np.testing.assert_array_equal(t.grad.array.reshape(-1), want)


def test_adaptive_max_pool_offsets_index_its_bins() -> None:
    x = np.random.default_rng(3).standard_normal((2, 2, 20, 20)).astype(np.float32)
    fn = AdaptiveMaxPool2d((1, 1))
    y = fn(Tensor(x))
    assert fn.arg.dtype == np.int64  # a 400-tap bin
    flat = x.reshape(2, 2, -1)
    np.testing.assert_array_equal(fn.indices[..., 0, 0], flat.argmax(axis=-1))
    np.testing.assert_array_equal(y.array[..., 0, 0], flat.max(axis=-1))
