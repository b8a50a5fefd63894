"""The native row kernels (layer norm over the last axis, the attention softmax) against the NumPy
code they stand in for, and against float64 where the NumPy float32 code is itself inexact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import nurinet.functional as F
from nurinet import Tensor
from nurinet._runtime import native, probe, settings
from nurinet._runtime.modes import forced
from nurinet.functional.attention import (
    _softmax_grad_,
    _softmax_rows,
    scaled_dot_product_attention,
)
from nurinet.functional.normalization import Normalize

needs_native = pytest.mark.skipif(not native.available(), reason=f"no native kernels here: {native.reason()}")
WIDTHS = [1, 3, 17, 64, 129]


def _both(run: Callable[[], Any]) -> tuple[Any, Any, Any]:
    """``run()`` with the native kernels forced, then without them; and which fast paths ran first."""
    with forced(), probe.counting() as counts:
        fast = run()
    with forced(NATIVE=False):
        slow = run()
    return fast, slow, counts


# ----- layer norm ---------------------------------------------------------------------------------


def _layer_norm(x: np.ndarray, affine: bool, seed: int = 1) -> tuple[list[np.ndarray], Normalize]:
    """Output and input/parameter gradients of ``layer_norm`` over the last axis for a random ``gy``."""
    rng = np.random.default_rng(seed)
    n = x.shape[-1]
    xt = Tensor(x, requires_grad=True)
    params = [Tensor(rng.standard_normal(n).astype(np.float32), requires_grad=True) for _ in range(2)] if affine \
        else [None, None]
    y = F.layer_norm(xt, n, *params)
    y.backward(Tensor(rng.standard_normal(x.shape).astype(np.float32)))
    fn = y.creator
    grads = [xt.grad.numpy()] + ([p.grad.numpy() for p in params] if affine else [])
    return [y.numpy().copy(), *(g.copy() for g in grads)], fn


def _ln_reference(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    x = x.astype(np.float64)
    centered = x - x.mean(axis=-1, keepdims=True)
    return centered / np.sqrt((centered**2).mean(axis=-1, keepdims=True) + eps)


@needs_native
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("width", WIDTHS)
def test_native_layer_norm_equals_numpy(width, affine):
    x = np.random.default_rng(0).standard_normal((2, 7, width)).astype(np.float32) * 3 + 0.5
    (got, got_fn), (want, want_fn), counts = _both(lambda: _layer_norm(x, affine))
    assert counts["native.layer_norm_forward"] and counts["native.layer_norm_backward"]
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(w).max())))
    for name in ("mean", "var", "rstd", "xhat"):  # what the op keeps, for its other users
        np.testing.assert_allclose(getattr(got_fn, name), getattr(want_fn, name), rtol=1e-5, atol=1e-5)
    assert got_fn.scale is None


@needs_native
@pytest.mark.parametrize("width", WIDTHS)
def test_native_layer_norm_is_stable_for_a_large_offset(width):
    rng = np.random.default_rng(2)
    x = (1e4 + 0.05 * rng.standard_normal((6, width))).astype(np.float32)
    with forced():
        (y, *_), fn = _layer_norm(x, affine=False)
    np.testing.assert_allclose(y, _ln_reference(x), atol=2e-4)  # two passes: no cancellation
    np.testing.assert_allclose(fn.var[..., 0], x.astype(np.float64).var(axis=-1), rtol=1e-4, atol=1e-9)


@needs_native
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 3e19])
def test_native_layer_norm_leaves_non_finite_statistics_to_numpy(bad):
    x = np.random.default_rng(3).standard_normal((4, 17)).astype(np.float32)
    x[2, 5] = bad  # 3e19: finite, but its square overflows float32
    with np.errstate(all="ignore"):
        (got, got_fn), (want, want_fn), counts = _both(lambda: _layer_norm(x, affine=True))
    assert counts["native.layer_norm_forward"]  # tried, then left to NumPy for the whole call
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(got_fn.scale, want_fn.scale)


@needs_native
def test_native_layer_norm_is_skipped_where_it_does_not_apply():
    x = np.random.default_rng(4).standard_normal((3, 4, 5)).astype(np.float32)
    cases = [
        lambda: F.layer_norm(Tensor(x), (4, 5)),  # two axes
        lambda: F.layer_norm(Tensor(x.astype(np.float64)), 5),  # float64
        lambda: F.layer_norm(Tensor(x.transpose(1, 0, 2)), 5),  # not C-contiguous
        lambda: F.group_norm(Tensor(x), 2),
    ]
    with forced(), probe.counting() as counts:
        for case in cases:
            case()
    assert not counts["native.layer_norm_forward"]


@needs_native
def test_native_layer_norm_backward_takes_a_strided_gradient():
    x = np.random.default_rng(5).standard_normal((6, 9)).astype(np.float32)
    gy = np.random.default_rng(6).standard_normal((9, 6)).astype(np.float32).T  # not C-contiguous

    def run() -> np.ndarray:
        xt = Tensor(x, requires_grad=True)
        F.layer_norm(xt, 9).backward(Tensor(gy))
        return xt.grad.numpy().copy()

    got, want, _ = _both(run)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ----- attention softmax --------------------------------------------------------------------------


def _scores(width: int, seed: int = 0) -> np.ndarray:
    """(3, 5, width) scores with masked (-inf) keys, an all -inf row, a NaN row and a NaN among -inf."""
    rng = np.random.default_rng(seed)
    s = (rng.standard_normal((3, 5, width)) * 4).astype(np.float32)
    s[0, 1, ::2] = -np.inf  # (every key when width is 1)
    s[1, 2] = -np.inf  # a query every key of which is masked: zero weights
    s[2, 0, -1] = np.nan
    s[2, 3] = -np.inf
    s[2, 3, 0] = np.nan  # the max is NaN, so this row is NaN (not dead)
    s[2, 4, 0] = np.inf  # inf - inf: NaN, as in NumPy
    return s


@needs_native
@pytest.mark.parametrize("width", WIDTHS)
def test_native_softmax_rows_equal_numpy(width):
    s = _scores(width)
    with np.errstate(invalid="ignore"):
        (got, got_dead), (want, want_dead), counts = _both(lambda: _softmax_rows(s.copy()))
    assert counts["native.softmax_rows_forward"]
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-9)  # NaN where NumPy has NaN
    np.testing.assert_array_equal(got_dead, want_dead)
    assert got_dead[1, 2, 0] and got_dead.sum() == (2 if width == 1 else 1) and not got[1, 2].any()
    assert np.isnan(got[2, :1]).all() and np.isnan(got[2, 3]).all() and np.isnan(got[2, 4]).all()


@needs_native
def test_native_softmax_rows_report_no_dead_row_as_none():
    s = np.random.default_rng(1).standard_normal((4, 6, 10)).astype(np.float32)
    with forced():
        p, dead = _softmax_rows(s)
    assert dead is None
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-6)


@needs_native
@pytest.mark.parametrize("width", WIDTHS)
def test_native_softmax_backward_equals_numpy(width):
    with np.errstate(invalid="ignore"), forced(NATIVE=False):
        p, _ = _softmax_rows(_scores(width))
    gp = np.random.default_rng(7).standard_normal(p.shape).astype(np.float32)
    gp[0, 3, 0] = np.nan  # propagates through its row's sum

    def run() -> np.ndarray:
        g = gp.copy()
        _softmax_grad_(g, p)
        return g

    with np.errstate(invalid="ignore"):
        got, want, counts = _both(run)
    assert counts["native.softmax_rows_backward"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert np.isnan(got[0, 3]).all() and not got[1, 2].any()


@needs_native
def test_native_attention_with_a_fully_masked_query_equals_numpy():
    rng = np.random.default_rng(8)
    q, k, v = (rng.standard_normal(shape).astype(np.float32) for shape in ((2, 3, 17, 8), (2, 3, 19, 8),
                                                                             (2, 3, 19, 5)))
    mask = rng.random((17, 19)) > 0.3
    mask[4] = False  # attends to no key
    gout = rng.standard_normal((2, 3, 17, 5)).astype(np.float32)

    def run() -> list[np.ndarray]:
        ts = [Tensor(a, requires_grad=True) for a in (q, k, v)]
        out = scaled_dot_product_attention(*ts, mask, is_causal=True)
        out.backward(Tensor(gout))
        return [out.numpy().copy()] + [t.grad.numpy().copy() for t in ts]

    got, want, counts = _both(run)
    assert counts["native.softmax_rows_forward"] and counts["native.softmax_rows_backward"]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    assert not got[0][:, :, 4].any()


def test_the_floors_keep_small_inputs_on_numpy():
    x = np.random.default_rng(9).standard_normal((2, 3)).astype(np.float32)
    assert x.size < settings.NATIVE_NORM_MIN_ELEMENTS and x.size < settings.NATIVE_SOFTMAX_MIN_ELEMENTS
    with probe.counting() as counts:
        F.layer_norm(Tensor(x), 3)
        _softmax_rows(x.copy())
    assert not counts
