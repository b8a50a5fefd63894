"""Property tests: broadcasting binary ops and reductions against NumPy and closed-form gradients."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nurinet.functional as F
from nurinet import Tensor

SETTINGS = settings(max_examples=25, deadline=None)
SHAPE_PAIRS = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
VALUES = st.floats(-3.0, 3.0, allow_nan=False, allow_subnormal=False)
NONZERO = st.floats(0.5, 3.0).flatmap(lambda m: st.sampled_from([m, -m]))


def sum_to_shape(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the axes that broadcasting added or stretched to reach ``shape``."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True).reshape(shape)


def _maximum_grads(a, b, g):
    share = (a > b) + 0.5 * (a == b)  # Ties split the gradient evenly.
    return g * share, g * (1.0 - share)


# name: (nurinet op, numpy op, closed-form (da, db) given a, b and the output gradient g)
BINARY = {
    "add": (F.add, np.add, lambda a, b, g: (g, g)),
    "sub": (F.sub, np.subtract, lambda a, b, g: (g, -g)),
    "mul": (F.mul, np.multiply, lambda a, b, g: (g * b, g * a)),
    "div": (F.div, np.divide, lambda a, b, g: (g / b, -g * a / b**2)),
    "maximum": (F.maximum, np.maximum, _maximum_grads),
}


@st.composite
def binary_case(draw):
    shapes = draw(SHAPE_PAIRS)
    a_shape, b_shape = shapes.input_shapes
    name = draw(st.sampled_from(sorted(BINARY)))
    a = draw(hnp.arrays(np.float64, a_shape, elements=VALUES))
    b_values = NONZERO if name == "div" else VALUES
    b = draw(hnp.arrays(np.float64, b_shape, elements=b_values))
    g = draw(hnp.arrays(np.float64, shapes.result_shape, elements=VALUES))
    return name, a, b, g


@SETTINGS
@given(binary_case())
def test_broadcasting_binary_ops(case) -> None:
    name, a, b, g = case
    op, reference, closed_form = BINARY[name]
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    out = op(ta, tb)
    want = reference(a, b)
    assert out.shape == np.shape(want) and out.dtype == np.float64
    np.testing.assert_allclose(out.array, want, rtol=1e-12, atol=1e-12)
    out.backward(Tensor(g))
    da, db = closed_form(np.broadcast_to(a, g.shape), np.broadcast_to(b, g.shape), g)
    assert ta.grad.shape == a.shape and tb.grad.shape == b.shape
    np.testing.assert_allclose(ta.grad.array, sum_to_shape(da, a.shape), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(tb.grad.array, sum_to_shape(db, b.shape), rtol=1e-10, atol=1e-10)


@SETTINGS
@given(binary_case())
def test_broadcasting_binary_ops_keep_float32(case) -> None:
    name, a, b, _ = case
    op, reference, _ = BINARY[name]
    ta = Tensor(a.astype(np.float32), requires_grad=True)
    tb = Tensor(b.astype(np.float32), requires_grad=True)
    out = op(ta, tb)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.array, reference(a.astype(np.float32), b.astype(np.float32)),
                               rtol=1e-6)
    out.sum().backward()
    assert ta.grad.dtype == np.float32 and tb.grad.dtype == np.float32


@st.composite
def reduction_case(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    # Distinct values, so the maximum is unique and its gradient is a one-hot.
    x = draw(hnp.arrays(np.float64, shape, elements=VALUES, unique=True))
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)
                | hnp.valid_tuple_axes(len(shape), min_size=1))
    keepdims = draw(st.booleans())
    name = draw(st.sampled_from(["sum", "mean", "max", "min", "logsumexp"]))
    return name, x, axis, keepdims


def _numpy_reduction(name: str, x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    if name == "logsumexp":
        return np.log(np.exp(x).sum(axis=axis, keepdims=keepdims))
    return getattr(np, name)(x, axis=axis, keepdims=keepdims)


def _closed_form_grad(name: str, x: np.ndarray, y_kept: np.ndarray) -> np.ndarray:
    """d(sum of the reduction)/dx with the reduced values ``y_kept`` kept as size-one axes."""
    ones = np.ones_like(x)
    if name == "sum":
        return ones
    if name == "mean":
        return ones * y_kept.size / x.size
    if name in ("max", "min"):
        return (x == y_kept).astype(np.float64)
    return np.exp(x - y_kept)  # logsumexp: softmax along the reduced axes


@SETTINGS
@given(reduction_case())
def test_reductions_with_random_axis_and_keepdims(case) -> None:
    name, x, axis, keepdims = case
    tx = Tensor(x, requires_grad=True)
    out = getattr(F, name)(tx, axis=axis, keepdims=keepdims)
    want = _numpy_reduction(name, x, axis, keepdims)
    assert out.shape == np.shape(want)
    np.testing.assert_allclose(out.array, want, rtol=1e-12, atol=1e-12)
    out.sum().backward()
    y_kept = _numpy_reduction(name, x, axis, keepdims=True)
    np.testing.assert_allclose(tx.grad.array, _closed_form_grad(name, x, y_kept),
                               rtol=1e-10, atol=1e-10)
