"""Pooling and resizing: tie-breaking, indices, shapes, layers and errors.

Values and gradients against NumPy references are in the registry (tests/op_db.py),
against PyTorch in tests/test_conv_torch.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor, nn
from tests.nn.harness import check_layer


def _grad(fn, x: np.ndarray) -> np.ndarray:
    t = Tensor(x, requires_grad=True)
    fn(t).sum().backward()
    return t.grad.data


def test_max_pool_ties_route_the_gradient_to_the_first_maximum() -> None:
    g = _grad(lambda t: F.max_pool2d(t, 2), np.ones((1, 1, 4, 4)))
    want = np.zeros((4, 4))
    want[::2, ::2] = 1.0
    np.testing.assert_array_equal(g[0, 0], want)


def test_overlapping_max_pool_accumulates_into_a_shared_maximum() -> None:
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0  # the maximum of all four 2x2 windows (stride 1)
    g = _grad(lambda t: F.max_pool2d(t, 2, stride=1), x)
    assert g[0, 0, 1, 1] == 4.0 and g.sum() == 4.0
    # The Tensor backward (used for higher-order gradients) agrees with the array fast path.
    t = Tensor(x, requires_grad=True)
    (gx,) = nurinet.grad([F.max_pool2d(t, 2, stride=1).sum()], [t], create_graph=True)
    np.testing.assert_array_equal(gx.data, g)


def test_max_pool_return_indices() -> None:
    x = np.arange(20.0).reshape(1, 1, 4, 5)[:, :, ::-1].copy()  # rows reversed: maxima top right of windows
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert idx.dtype == np.int64 and idx.shape == y.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(idx.data[0, 0], [[1, 3], [11, 13]])
    np.testing.assert_array_equal(y.data.ravel(), x.ravel()[idx.data.ravel()])
    y1, idx1 = F.max_pool1d(np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), 2, return_indices=True)
    np.testing.assert_array_equal(idx1.data, [[[1, 3]]])
    np.testing.assert_array_equal(y1.data, [[[3.0, 5.0]]])


def test_adaptive_max_pool_indices_point_at_the_maxima() -> None:
    x = np.random.default_rng(0).permutation(42).reshape(1, 1, 6, 7).astype(np.float64)
    y, idx = F.adaptive_max_pool2d(x, (4, 3), return_indices=True)
    np.testing.assert_array_equal(y.data.ravel(), x.ravel()[idx.data.ravel()])


def test_adaptive_avg_pool_with_divisible_size_is_avg_pool() -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 8))
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, (3, 4)).data, F.avg_pool2d(x, 2).data, atol=1e-14)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, (None, 2)).data, F.avg_pool2d(x, (1, 4)).data,
                               atol=1e-14)


def test_global_pooling() -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5)).astype(np.float32)
    avg, mx = F.global_avg_pool2d(x), F.global_max_pool2d(x, keepdims=True)
    assert avg.shape == (2, 3) and mx.shape == (2, 3, 1, 1) and avg.dtype == np.float32
    np.testing.assert_allclose(avg.data, x.mean(axis=(2, 3)), rtol=1e-6)
    np.testing.assert_array_equal(mx.data[..., 0, 0], x.max(axis=(2, 3)))


def test_interpolate_nearest_by_two_repeats_pixels() -> None:
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    y = F.interpolate(x, scale_factor=2)
    np.testing.assert_array_equal(y.data[0, 0], np.repeat(np.repeat(x[0, 0], 2, 0), 2, 1))


def test_interpolate_bilinear_align_corners_keeps_corners() -> None:
    x = np.random.default_rng(3).standard_normal((1, 2, 3, 4))
    y = F.interpolate(x, size=(5, 10), mode="bilinear", align_corners=True).data
    np.testing.assert_allclose(y[..., ::2, ::3], x, atol=1e-14)


def test_interpolate_is_twice_differentiable() -> None:
    from nurinet.autograd.gradcheck import gradgradcheck

    x = Tensor(np.random.default_rng(4).standard_normal((1, 2, 3, 4)), requires_grad=True)
    assert gradgradcheck(lambda t: F.interpolate(t, scale_factor=1.5, mode="bilinear") ** 2, [x])


# ----- layers -----

@pytest.mark.parametrize(("layer", "shape", "out"), [
    (nn.MaxPool2d(2), (2, 3, 6, 7), (2, 3, 3, 3)),
    (nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 6, 7), (2, 3, 4, 4)),
    (nn.MaxPool1d(3, stride=2, dilation=2), (2, 3, 9), (2, 3, 3)),
    (nn.AvgPool2d((2, 3), padding=(1, 1), count_include_pad=False), (2, 3, 6, 7), (2, 3, 4, 3)),
    (nn.AvgPool1d(2), (2, 3, 9), (2, 3, 4)),
    (nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5), (2, 3, 3, 2)),
    (nn.AdaptiveMaxPool2d(2), (2, 3, 7, 5), (2, 3, 2, 2)),
    (nn.GlobalAvgPool2d(), (2, 3, 4, 5), (2, 3)),
    (nn.GlobalMaxPool2d(keepdims=True), (2, 3, 4, 5), (2, 3, 1, 1)),
    (nn.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 4, 5), (2, 3, 8, 10)),
    (nn.Upsample(size=7), (2, 3, 4), (2, 3, 7)),
])
def test_pooling_layer_harness(layer, shape, out) -> None:
    check_layer(layer, shape, out, 0)


def test_layers_in_a_small_cnn_train() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    check_layer(model, (3, 1, 8, 8), (3, 2), 1 * 4 * 9 + 4 + 4 * 4 * 9 + 4 + 4 * 2 + 2)


def test_max_pool_layer_with_indices_returns_a_pair() -> None:
    y, idx = nn.MaxPool2d(2, return_indices=True)(Tensor(np.ones((1, 1, 4, 4), np.float32)))
    assert y.shape == idx.shape == (1, 1, 2, 2)


# ----- errors -----

def test_pooling_errors() -> None:
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"max_pool2d: expected a 4-D input \(N, C, H, W\), got shape \(2, 4, 4\)"):
        F.max_pool2d(x[0], 2)
    with pytest.raises(ValueError, match=r"avg_pool1d: expected a 3-D input \(N, C, L\)"):
        nn.AvgPool1d(2)(Tensor(x))
    with pytest.raises(ValueError, match=r"padding \(2, 2\) must be at most half the kernel size \(3, 3\)"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"spatial size \(4, 4\) is smaller than the kernel \(5, 5\)"):
        F.avg_pool2d(x, 5)
    with pytest.raises(ValueError, match="kernel_size must be an int >= 1"):
        F.max_pool2d(x, 0)
    with pytest.raises(ValueError, match="output_size must be an int >= 1"):
        F.adaptive_avg_pool2d(x, (0, 2))


def test_interpolate_errors() -> None:
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match=r"mode 'linear' is not available for a 4-D input"):
        F.interpolate(x, size=3, mode="linear")
    with pytest.raises(ValueError, match="align_corners only applies to the linear modes"):
        F.interpolate(x, size=3, align_corners=True)
    with pytest.raises(ValueError, match=r"expected a 3-D \(N, C, L\) or 4-D"):
        F.interpolate(np.zeros((4, 4)), size=3)
    with pytest.raises(ValueError, match="scale_factor 0.1 makes input"):
        F.interpolate(x, scale_factor=0.1)
