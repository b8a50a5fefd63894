"""Convolution, pooling and interpolation against PyTorch: values and input/weight/bias gradients (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor, nn
from tests.test_conv import _arrays, _conv2d_config

torch = pytest.importorskip("torch")
TF = torch.nn.functional
pytestmark = pytest.mark.torch


def _compare(ours, theirs, arrays: list[np.ndarray], seed: int = 0, distinct: bool = False) -> None:
    """Same outputs and gradients of every input, for one random upstream gradient."""
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    t_inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = ours(*inputs), theirs(*t_inputs)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.array, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    upstream = np.random.default_rng(seed).standard_normal(y.shape)
    grads = nurinet.grad([y], inputs, [Tensor(upstream)])
    t_grads = torch.autograd.grad([ty], t_inputs, [torch.tensor(upstream)])
    for i, (g, tg) in enumerate(zip(grads, t_grads)):
        np.testing.assert_allclose(g.array, tg.numpy(), rtol=1e-10, atol=1e-10, err_msg=f"gradient of input {i}")


def _distinct(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Distinct values (no ties: the max-pool gradient is then unambiguous)."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 0.37 - n * 0.1


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("seed", range(12))
def test_conv2d(seed: int) -> None:
    cfg = _conv2d_config(seed + 500)
    args = {key: cfg[key] for key in ("stride", "padding", "dilation", "groups")}
    _compare(lambda *t: F.conv2d(*t, **args), lambda *t: TF.conv2d(*t, **args), _arrays(cfg, seed), seed)


def _wide_config(seed: int) -> tuple[list[np.ndarray], dict, dict]:
    """Arrays and arguments of a conv2d and of the conv1d along its last axis, over a wider range than
    :func:`tests.test_conv._conv2d_config`: sizes from 1 pixel, kernels up to 5, stride and dilation up to
    3, up to 4 groups (depthwise when each group has one input channel), every kind of padding."""
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 5))
    cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k, stride, dilation = (tuple(int(v) for v in rng.integers(1, hi, 2)) for hi in (6, 4, 4))
    kind = rng.integers(0, 4)
    if kind == 0:
        stride, padding = (1, 1), "same"
    else:
        padding = ("valid", int(rng.integers(0, 4)), tuple(int(v) for v in rng.integers(0, 4, 2)))[kind - 1]
    pads = (0, 0) if isinstance(padding, str) else (padding, padding) if isinstance(padding, int) else padding
    hw = [int(max(rng.integers(1, 12), d * (kk - 1) + 1 - 2 * p)) for d, kk, p in zip(dilation, k, pads)]
    arrays = [rng.standard_normal((int(rng.integers(1, 3)), cin, *hw)), rng.standard_normal((cout, cin // groups, *k)),
              rng.standard_normal(cout)]
    args2 = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    args1 = {"stride": stride[1], "padding": padding if isinstance(padding, str) else pads[1],
             "dilation": dilation[1], "groups": groups}
    return arrays, args2, args1


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("seed", range(40))
def test_conv2d_and_conv1d_wide_random_configurations(seed: int) -> None:
    arrays, args2, args1 = _wide_config(seed)
    bias = arrays[2:] if seed % 2 else []
    _compare(lambda *t: F.conv2d(*t, **args2), lambda *t: TF.conv2d(*t, **args2), arrays[:2] + bias, seed)
    x, w = arrays[0][:, :, 0], arrays[1][:, :, 0]
    if args1["dilation"] * (w.shape[2] - 1) + 1 <= x.shape[2] + 2 * (0 if isinstance(args1["padding"], str)
                                                                       else args1["padding"]):
        _compare(lambda *t: F.conv1d(*t, **args1), lambda *t: TF.conv1d(*t, **args1), [x, w] + bias, seed)


@pytest.mark.parametrize("seed", range(8))
def test_conv_transpose2d(seed: int) -> None:
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 3))
    k = tuple(int(v) for v in rng.integers(1, 4, 2))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
    padding = tuple(int(rng.integers(0, kk)) for kk in k)
    extra = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    x = rng.standard_normal((2, 2 * groups, int(rng.integers(3, 6)), int(rng.integers(3, 6))))
    w = rng.standard_normal((2 * groups, int(rng.integers(1, 3)), *k))
    b = rng.standard_normal(w.shape[1] * groups)
    args = {"stride": stride, "padding": padding, "output_padding": extra, "groups": groups, "dilation": dilation}
    try:
        TF.conv_transpose2d(torch.tensor(x), torch.tensor(w), None, **args)
    except RuntimeError:
        pytest.skip("PyTorch rejects this configuration (empty output)")
    _compare(lambda *t: F.conv_transpose2d(*t, **args), lambda *t: TF.conv_transpose2d(*t, **args), [x, w, b], seed)


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"),
                         [(1, 0, 1, 1), (2, 1, 1, 2), (1, "same", 2, 1), (3, 2, 2, 4), (1, "same", 1, 2)])
def test_conv1d(stride, padding, dilation, groups) -> None:
    rng = np.random.default_rng(11)
    arrays = [rng.standard_normal((2, 4, 10)), rng.standard_normal((6 if groups != 4 else 4, 4 // groups, 4)),
              rng.standard_normal(6 if groups != 4 else 4)]
    args = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    _compare(lambda *t: F.conv1d(*t, **args), lambda *t: TF.conv1d(*t, **args), arrays)


def test_conv2d_layer_matches_torch_with_copied_weights() -> None:
    ours = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, groups=2, dtype=np.float64)
    theirs = torch.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, groups=2, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.array))
        theirs.bias.copy_(torch.from_numpy(ours.bias.array))
    x = np.random.default_rng(0).standard_normal((2, 4, 7, 5))
    np.testing.assert_allclose(ours(Tensor(x)).array, theirs(torch.tensor(x)).detach().numpy(), atol=1e-12)


@pytest.mark.parametrize("args", [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1), "dilation": (2, 1), "ceil_mode": True},
    {"kernel_size": 3, "stride": 2, "ceil_mode": True},
    {"kernel_size": 2, "stride": 1, "dilation": 2, "padding": 1},
])
def test_max_pool2d(args) -> None:
    _compare(lambda t: F.max_pool2d(t, **args), lambda t: TF.max_pool2d(t, **args), [_distinct((2, 3, 7, 6), 1)])
    x = _distinct((2, 3, 7, 6), 2)
    _, idx = F.max_pool2d(x, **args, return_indices=True)
    _, t_idx = TF.max_pool2d(torch.tensor(x), **args, return_indices=True)
    np.testing.assert_array_equal(idx.array, t_idx.numpy())


@pytest.mark.parametrize("args", [
    {"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": 2, "stride": 3, "dilation": 2},
])
def test_max_pool1d(args) -> None:
    _compare(lambda t: F.max_pool1d(t, **args), lambda t: TF.max_pool1d(t, **args), [_distinct((2, 3, 11), 3)])


def test_max_pool_ties_match_torch() -> None:
    x = np.round(np.random.default_rng(4).standard_normal((2, 2, 6, 6)))  # many equal values
    for args in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1}):
        _compare(lambda t, a=args: F.max_pool2d(t, **a), lambda t, a=args: TF.max_pool2d(t, **a), [x])


@pytest.mark.parametrize("args", [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
    {"kernel_size": (3, 2), "stride": (2, 3), "padding": (1, 1), "ceil_mode": True},
    {"kernel_size": (2, 3), "stride": 1, "padding": (1, 0), "count_include_pad": False},
])
def test_avg_pool2d(args) -> None:
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 6))
    _compare(lambda t: F.avg_pool2d(t, **args), lambda t: TF.avg_pool2d(t, **args), [x])


@pytest.mark.parametrize("args", [
    {"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
])
def test_avg_pool1d(args) -> None:
    x = np.random.default_rng(6).standard_normal((2, 3, 10))
    _compare(lambda t: F.avg_pool1d(t, **args), lambda t: TF.avg_pool1d(t, **args), [x])


@pytest.mark.parametrize("size", [(3, 4), (2, 5), 1, (7, 3), (4, 6), (5, None)])
def test_adaptive_pooling(size) -> None:
    x = _distinct((2, 3, 7, 6), 7)
    _compare(lambda t: F.adaptive_avg_pool2d(t, size), lambda t: TF.adaptive_avg_pool2d(t, size), [x])
    _compare(lambda t: F.adaptive_max_pool2d(t, size), lambda t: TF.adaptive_max_pool2d(t, size), [x])
    _, idx = F.adaptive_max_pool2d(x, size, return_indices=True)
    _, t_idx = TF.adaptive_max_pool2d(torch.tensor(x), size, return_indices=True)
    np.testing.assert_array_equal(idx.array, t_idx.numpy())


@pytest.mark.parametrize("kwargs", [
    {"size": (9, 4)}, {"scale_factor": 2}, {"scale_factor": 1.7}, {"size": (3, 11)},
    {"scale_factor": (0.6, 2.3)}, {"size": (10, 14)}, {"size": 1},
])
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bilinear_align"])
def test_interpolate(kwargs, mode) -> None:
    extra = {"mode": "bilinear", "align_corners": mode == "bilinear_align"} if mode != "nearest" else {}
    x = np.random.default_rng(8).standard_normal((2, 3, 5, 7))
    _compare(lambda t: F.interpolate(t, **kwargs, **extra), lambda t: TF.interpolate(t, **kwargs, **extra), [x])


@pytest.mark.parametrize("kwargs", [{"size": 12, "mode": "linear", "align_corners": False},
                                    {"size": 4, "mode": "linear", "align_corners": True},
                                    {"scale_factor": 1.5, "mode": "nearest"}])
def test_interpolate_1d(kwargs) -> None:
    x = np.random.default_rng(9).standard_normal((2, 3, 7))
    _compare(lambda t: F.interpolate(t, **kwargs), lambda t: TF.interpolate(t, **kwargs), [x])


def test_float32_nearest_indices_match_torch() -> None:
    """PyTorch computes nearest source indices in float32; sizes where float64 would round differently."""
    for n, out in [(7, 23), (11, 29), (13, 31), (17, 40)]:
        x = np.arange(n, dtype=np.float32).reshape(1, 1, 1, n)
        ours = F.interpolate(x, size=(1, out)).array
        theirs = TF.interpolate(torch.from_numpy(x), size=(1, out)).numpy()
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(("shape", "kwargs"), [
    ((2, 3, 5, 3), {"scale_factor": (2.0, 1.2), "mode": "bilinear"}),  # W keeps its size: PyTorch copies it
    ((2, 3, 3, 4), {"scale_factor": (1.1, 1.5), "mode": "bilinear"}),
    ((2, 3, 5), {"scale_factor": 1.1, "mode": "linear"}),
    ((2, 3, 5, 3), {"scale_factor": (1.1, 2.1), "mode": "nearest"}),  # 2-D nearest: copy, and halve a doubled size
    ((2, 3, 4, 5), {"scale_factor": (2.2, 0.9), "mode": "nearest"}),
])
def test_interpolate_scale_factor_that_keeps_or_doubles_a_size(shape, kwargs) -> None:
    x = np.random.default_rng(10).standard_normal(shape)
    _compare(lambda t: F.interpolate(t, **kwargs), lambda t: TF.interpolate(t, **kwargs), [x])


@pytest.mark.parametrize(("length", "scale"), [(3, 1.2), (5, 1.1), (3, 2.1), (4, 2.02), (7, 1.5)])
def test_interpolate_1d_nearest_follows_the_scale_factor(length, scale) -> None:
    """PyTorch's 1-D nearest maps ``dst -> floor(dst / scale)`` even when the size stays or doubles.

    Only the values are compared: in those cases PyTorch's backward is not the adjoint of its own
    forward (it copies), while ours is (checked by gradcheck).
    """
    from nurinet.autograd.gradcheck import gradcheck

    x = np.random.default_rng(12).standard_normal((2, 3, length))
    ours = F.interpolate(x, scale_factor=scale).array
    np.testing.assert_array_equal(ours, TF.interpolate(torch.tensor(x), scale_factor=scale).numpy())
    assert gradcheck(lambda t: F.interpolate(t, scale_factor=scale), [Tensor(x, requires_grad=True)])
