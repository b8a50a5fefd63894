"""The fast routines of nurinet/_runtime/fast say "not here" (None, or False for an update in place)
wherever they do not apply, so that the op's own NumPy code runs; where they apply, they agree with it
(tests/test_fast_paths.py runs every registered op both ways)."""

from __future__ import annotations

import numpy as np
import pytest

from nurinet._runtime import native
from nurinet._runtime.fast import activation, attention, conv, normalization, optim
from nurinet._runtime.modes import forced, reference_only
from nurinet.functional._im2col import Geometry

RNG = np.random.default_rng(0)
X4 = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
W4 = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
STRIDE1 = Geometry((1, 1), ((1, 1), (1, 1)), (1, 1), 1)


def test_relu_leaves_scalars_and_broadcast_gradients_to_the_op() -> None:
    assert activation.relu(np.array(2.0, np.float32)) is None  # 0-d
    assert activation.relu_grad(np.ones((3, 1), np.float32), np.ones((3, 4), np.float32)) is None


@pytest.mark.skipif(not native.available(), reason="no native kernels here")
def test_relu_grad_with_column_sums_agrees_with_numpy_and_steps_aside() -> None:
    gy = RNG.standard_normal((130, 300)).astype(np.float32)
    y = RNG.standard_normal((130, 300)).astype(np.float32)
    gy[3, 5], gy[4, 6], y[7, 8] = np.inf, np.nan, np.nan  # inf * 0 and NaN * 0 are NaN, a NaN input masks
    with forced():
        g, sums = activation.relu_grad_with_column_sums(gy, y)
        assert activation.relu_grad_with_column_sums(gy[:, :10].copy(), y[:, :10].copy()) is not None
        assert activation.relu_grad_with_column_sums(gy.astype(np.float64), y.astype(np.float64)) is None
        assert activation.relu_grad_with_column_sums(gy[0], y[0]) is None  # 1-D
    with np.errstate(invalid="ignore"):
        want = gy * (y > 0)
    np.testing.assert_array_equal(g, want)
    np.testing.assert_allclose(sums, want.sum(axis=0), rtol=1e-5, atol=1e-4)
    with reference_only():
        assert activation.relu_grad_with_column_sums(gy, y) is None


def test_conv_leaves_other_strides_negative_padding_and_the_reference_mode_to_the_op() -> None:
    with forced():
        assert conv.conv2d_forward(X4, W4, None, Geometry((2, 2), ((1, 1), (1, 1)), (1, 1), 1)) is None
        assert conv.conv2d_forward(X4, W4, None, Geometry((1, 1), ((1, -1), (1, 1)), (1, 1), 1)) is None
        assert conv.conv2d_forward(X4, W4, None, STRIDE1) is not None
    with reference_only():
        assert conv.conv2d_forward(X4, W4, None, STRIDE1) is None


def test_conv_backward_leaves_the_input_gradient_of_infinite_weights_to_the_op() -> None:
    w = W4.copy()
    w[0, 0, 0, 0] = np.inf
    gy = np.ones((2, 4, 6, 6), np.float32)
    with forced():
        assert conv.conv2d_backward(gy, X4, w, STRIDE1, True, True) is None
        assert conv.conv2d_backward(gy, X4, w, STRIDE1, False, True) is not None


@pytest.mark.skipif(not native.available(), reason=f"no native kernels here: {native.reason()}")
def test_the_native_routines_take_float32_only() -> None:
    s = RNG.standard_normal((4, 5, 8))
    w, b = np.ones(8), np.zeros(8)
    with forced():
        assert normalization.layer_norm(s, (2,), 1e-5, w, b) is None
        assert normalization.layer_norm(s.astype(np.float32), (1, 2), 1e-5) is None  # not the last axis only
        assert normalization.layer_norm(s.astype(np.float32), (2,), 1e-5) is not None
        assert attention.softmax_rows(s.copy()) is None
        assert attention.softmax_rows_backward_(s.copy(), s) is None
        assert attention.softmax_rows(s.astype(np.float32)) is not None


def test_attention_runs_whole_on_one_thread() -> None:
    q = RNG.standard_normal((4, 2, 5, 3)).astype(np.float32)
    with reference_only():
        assert attention.attend_split(None, q, q, q, 1.0, None, None) is None  # the chain is never called


def test_adam_leaves_a_small_float64_parameter_on_one_thread_to_the_optimizer() -> None:
    p, g, m, v, tmp = (np.ones(6) for _ in range(5))
    with reference_only():
        assert optim.adam_update(None, (0.9, 0.999, 0.03, 1e-8, 0.01), p, g, m, v, tmp) is False
    assert (p == 1).all()
