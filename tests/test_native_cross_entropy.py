"""The native softmax cross-entropy (``_runtime/fast/loss.py``) against the NumPy code of the same op."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet._runtime import native
from nurinet._runtime.fast import loss as fast_loss
from nurinet.functional.loss_classification import PlainSoftmaxCrossEntropy

needs_native = pytest.mark.skipif(not native.available(), reason=f"no native kernels here: {native.reason()}")


def _loss_and_grad(x: np.ndarray, t: np.ndarray, use_native: bool, reduction: str = "mean"):
    old = native.set_enabled(use_native)
    try:
        logits = nt.tensor(x, requires_grad=True)
        loss = F.cross_entropy(logits, nt.tensor(t), reduction=reduction)
        loss.backward()
        return loss, logits.grad.array
    finally:
        native.set_enabled(old)


@needs_native
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_the_kernel_matches_the_numpy_code(reduction: str, scale: float) -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((37, 11)) * scale).astype(np.float32)
    t = rng.integers(0, 11, 37)
    ours, grad = _loss_and_grad(x, t, True, reduction)
    assert isinstance(ours.creator, PlainSoftmaxCrossEntropy) and ours.creator.probabilities is not None
    ref, ref_grad = _loss_and_grad(x, t, False, reduction)
    assert ours.dtype == ref.dtype == np.float32
    np.testing.assert_allclose(ours.item(), ref.item(), rtol=2e-5, atol=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-6)


@needs_native
def test_non_finite_rows_give_nan_as_numpy_does() -> None:
    x = np.zeros((4, 5), np.float32)
    x[1, 2], x[2, 0], x[3] = np.nan, np.inf, -np.inf
    t = np.array([0, 1, 2, 3])
    probabilities = fast_loss.softmax_cross_entropy(x, t)[1]
    with np.errstate(invalid="ignore"):
        _, ref_grad = _loss_and_grad(x, t, False)
    assert np.isfinite(probabilities[0]).all()
    assert np.isnan(probabilities[1:]).all() and np.isnan(ref_grad[1:]).all()


@needs_native
def test_a_target_out_of_range_falls_back_to_the_general_op() -> None:
    x = np.zeros((3, 4), np.float32)
    with pytest.raises(fast_loss.TargetsOutOfRange):
        fast_loss.softmax_cross_entropy(x, np.array([0, 4, 1]))
    loss = F.cross_entropy(nt.tensor(x), nt.tensor(np.array([0, -100, 1])))  # -100: ignored, as PyTorch
    np.testing.assert_allclose(loss.item(), np.log(4.0), rtol=1e-6)
    with pytest.raises(ValueError, match="target contains class index 4"):
        F.cross_entropy(nt.tensor(x), nt.tensor(np.array([0, 4, 1])))


@pytest.mark.parametrize("use_native", [True, False])
def test_targets_changed_after_the_forward_do_not_reach_the_backward(use_native: bool) -> None:
    if use_native and not native.available():
        pytest.skip("no native kernels here")
    old = native.set_enabled(use_native)
    try:
        x = nt.tensor(np.zeros((4, 5), np.float32), requires_grad=True)
        y = np.array([0, 1, 2, 3])
        loss = F.cross_entropy(x, y)
        y[0] = 10**11  # a label buffer refilled before the backward
        loss.backward()
    finally:
        native.set_enabled(old)
    want = np.full((4, 5), 0.2 / 4, np.float32)
    want[[0, 1, 2, 3], [0, 1, 2, 3]] -= 1 / 4
    np.testing.assert_allclose(x.grad.array, want, rtol=1e-6, atol=1e-7)


@needs_native
def test_other_target_dtypes_and_float64_keep_the_numpy_code() -> None:
    x = np.zeros((3, 4), np.float32)
    assert fast_loss.softmax_cross_entropy(x, np.array([0, 1, 2], np.int32)) is None
    assert fast_loss.softmax_cross_entropy(x.astype(np.float64), np.array([0, 1, 2])) is None
    loss = F.cross_entropy(nt.tensor(x), nt.tensor(np.array([0, 1, 2], np.int32)))
    np.testing.assert_allclose(loss.item(), np.log(4.0), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gradients_of_gradients_still_work(dtype: type) -> None:
    x = nt.tensor(np.random.default_rng(1).standard_normal((5, 3)).astype(dtype), requires_grad=True)
    t = nt.tensor(np.array([0, 2, 1, 1, 0]))
    (g,) = nt.grad(F.cross_entropy(x, t), x, create_graph=True)
    (gg,) = nt.grad((g * g).sum(), x)
    assert gg.shape == (5, 3) and np.isfinite(gg.array).all()
