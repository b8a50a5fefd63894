"""Pooling and resizing: tie-breaking, indices, shapes, layers and errors.

Values and gradients against NumPy references are in the registry (tests/op_db.py),
against PyTorch in tests/test_conv_torch.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor, nn
from tests.nn.harness import check_layer


def _grad(fn, x: np.ndarray) -> np.ndarray:
    t = Tensor(x, requires_grad=True)
    fn(t).sum().backward()
    return t.grad.array


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
    np.testing.assert_array_equal(gx.array, g)


def test_max_pool_return_indices() -> None:
    x = np.arange(20.0).reshape(1, 1, 4, 5)[:, :, ::-1].copy()  # rows reversed: maxima top right of windows
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert idx.dtype == np.int64 and idx.shape == y.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(idx.array[0, 0], [[1, 3], [11, 13]])
    np.testing.assert_array_equal(y.array.ravel(), x.ravel()[idx.array.ravel()])
    y1, idx1 = F.max_pool1d(np.array([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), 2, return_indices=True)
    np.testing.assert_array_equal(idx1.array, [[[1, 3]]])
    np.testing.assert_array_equal(y1.array, [[[3.0, 5.0]]])


def test_adaptive_max_pool_indices_point_at_the_maxima() -> None:
    x = np.random.default_rng(0).permutation(42).reshape(1, 1, 6, 7).astype(np.float64)
    y, idx = F.adaptive_max_pool2d(x, (4, 3), return_indices=True)
    np.testing.assert_array_equal(y.array.ravel(), x.ravel()[idx.array.ravel()])


def test_adaptive_avg_pool_with_divisible_size_is_avg_pool() -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 8))
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, (3, 4)).array, F.avg_pool2d(x, 2).array, atol=1e-14)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, (None, 2)).array, F.avg_pool2d(x, (1, 4)).array,
                               atol=1e-14)


def test_global_pooling() -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5)).astype(np.float32)
    avg, mx = F.global_avg_pool2d(x), F.global_max_pool2d(x, keepdims=True)
    assert avg.shape == (2, 3) and mx.shape == (2, 3, 1, 1) and avg.dtype == np.float32
    np.testing.assert_allclose(avg.array, x.mean(axis=(2, 3)), rtol=1e-6)
    np.testing.assert_array_equal(mx.array[..., 0, 0], x.max(axis=(2, 3)))


def test_interpolate_nearest_by_two_repeats_pixels() -> None:
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    y = F.interpolate(x, scale_factor=2)
    np.testing.assert_array_equal(y.array[0, 0], np.repeat(np.repeat(x[0, 0], 2, 0), 2, 1))


def test_interpolate_bilinear_align_corners_keeps_corners() -> None:
    x = np.random.default_rng(3).standard_normal((1, 2, 3, 4))
    y = F.interpolate(x, size=(5, 10), mode="bilinear", align_corners=True).array
    np.testing.assert_allclose(y[..., ::2, ::3], x, atol=1e-14)


def test_interpolate_is_twice_differentiable() -> None:
    from nurinet.autograd.gradcheck import gradgradcheck

    x = Tensor(np.random.default_rng(4).standard_normal((1, 2, 3, 4)), requires_grad=True)
    assert gradgradcheck(lambda t: F.interpolate(t, scale_factor=1.5, mode="bilinear") ** 2, [x])


# ----- degenerate windows: dilated taps that step over the whole input -----
# A window with kernel 2, padding 1 and dilation size + 1 on an axis has one tap in each padding,
# so every output is -inf. PyTorch reports the index where its search starts (the first tap at or
# after 0, here past the end) and, on CPU, its backward writes out of bounds; ours passes no gradient.

def _both_grads(fn, x: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The array backward and the Tensor backward (create_graph) of ``fn`` at ``x`` for upstream ``gy``."""
    t = Tensor(x, requires_grad=True)
    (g,) = nurinet.grad([fn(t)], [t], [Tensor(gy)])
    (g2,) = nurinet.grad([fn(t)], [t], [Tensor(gy)], create_graph=True)
    return g.array, g2.array


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pool1d_window_in_the_padding_is_minus_inf_with_zero_gradient(ceil_mode) -> None:
    x = np.arange(6.0).reshape(2, 3, 1)
    pool = lambda t: F.max_pool1d(t, 2, stride=2, padding=1, dilation=2, ceil_mode=ceil_mode)
    y, idx = F.max_pool1d(x, 2, stride=2, padding=1, dilation=2, ceil_mode=ceil_mode, return_indices=True)
    assert y.shape == idx.shape == (2, 3, 1) and np.all(y.array == -np.inf)
    np.testing.assert_array_equal(idx.array, 1)  # taps at -1 and 1: the search starts at 1, past the end
    for g in _both_grads(pool, x, np.ones((2, 3, 1))):
        np.testing.assert_array_equal(g, np.zeros_like(x))
    layer = nn.MaxPool1d(2, stride=2, padding=1, dilation=2, ceil_mode=ceil_mode)
    np.testing.assert_array_equal(layer(Tensor(x)).array, y.array)


def test_max_pool2d_rows_in_the_padding_give_minus_inf_and_no_gradient() -> None:
    x = np.arange(8.0).reshape(1, 2, 1, 4)  # rows: taps at -1 and 1 of a height-1 input
    pool = lambda t: F.max_pool2d(t, 2, stride=1, padding=1, dilation=(2, 1))
    y, idx = F.max_pool2d(x, 2, stride=1, padding=1, dilation=(2, 1), return_indices=True)
    assert y.shape == (1, 2, 1, 5) and np.all(y.array == -np.inf)
    # Row 1 (past the input) times width 4, plus the first column at or after 0 of each window.
    np.testing.assert_array_equal(idx.array[0, :, 0], [[4, 4, 5, 6, 7]] * 2)
    gy = np.random.default_rng(0).standard_normal(y.shape)
    for g in _both_grads(pool, x, gy):
        np.testing.assert_array_equal(g, np.zeros_like(x))


def test_max_pool_minus_inf_inputs_beside_padding_take_the_first_input_element() -> None:
    # Window 0 of channel 1 holds only -inf (a padded slot and x[0]): as in PyTorch its index is x[0],
    # not the padded slot, so its gradient lands there and not in channel 0's last element.
    x = np.array([[[1.0, 2.0, 3.0], [-np.inf, -np.inf, 2.0]]])
    y, idx = F.max_pool1d(x, 2, stride=2, padding=1, return_indices=True)
    np.testing.assert_array_equal(y.array, [[[1.0, 3.0], [-np.inf, 2.0]]])
    np.testing.assert_array_equal(idx.array, [[[0, 2], [0, 2]]])
    gy = np.array([[[3.0, 5.0], [7.0, 11.0]]])
    for g in _both_grads(lambda t: F.max_pool1d(t, 2, stride=2, padding=1), x, gy):
        np.testing.assert_array_equal(g, [[[3.0, 0.0, 5.0], [7.0, 0.0, 11.0]]])


def test_pooling_padding_errors_name_the_op_and_the_bound() -> None:
    with pytest.raises(ValueError, match=r"max_pool1d: padding 2 must be at most half the kernel size 2, "
                                         r"i\.e\. at most 1 \(.*dilation 3 does not raise the bound\); "
                                         "lower the padding or enlarge the kernel"):
        F.max_pool1d(np.zeros((1, 1, 1)), 2, dilation=3, padding=2)  # the dilated window spans 4
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(0, 2\) .* kernel size \(3, 3\), "
                                         r"i\.e\. at most \(1, 1\) .*dilation \(1, 2\)"):
        nn.MaxPool2d(3, padding=(0, 2), dilation=(1, 2))(Tensor(np.zeros((1, 1, 5, 5))))
    with pytest.raises(ValueError, match=r"avg_pool1d: padding 2 must be at most half the kernel size 3, "
                                         r"i\.e\. at most 1 \(kernel_size // 2, as in PyTorch\);"):
        F.avg_pool1d(np.zeros((1, 1, 4)), 3, padding=2)


@pytest.mark.parametrize(("count_include_pad", "want"), [(True, [1.0, 3.0, 2.0]), (False, [1.5, 3.0, 4.0])])
def test_avg_pool_ceil_window_clipped_at_the_right_padding(count_include_pad, want) -> None:
    # Windows [-1, 2), [1, 4), [3, 6): the last is cut at the padded end 5, so it divides by 2 (x[3]
    # and one padded zero) or, without the padding, by 1.
    y = F.avg_pool1d(np.array([[[1.0, 2.0, 3.0, 4.0]]]), 3, 2, 1, ceil_mode=True,
                     count_include_pad=count_include_pad)
    np.testing.assert_allclose(y.array[0, 0], want, rtol=1e-15)


# Kernel, stride, padding, dilation, ceil_mode of max pooling windows at the edges: all in the padding
# (dilation = size + 1 on a unit axis), ceil_mode's last window starting inside, -inf beside padding.
_EDGE_MAX_POOL2D = [
    ((2, 2), (1, 1), (1, 1), (2, 1), False, (1, 4)),
    ((2, 2), (2, 1), (1, 0), (3, 1), True, (2, 5)),
    ((2, 3), (1, 2), (1, 1), (1, 2), True, (4, 5)),
    ((2, 2), (3, 2), (1, 1), (2, 3), True, (5, 4)),
    ((3, 2), (2, 2), (1, 1), (2, 2), True, (6, 5)),
]


def _torch_max_pool_grad(torch, x, kernel, stride, padding, dilation, gy) -> np.ndarray:
    """PyTorch's gradient with the padding written out as -inf: windows in it route into the cropped
    border instead of out of bounds (as PyTorch's CPU backward does with implicit padding)."""
    pads = []
    for n, k, s, p, d, o in reversed(list(zip(x.shape[2:], kernel, stride, padding, dilation, gy.shape[2:]))):
        pads += [p, max(p, (o - 1) * s + d * (k - 1) + 1 - n - p)]
    t = torch.tensor(x, requires_grad=True)
    padded = torch.nn.functional.pad(t, pads, value=-np.inf)
    y = torch.nn.functional.max_pool2d(padded, kernel, stride, 0, dilation)
    y[..., : gy.shape[2], : gy.shape[3]].backward(torch.tensor(gy))
    return t.grad.numpy()


@pytest.mark.torch
@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation", "ceil_mode", "hw"), _EDGE_MAX_POOL2D)
def test_max_pool2d_edge_windows_match_torch(kernel, stride, padding, dilation, ceil_mode, hw) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = rng.permutation(2 * 3 * hw[0] * hw[1]).reshape(2, 3, *hw) * 0.5
    x[0, 0, 0, 0] = -np.inf  # a -inf input next to the padding
    args = (kernel, stride, padding, dilation, ceil_mode)
    y, idx = F.max_pool2d(x, *args, return_indices=True)
    ty, t_idx = torch.nn.functional.max_pool2d(torch.tensor(x), *args, return_indices=True)
    np.testing.assert_array_equal(y.array, ty.numpy())
    np.testing.assert_array_equal(idx.array, t_idx.numpy())
    x[0, 0, 0, 0] = -1.0  # a finite input keeps the explicit-padding reference exact
    gy = rng.standard_normal(y.shape)
    want = _torch_max_pool_grad(torch, x, kernel, stride, padding, dilation, gy)
    for g in _both_grads(lambda t: F.max_pool2d(t, *args), x, gy):
        np.testing.assert_array_equal(g, want)


@pytest.mark.torch
@pytest.mark.parametrize(("size", "ceil_mode"), [(1, False), (2, True), (3, False)])
def test_max_pool1d_window_in_the_padding_matches_torch(size, ceil_mode) -> None:
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(size).standard_normal((2, 3, size))
    args = (2, 2, 1, size + 1, ceil_mode)  # taps at -1 and size: both in the padding
    y, idx = F.max_pool1d(x, *args, return_indices=True)
    ty, t_idx = torch.nn.functional.max_pool1d(torch.tensor(x), *args, return_indices=True)
    np.testing.assert_array_equal(y.array, ty.numpy())
    np.testing.assert_array_equal(idx.array, t_idx.numpy())


@pytest.mark.torch
@pytest.mark.parametrize("op", ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d"])
def test_pooling_raises_where_torch_does(op) -> None:
    torch = pytest.importorskip("torch")
    two_d, is_max = op.endswith("2d"), op.startswith("max")
    for kernel, padding, dilation, size in itertools.product(range(1, 5), range(4), (1, 2, 3), (1, 3, 6)):
        if dilation > 1 and not is_max:
            continue
        x = np.zeros((1, 1, size, size) if two_d else (1, 1, size))
        kwargs = {"kernel_size": kernel, "padding": padding, "ceil_mode": True}
        if is_max:
            kwargs["dilation"] = dilation
        try:
            getattr(torch.nn.functional, op)(torch.tensor(x), **kwargs)
            torch_raises = False
        except RuntimeError:
            torch_raises = True
        try:
            getattr(F, op)(x, **kwargs)
            ours_raises = False
        except ValueError:
            ours_raises = True
        assert ours_raises == torch_raises, kwargs | {"size": size}


@pytest.mark.torch
@pytest.mark.parametrize(("kernel", "stride", "padding", "size"), [
    (3, 2, 1, 4), (2, 2, 1, 5), (3, 3, 1, 7), (4, 3, 2, 5), (2, 3, 0, 4), (5, 2, 2, 6),
])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_ceil_and_padding_edges_match_torch(kernel, stride, padding, size, count_include_pad) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(size)
    for two_d in (False, True):
        x = rng.standard_normal((2, 3, size, size - 1) if two_d else (2, 3, size))
        ours, theirs = (F.avg_pool2d, torch.nn.functional.avg_pool2d) if two_d else \
            (F.avg_pool1d, torch.nn.functional.avg_pool1d)
        args = (kernel, stride, padding, True, count_include_pad)
        t = torch.tensor(x, requires_grad=True)
        ty = theirs(t, *args)
        gy = rng.standard_normal(tuple(ty.shape))
        ty.backward(torch.tensor(gy))
        np.testing.assert_allclose(ours(x, *args).array, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        for g in _both_grads(lambda a, o=ours, w=args: o(a, *w), x, gy):
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12, atol=1e-12)


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


def test_overlapping_max_pool_propagates_nan_from_its_first_position():
    # A NaN anywhere in a window makes that window's maximum NaN (never silently skipped), and its
    # gradient goes to the window's first NaN, as on the disjoint-window path.
    x = nurinet.tensor(np.array([[[2.0, np.nan, 3.0, 1.0, np.nan, np.nan]]]), requires_grad=True)
    y, idx = F.max_pool1d(x, 3, stride=1, return_indices=True)
    assert np.isnan(y.numpy()).all()
    np.testing.assert_array_equal(idx.numpy(), [[[1, 1, 4, 4]]])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[0.0, 2.0, 0.0, 0.0, 2.0, 0.0]]])
    finite = F.max_pool1d(nurinet.tensor(np.array([[[2.0, 5.0, 3.0, 1.0]]])), 3, stride=1)
    np.testing.assert_array_equal(finite.numpy(), [[[5.0, 5.0]]])
