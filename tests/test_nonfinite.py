"""Non-finite values stay local: resizing, adaptive pooling, convolution and normalization.

A NaN or an infinity may reach only the outputs that read it (as in PyTorch, whose answers are
compared where torch is installed); normalization of finite values too large to square gives the
right answer, never zeros. The registry-wide NaN property test is in tests/test_op_db.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet import nn
from nurinet.autograd.gradcheck import gradcheck, gradgradcheck
from nurinet.functional._im2col import (
    Geometry,
    conv2d_weight_grad,
    im2col,
    rows,
    weight_grad_over_real_pixels,
)
from nurinet.functional.pooling import _averaging_map
from nurinet.functional.upsample import _linear_map, _nearest_map


def _torch():
    return pytest.importorskip("torch")


def _image(value: float, position: tuple[int, int], shape=(1, 2, 4, 4), dtype=np.float32) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    x[(0, 0, *position)] = value
    return x


def _quiet(fn, *args, **kwargs):
    """``fn`` with NumPy's warnings about 0 * inf silenced (the NaN they announce is the result)."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


# ----- resizing and adaptive pooling -------------------------------------------------------------
def test_nearest_upsample_nan_reaches_its_four_copies_only() -> None:
    """The issue's case: one NaN pixel made 64 of 64 outputs NaN; PyTorch makes 4."""
    y = nn.Upsample(scale_factor=2, mode="nearest")(nt.tensor(_image(np.nan, (1, 2))))
    assert np.isnan(y.array).sum() == 4
    assert np.isnan(y.array[0, 0, 2:4, 4:6]).all()
    assert np.isfinite(y.array[0, 1]).all()  # the other channel


def test_nearest_upsample_inf_stays_inf() -> None:
    """One inf pixel made 60 NaNs; PyTorch makes none, and four infs."""
    y = F.interpolate(nt.tensor(_image(np.inf, (1, 2))), scale_factor=2, mode="nearest")
    assert np.isnan(y.array).sum() == 0
    assert np.isinf(y.array).sum() == 4


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_interpolate_nan_stays_in_its_neighbourhood(mode: str) -> None:
    x = np.zeros((1, 1, 8, 8), np.float32)
    x[0, 0, 3, 3] = np.nan
    y = _quiet(F.interpolate, nt.tensor(x), size=(16, 16), mode=mode).array[0, 0]
    rows, cols = np.nonzero(np.isnan(y))
    assert rows.size and rows.min() >= 4 and rows.max() <= 8 and cols.min() >= 4 and cols.max() <= 8


def test_adaptive_avg_pool_nan_stays_in_its_bin() -> None:
    x = _image(np.nan, (0, 3), shape=(1, 1, 6, 6))
    y = nn.AdaptiveAvgPool2d((3, 3))(nt.tensor(x)).array[0, 0]
    assert np.isnan(y).tolist() == [[False, True, False]] + [[False] * 3] * 2


def test_global_average_is_one_pass_and_local() -> None:
    x = _image(np.inf, (2, 2), shape=(2, 3, 7, 7))
    y = F.adaptive_avg_pool2d(nt.tensor(x), 1).array
    assert np.isinf(y[0, 0, 0, 0]) and np.isfinite(np.delete(y.ravel(), 0)).all()
    np.testing.assert_allclose(y[1], x[1].mean(axis=(1, 2), keepdims=True), rtol=1e-6)


RESIZES = [
    ("nearest", {"scale_factor": 2}),
    ("nearest", {"size": (3, 7)}),
    ("bilinear", {"scale_factor": 2}),
    ("bilinear", {"size": (5, 3)}),
    ("bilinear", {"size": (9, 9), "align_corners": True}),
    ("bilinear", {"size": (4, 8)}),  # an axis of unchanged size: PyTorch reads each pixel twice
]


@pytest.mark.torch
@pytest.mark.parametrize(("mode", "kwargs"), RESIZES)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("position", [(0, 0), (1, 2), (3, 3)])
def test_interpolate_non_finite_matches_torch(mode: str, kwargs: dict, value: float, position: tuple) -> None:
    torch = _torch()
    x = _image(value, position)
    ours = _quiet(F.interpolate, nt.tensor(x), mode=mode, **kwargs).array
    theirs = torch.nn.functional.interpolate(torch.from_numpy(x), mode=mode, **kwargs).numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
    finite = np.isfinite(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-5, atol=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize("size", [1, 2, (3, 2), (5, 7)])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_adaptive_avg_pool_non_finite_matches_torch(size, value: float) -> None:
    torch = _torch()
    x = _image(value, (4, 1), shape=(2, 3, 7, 6))
    ours = F.adaptive_avg_pool2d(nt.tensor(x), size).array
    theirs = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), size).numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
    finite = np.isfinite(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn", [
    lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"),
    lambda x: F.interpolate(x, size=(5, 3), mode="nearest"),
    lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
    lambda x: F.adaptive_avg_pool2d(x, 1),
])
def test_resampling_gradients_of_first_and_second_order(fn) -> None:
    x = nt.tensor(np.random.default_rng(1).standard_normal((2, 2, 4, 6)), requires_grad=True)
    assert gradcheck(fn, [x])
    assert gradgradcheck(fn, [x])


@pytest.mark.torch
def test_resampling_gradients_match_torch() -> None:
    torch = _torch()
    x = np.random.default_rng(2).standard_normal((2, 3, 5, 7))
    for ours_fn, theirs_fn in [
        (lambda t: F.interpolate(t, scale_factor=2, mode="bilinear"),
         lambda t: torch.nn.functional.interpolate(t, scale_factor=2, mode="bilinear")),
        (lambda t: F.adaptive_avg_pool2d(t, (3, 4)), lambda t: torch.nn.functional.adaptive_avg_pool2d(t, (3, 4))),
    ]:
        ours = nt.tensor(x, requires_grad=True)
        theirs = torch.tensor(x, requires_grad=True)
        out = ours_fn(ours)
        g = np.random.default_rng(3).standard_normal(out.shape)
        out.backward(nt.tensor(g))
        theirs_fn(theirs).backward(torch.from_numpy(g))
        np.testing.assert_allclose(ours.grad.array, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


# ----- convolution -------------------------------------------------------------------------------
CONVS = [  # (in_channels, input needs a gradient): the native direct kernel, then the GEMM paths
    (1, False),
    (3, True),
    (8, True),
]


@pytest.mark.parametrize(("channels", "x_grad"), CONVS)
@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_inf_input_gives_inf_weight_gradient_not_nan(channels: int, x_grad: bool, stride: int) -> None:
    """An infinite pixel made NaN weight gradients: the stride-1 path's junk columns multiplied it by 0."""
    x = np.random.default_rng(4).standard_normal((2, channels, 6, 6)).astype(np.float32)
    x[0, 0, 0, 0] = np.inf  # at the corner: the taps that read it are those of its first windows
    inputs = nt.tensor(x, requires_grad=x_grad)
    conv = nn.Conv2d(channels, 2, 3, stride=stride, padding=1)
    y = _quiet(conv, inputs)
    _quiet(y.sum().backward)
    gw = conv.weight.grad.array
    taps = [1 - stride * r for r in (0, 1) if 1 - stride * r >= 0]  # tap i of output r reads s*r - 1 + i
    reads_the_pixel = np.zeros(gw.shape, bool)
    reads_the_pixel[:, 0, min(taps) : max(taps) + 1, min(taps) : max(taps) + 1] = True
    np.testing.assert_array_equal(np.isinf(gw), reads_the_pixel)
    assert not np.isnan(gw).any()


@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_padding_does_not_turn_an_infinite_gradient_into_nan(groups: int) -> None:
    """The padded zeros times an inf upstream gradient made NaN; only real pixels may meet it."""
    x = nt.tensor(np.random.default_rng(5).standard_normal((2, 4, 5, 5)), requires_grad=True)
    w = nt.tensor(np.random.default_rng(6).standard_normal((4, 4 // groups, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, padding=1, groups=groups)
    g = np.ones(y.shape)
    g[0, 0, 0, 0] = np.inf
    _quiet(y.backward, nt.tensor(g))
    assert not np.isnan(w.grad.array).any()
    assert np.isinf(w.grad.array[0, :, 1:, 1:]).all()  # output (0, 0) reads real pixels there only


@pytest.mark.torch
@pytest.mark.parametrize("where", ["x", "gy"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("channels", [1, 3])
def test_conv2d_non_finite_gradients_match_torch(where: str, stride: int, channels: int) -> None:
    torch = _torch()
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, channels, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, channels, 3, 3)).astype(np.float32)
    if where == "x":
        x[0, 0, 0, 5] = np.inf
    ours_x, ours_w = nt.tensor(x, requires_grad=True), nt.tensor(w, requires_grad=True)
    theirs_x, theirs_w = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    y = _quiet(F.conv2d, ours_x, ours_w, stride=stride, padding=1)
    g = rng.standard_normal(y.shape).astype(np.float32)
    if where == "gy":
        g[1, 2, 0, 0] = -np.inf
    _quiet(y.backward, nt.tensor(g))
    torch.nn.functional.conv2d(theirs_x, theirs_w, stride=stride, padding=1).backward(torch.from_numpy(g))
    for ours, theirs in [(ours_w.grad.array, theirs_w.grad.numpy()), (ours_x.grad.array, theirs_x.grad.numpy())]:
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))


# ----- layer and group normalization ---------------------------------------------------------------
def _standardized(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    x = x.astype(np.float64)
    return (x - x.mean(axis=axes, keepdims=True)) / x.std(axis=axes, keepdims=True)


@pytest.mark.parametrize("scale", [1e20, 1e30, 3e37])
def test_layer_norm_of_huge_finite_values_is_right_not_zero(scale: float) -> None:
    """(1e20)^2 overflows float32: the variance was inf, rstd 0 and the output all zeros."""
    x = (np.random.default_rng(8).standard_normal((3, 8)) * scale).astype(np.float32)
    y = nn.LayerNorm(8)(nt.tensor(x)).array
    np.testing.assert_allclose(y, _standardized(x, (1,)), rtol=1e-4, atol=1e-5)


def test_group_norm_of_huge_finite_values_is_right_not_zero() -> None:
    x = (np.random.default_rng(9).standard_normal((2, 4, 3, 3)) * 1e20).astype(np.float32)
    x[1] /= 1e20  # an ordinary sample beside it keeps its ordinary answer
    y = nn.GroupNorm(2, 4)(nt.tensor(x)).array
    want = _standardized(x.reshape(2, 2, -1), (2,)).reshape(x.shape)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_batch_norm_shares_the_fix() -> None:
    x = (np.random.default_rng(10).standard_normal((6, 3)) * 1e20).astype(np.float32)
    y = F.batch_norm(nt.tensor(x), None, None, training=True).array
    np.testing.assert_allclose(y, _standardized(x, (0,)), rtol=1e-4, atol=1e-5)


def test_normalization_of_inf_or_nan_gives_nan_as_torch() -> None:
    x = np.array([[1.0, np.inf, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]], np.float32)
    y = _quiet(F.layer_norm, nt.tensor(x), 4).array
    assert np.isnan(y[0]).all()
    np.testing.assert_allclose(y[1], _standardized(x[1:], (1,))[0], rtol=1e-5)


def _layer_norm_grads(data: np.ndarray, w: np.ndarray, b: np.ndarray, g: np.ndarray, eps: float) -> list:
    """The output and the gradients of layer_norm, by the array fast path and by the Tensor backward."""
    x = nt.tensor(data, requires_grad=True)
    weight, bias = nt.tensor(w, requires_grad=True), nt.tensor(b, requires_grad=True)
    y = F.layer_norm(x, data.shape[-1], weight, bias, eps=eps)
    fast = nt.grad(y, [x, weight, bias], nt.tensor(g), retain_graph=True)
    slow = nt.grad(y, [x, weight, bias], nt.tensor(g), create_graph=True)
    return [y.array, *(t.array for t in fast), *(t.array for t in slow)]


def test_layer_norm_gradients_on_the_scaled_path() -> None:
    """float64 squares overflow near 1e160: the gradients must be those of x / c (d/dx divided by c).

    eps is added to the variance, so layer_norm(c u, eps) is layer_norm(u, eps / c**2): eps 0 for u.
    """
    rng = np.random.default_rng(11)
    u, w, b, g = (rng.standard_normal(s) for s in ((2, 5), (5,), (5,), (2, 5)))
    c = 1e200
    small = _layer_norm_grads(u, w, b, g, eps=0.0)
    huge = _layer_norm_grads(u * c, w, b, g, eps=1e-5)
    rescale = [1.0, c, 1.0, 1.0, c, 1.0, 1.0]  # y, then (x, weight, bias) by each path
    for a, z, factor in zip(small, huge, rescale):
        np.testing.assert_allclose(z * factor, a, rtol=1e-9, atol=1e-12)


def test_layer_norm_second_order_on_the_scaled_path() -> None:
    c = 1e155  # (1e155)**2 overflows float64; the Hessian, about 1 / c**2, is still representable
    u = np.random.default_rng(12).standard_normal((2, 4))
    hessians = []
    for data, eps, factor in ((u, 0.0, 1.0), (u * c, 1e-5, c)):
        x = nt.tensor(data, requires_grad=True)
        y = F.layer_norm(x, 4, eps=eps)
        (g,) = nt.grad((y * y * y).sum(), x, create_graph=True)
        (h,) = nt.grad(g.sum(), x)
        hessians.append(h.array * factor * factor)
    np.testing.assert_allclose(hessians[1], hessians[0], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("mapping", [
    _linear_map(5, 11, None, False), _linear_map(9, 4, None, True), _linear_map(6, 6, 1.5, False),
    _linear_map(4, 8, 2.0, False), _nearest_map(5, 9, None, True), _nearest_map(7, 3, None, False),
    _averaging_map(7, 3), _averaging_map(8, 4), _averaging_map(3, 5),
], ids=lambda m: f"{m.n_in}to{m.n_out}")
@pytest.mark.parametrize("transposed", [False, True])
def test_gathers_compute_the_dense_matrix(mapping, transposed: bool) -> None:
    """The gather path (taken whenever an input is not finite) against the map's own dense matrix."""
    mapping = mapping.transposed if transposed else mapping
    x = np.random.default_rng(13).standard_normal((2, mapping.n_in, 3))
    want = np.einsum("oi,nic->noc", mapping.matrix, x)
    np.testing.assert_allclose(mapping.apply_gathered(x, 1), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mapping.apply(x, 1), want, rtol=1e-12, atol=1e-12)


def test_gradients_through_the_gather_path() -> None:
    """gradcheck sees finite inputs only, which take the GEMM: here every map takes the gathers."""
    x = nt.tensor(np.random.default_rng(14).standard_normal((2, 2, 5, 6)), requires_grad=True)
    fns = [lambda t: F.interpolate(t, size=(7, 4), mode="bilinear"), lambda t: F.adaptive_avg_pool2d(t, (3, 4))]
    maps = [_linear_map(5, 7, None, False), _linear_map(6, 4, None, False), _averaging_map(5, 3),
            _averaging_map(6, 4)]
    saved = [(m, m.dense_when_finite, m.transposed.dense_when_finite) for m in maps]
    try:
        for m in maps:
            m.dense_when_finite = m.transposed.dense_when_finite = False
        for fn in fns:
            assert gradcheck(fn, [x])
            assert gradgradcheck(fn, [x])
    finally:
        for m, forward, backward in saved:
            m.dense_when_finite, m.transposed.dense_when_finite = forward, backward


GEOMETRIES = [  # (stride, padding, dilation, groups), padding as ((top, bottom), (left, right))
    ((1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((2, 1), ((1, 0), (0, 2)), (1, 2), 2),
    ((1, 2), ((0, 1), (1, 1)), (2, 1), 1),  # padding="same" with an even kernel is uneven like this
    ((2, 2), ((2, -1), (1, -1)), (1, 1), 2),  # a transposed conv's output_padding: negative padding
]


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"), GEOMETRIES)
def test_weight_gradient_over_real_pixels_is_the_weight_gradient(stride, padding, dilation, groups) -> None:
    """The slow recount of a non-finite weight gradient, against im2col + GEMM on finite values."""
    rng = np.random.default_rng(15)
    geom = Geometry(stride, padding, dilation, groups)
    x = rng.standard_normal((2, 4, 7, 6))
    w_shape = (6, 4 // groups, 3, 2)
    cols, (ho, wo) = im2col(x, w_shape[2:], geom)
    gy = rng.standard_normal((2, 6, ho, wo))
    want = conv2d_weight_grad(rows(gy), cols, w_shape, groups)
    np.testing.assert_allclose(weight_grad_over_real_pixels(x, gy, w_shape, geom), want, rtol=1e-12, atol=1e-12)
