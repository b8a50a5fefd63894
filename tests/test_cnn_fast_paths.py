"""The fast paths of the CNN training step: disjoint max-pool windows and recycled conv buffers."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet.functional import _im2col
from nurinet.functional.pooling import MaxPool2d


def _pool_grad(x: np.ndarray, kernel: object, gy_seed: int = 1, fast: bool = True) -> tuple[np.ndarray, ...]:
    a = nt.tensor(x)
    a.requires_grad = True
    y, idx = F.max_pool2d(a, kernel, return_indices=True)
    gy = np.random.default_rng(gy_seed).standard_normal(y.shape).astype(x.dtype)
    nt.autograd.backward(y, nt.tensor(gy))
    return y.data, idx.data, a.grad.data


@pytest.mark.parametrize(("shape", "kernel"), [((2, 3, 8, 8), 2), ((2, 3, 7, 9), (2, 3)), ((1, 2, 6, 5), (3, 1)),
                                               ((1, 1, 3, 3), 1)])
def test_disjoint_max_pool_matches_the_general_path(shape: tuple[int, ...], kernel: object,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Rounded values: many ties, which must go to the first maximum in both paths.
    x = np.random.default_rng(0).standard_normal(shape).round().astype(np.float32)
    fast = _pool_grad(x, kernel)
    monkeypatch.setattr(MaxPool2d, "_disjoint", lambda self: False)
    general = _pool_grad(x, kernel)
    for a, b in zip(fast, general):
        np.testing.assert_array_equal(a, b)


def test_disjoint_max_pool_routes_nan_windows_to_their_first_nan() -> None:
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan
    y, idx, gx = _pool_grad(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1
    assert gx[0, 0, 0, 1] != 0 and gx[0, 0, 1, 0] == 0


def test_conv_buffers_are_recycled_without_corrupting_live_graphs() -> None:
    rng = np.random.default_rng(0)
    w = nt.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    w.requires_grad = True
    # Big enough (a 1.6 MB column matrix) for the buffer pool to keep.
    xs = [nt.tensor(rng.standard_normal((4, 3, 64, 64)).astype(np.float32)) for _ in range(3)]
    expected = []
    for x in xs:  # one graph at a time: the reference weight gradients
        w.grad = None
        F.conv2d(x, w).sum().backward()
        expected.append(w.grad.data.copy())
    assert _im2col._SPARE  # the column matrices went back to the pool
    losses = [F.conv2d(x, w).sum() for x in xs]  # three graphs alive at once, buffers taken from the pool
    for loss, want in zip(losses, expected):
        w.grad = None
        loss.backward()
        np.testing.assert_allclose(w.grad.data, want, rtol=1e-5, atol=1e-4)
