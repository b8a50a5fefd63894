"""Normalization ops and layers, and channel dropout: fused op vs composite twin, running
statistics against the formula, layer harness, and the error messages."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor, nn
from nurinet.autograd.gradcheck import gradgradcheck
from nurinet.functional import normalization_reference as R
from nurinet.random import Generator
from tests.nn.harness import check_layer

RNG = np.random.default_rng(0)


def _t(*shape: int, grad: bool = True, dtype=np.float64) -> Tensor:
    return Tensor(RNG.standard_normal(shape).astype(dtype), requires_grad=grad)


CASES = {
    "batch_norm": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), R.batch_norm_composite,
                   (4, 3, 5), (3,)),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (3, 5), w, b), lambda x, w, b: R.layer_norm_composite(
        x, (3, 5), w, b), (4, 3, 5), (3, 5)),
    "group_norm": (lambda x, w, b: F.group_norm(x, 2, w, b), lambda x, w, b: R.group_norm_composite(x, 2, w, b),
                   (3, 4, 2, 3), (4,)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fused_matches_composite_first_and_second_order(name: str) -> None:
    fused, composite, x_shape, p_shape = CASES[name]
    x, w, b = _t(*x_shape), _t(*p_shape), _t(*p_shape)
    gy = Tensor(RNG.standard_normal(x_shape))
    y1, y2 = fused(x, w, b), composite(x, w, b)
    np.testing.assert_allclose(y1.array, y2.array, atol=1e-12)
    g1 = nurinet.grad(y1, [x, w, b], gy, create_graph=True)
    g2 = nurinet.grad(y2, [x, w, b], gy, create_graph=True)
    for a, c in zip(g1, g2):
        np.testing.assert_allclose(a.array, c.array, atol=1e-10)
    # Second order: the gradient of <g_x, v> with respect to x, w and b.
    v = Tensor(RNG.standard_normal(x_shape))
    h1 = nurinet.grad((g1[0] * v).sum(), [x, w, b], allow_unused=True)
    h2 = nurinet.grad((g2[0] * v).sum(), [x, w, b], allow_unused=True)
    assert h1[2] is None and h2[2] is None  # g_x does not depend on the bias
    for a, c in zip(h1[:2], h2[:2]):
        np.testing.assert_allclose(a.array, c.array, atol=1e-9)


def test_gradgradcheck_batch_norm_without_affine() -> None:
    assert gradgradcheck(lambda x: F.batch_norm(x, None, None, training=True), [_t(5, 2, 3)], mode="full")


def test_float32_stays_float32_with_running_stats() -> None:
    bn = nn.BatchNorm2d(3)
    x = _t(2, 3, 4, 4, dtype=np.float32)
    y = bn(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32 and bn.weight.grad.dtype == np.float32
    assert bn.running_mean.dtype == np.float32 and bn.running_var.dtype == np.float32


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axes), x.var(axes), x.var(axes, ddof=1)


def test_batch_norm_running_statistics_follow_the_momentum_rule() -> None:
    bn = nn.BatchNorm1d(3, momentum=0.3, dtype=np.float64)
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(3):
        x = RNG.standard_normal((6, 3, 4)) * 2 + 1
        y = bn(Tensor(x))
        m, v, unbiased = _stats(x)
        mean, var = 0.7 * mean + 0.3 * m, 0.7 * var + 0.3 * unbiased
        np.testing.assert_allclose(y.array, (x - m[:, None]) / np.sqrt(v[:, None] + 1e-5), atol=1e-12)
    np.testing.assert_allclose(bn.running_mean.array, mean, atol=1e-12)
    np.testing.assert_allclose(bn.running_var.array, var, atol=1e-12)
    assert int(bn.num_batches_tracked.array) == 3
    bn.eval()
    x = RNG.standard_normal((2, 3, 4))
    np.testing.assert_allclose(bn(Tensor(x)).array, (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5),
                               atol=1e-12)


def test_batch_norm_cumulative_average_when_momentum_is_none() -> None:
    bn = nn.BatchNorm1d(2, momentum=None, dtype=np.float64)
    batches = [RNG.standard_normal((5, 2)) for _ in range(4)]
    for x in batches:
        bn(Tensor(x))
    np.testing.assert_allclose(bn.running_mean.array, np.mean([x.mean(0) for x in batches], axis=0), atol=1e-12)
    np.testing.assert_allclose(bn.running_var.array, np.mean([x.var(0, ddof=1) for x in batches], axis=0),
                               atol=1e-12)


def test_batch_norm_without_running_stats_uses_batch_statistics_in_eval() -> None:
    bn = nn.BatchNorm2d(2, track_running_stats=False, affine=False).eval()
    assert bn.running_mean is None and not list(bn.parameters()) and "running_mean" not in bn.state_dict()
    x = RNG.standard_normal((3, 2, 2, 2)).astype(np.float32)
    m, v, _ = _stats(x)
    want = (x - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-5)
    np.testing.assert_allclose(bn(Tensor(x)).array, want, atol=1e-6)


def test_eval_batch_norm_gradients_use_running_statistics() -> None:
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    bn.running_mean.array, bn.running_var.array = np.array([1.0, 2.0, 3.0]), np.array([4.0, 1.0, 0.25])
    bn.weight.array = np.array([2.0, -1.0, 0.5])
    bn.eval()
    x = _t(4, 3)
    bn(x).sum().backward()
    np.testing.assert_allclose(x.grad.array, np.broadcast_to(bn.weight.array / np.sqrt(bn.running_var.array + 1e-5),
                                                            (4, 3)), atol=1e-12)
    np.testing.assert_allclose(bn.bias.grad.array, [4.0, 4.0, 4.0])


def test_layers_pass_the_harness() -> None:
    check_layer(nn.BatchNorm1d(3), (5, 3), (5, 3), 6, train_eval_differ=True)
    check_layer(nn.BatchNorm1d(3), (5, 3, 4), (5, 3, 4), 6, train_eval_differ=True)
    check_layer(nn.BatchNorm2d(4), (3, 4, 3, 3), (3, 4, 3, 3), 8, train_eval_differ=True)
    check_layer(nn.LayerNorm((3, 4)), (2, 3, 4), (2, 3, 4), 24)
    check_layer(nn.LayerNorm(4, elementwise_affine=False), (2, 4), (2, 4), 0)
    check_layer(nn.GroupNorm(2, 4), (2, 4, 3, 3), (2, 4, 3, 3), 8)


def test_state_dict_has_pytorch_keys() -> None:
    assert list(nn.BatchNorm2d(3).state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                                     "num_batches_tracked"]


@pytest.mark.parametrize("make, shape, match", [
    (lambda: nn.BatchNorm2d(3), (2, 3, 4), r"BatchNorm2d.*\(N, C, H, W\) with C=3"),
    (lambda: nn.BatchNorm1d(3), (2, 4), r"BatchNorm1d.*\(N, C\) or \(N, C, L\) with C=3"),
    (lambda: nn.BatchNorm1d(3), (1, 3), "more than 1 value per channel"),
    (lambda: nn.LayerNorm((3, 4)), (2, 4, 3), r"normalized_shape \(3, 4\) must equal the trailing dims"),
    (lambda: nn.GroupNorm(2, 4), (2, 3, 5), r"GroupNorm.*\(N, 4, \*\)"),
])
def test_bad_input_shapes_raise(make, shape, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()(Tensor(np.zeros(shape, np.float32)))


def test_bad_construction_and_dtypes_raise() -> None:
    with pytest.raises(ValueError, match="divisible by num_groups=3"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="momentum must be in"):
        nn.BatchNorm1d(3, momentum=1.5)
    with pytest.raises(TypeError, match="LayerNorm has float32 parameters but got a float64 input"):
        nn.LayerNorm(3)(Tensor(np.zeros((2, 3))))
    with pytest.raises(TypeError, match="floating-point input"):
        F.layer_norm(Tensor(np.zeros((2, 3), np.int64)), 3)
    with pytest.raises(ValueError, match="needs 3"):
        F.batch_norm(_t(2, 3), None, None, _t(4), None, training=True)


# ----- Dropout2d ---------------------------------------------------------------------------


def test_dropout2d_zeroes_whole_channels_and_scales_the_rest() -> None:
    x = np.ones((8, 16, 3, 3), np.float32)
    y = nn.Dropout2d(0.25, generator=Generator(0))(Tensor(x)).array
    per_channel = y.reshape(8, 16, 9)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # one value per channel
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert 0 < (per_channel[..., 0] == 0).mean() < 0.5
    assert y.dtype == np.float32


def test_dropout2d_gradient_uses_the_same_mask() -> None:
    x = _t(4, 5, 2, 2)
    y = F.dropout2d(x, 0.5, generator=Generator(1))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.array, y.array / x.array)


def test_dropout2d_is_off_in_eval_and_seedable() -> None:
    layer = nn.Dropout2d(0.5)
    x = Tensor(RNG.standard_normal((2, 6, 2, 2)).astype(np.float32))
    assert layer.eval()(x) is x
    a = F.dropout2d(x, 0.5, generator=Generator(3)).array
    b = F.dropout2d(x, 0.5, generator=Generator(3)).array
    np.testing.assert_array_equal(a, b)
    unbatched = F.dropout2d(x[0], 0.5, generator=Generator(3)).array  # (C, H, W)
    assert unbatched.shape == (6, 2, 2)
    check_layer(nn.Dropout2d(0.5, generator=Generator(0)), (2, 8, 3, 3), (2, 8, 3, 3), 0, train_eval_differ=True)


def test_dropout2d_errors() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) or \(C, H, W\)"):
        F.dropout2d(_t(2, 3))
    with pytest.raises(ValueError, match="Dropout2d: the drop probability"):
        nn.Dropout2d(1.0)
