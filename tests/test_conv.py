"""Convolutions: the fast ops against the reference composites, second-order gradients, layers and errors.

The registry (tests/op_db.py) runs gradcheck, gradgradcheck, float32 and backward_arrays
checks on a few fixed configurations; here many random configurations compare the
fast path with :mod:`nurinet.functional.conv_reference`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor, nn
from nurinet.functional.conv_reference import (
    conv1d_reference,
    conv2d_reference,
    conv_transpose2d_reference,
)
from tests.nn.harness import check_layer


def _conv2d_config(seed: int) -> dict:
    """A random small conv2d configuration whose kernel fits the padded input."""
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 4))
    while True:
        k = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        hw = tuple(int(v) for v in rng.integers(4, 8, 2))
        if rng.random() < 0.25:
            stride, padding = 1, "same"
        else:
            stride = tuple(int(v) for v in rng.integers(1, 4, 2))
            padding = tuple(int(rng.integers(0, kk)) for kk in k)
        pads = (0, 0) if padding == "same" else padding
        if all(dd * (kk - 1) + 1 <= n + 2 * p for dd, kk, n, p in zip(d, k, hw, pads)):
            break
    return {"x": (2, groups * int(rng.integers(1, 3)), *hw), "out": groups * int(rng.integers(1, 3)), "k": k,
            "stride": stride, "padding": padding, "dilation": d, "groups": groups,
            "bias": bool(rng.random() < 0.7)}


def _arrays(cfg: dict, seed: int, transposed: bool = False) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1000)
    c, g = cfg["x"][1], cfg["groups"]
    w_shape = (c, cfg["out"] // g, *cfg["k"]) if transposed else (cfg["out"], c // g, *cfg["k"])
    arrays = [rng.standard_normal(cfg["x"]), rng.standard_normal(w_shape)]
    return arrays + ([rng.standard_normal(cfg["out"])] if cfg["bias"] else [])


def _value_and_grads(fn, arrays: list[np.ndarray], seed: int) -> list[np.ndarray]:
    inputs = [Tensor(a, requires_grad=True) for a in arrays]
    y = fn(*inputs)
    upstream = Tensor(np.random.default_rng(seed).standard_normal(y.shape))
    grads = nurinet.grad([y], inputs, [upstream])
    return [y.array] + [g.array for g in grads]


def _assert_all_close(got: list[np.ndarray], want: list[np.ndarray], what: str) -> None:
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape, f"{what}: item {i} shape {a.shape} vs {b.shape}"
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10, err_msg=f"{what}: item {i}")


@pytest.mark.parametrize("seed", range(30))
def test_conv2d_fast_matches_reference(seed: int) -> None:
    cfg = _conv2d_config(seed)
    args = {key: cfg[key] for key in ("stride", "padding", "dilation", "groups")}

    def fast(x, w, b=None):
        return F.conv2d(x, w, b, **args)

    def slow(x, w, b=None):
        return conv2d_reference(x, w, b, **args)

    arrays = _arrays(cfg, seed)
    _assert_all_close(_value_and_grads(fast, arrays, seed), _value_and_grads(slow, arrays, seed), str(cfg))


@pytest.mark.parametrize("seed", range(12))
def test_conv_transpose2d_fast_matches_reference(seed: int) -> None:
    cfg = _conv2d_config(seed + 100)
    rng = np.random.default_rng(seed)
    stride = (1, 1) if cfg["padding"] == "same" else cfg["stride"]
    stride = (stride, stride) if isinstance(stride, int) else stride
    padding = tuple(int(rng.integers(0, kk)) for kk in cfg["k"])
    extra = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, cfg["dilation"]))
    args = {"stride": stride, "padding": padding, "output_padding": extra, "groups": cfg["groups"],
            "dilation": cfg["dilation"]}
    arrays = _arrays(cfg, seed, transposed=True)
    out = [(n - 1) * s - 2 * p + d * (k - 1) + e + 1
           for n, s, p, d, k, e in zip(cfg["x"][2:], stride, padding, cfg["dilation"], cfg["k"], extra)]
    if min(out) < 1:
        pytest.skip("this configuration has an empty output")

    def fast(x, w, b=None):
        return F.conv_transpose2d(x, w, b, **args)

    def slow(x, w, b=None):
        return conv_transpose2d_reference(x, w, b, **args)

    _assert_all_close(_value_and_grads(fast, arrays, seed), _value_and_grads(slow, arrays, seed), str(args))


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"),
                         [(1, 0, 1, 1), (2, 1, 1, 2), (1, "same", 2, 1), (3, 2, 2, 4), (1, "valid", 1, 4)])
def test_conv1d_fast_matches_reference(stride, padding, dilation, groups) -> None:
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal((2, 4, 9)), rng.standard_normal((4, 4 // groups, 3)), rng.standard_normal(4)]
    args = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    got = _value_and_grads(lambda x, w, b: F.conv1d(x, w, b, **args), arrays, 1)
    want = _value_and_grads(lambda x, w, b: conv1d_reference(x, w, b, **args), arrays, 1)
    _assert_all_close(got, want, str(args))


def test_second_order_gradient_matches_reference() -> None:
    """d/dw of |dL/dx|^2 (a gradient penalty) through the fast conv equals the reference's."""
    rng = np.random.default_rng(3)
    x0, w0 = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((6, 2, 3, 2))
    results = []
    for conv in (F.conv2d, conv2d_reference):
        x, w = Tensor(x0, requires_grad=True), Tensor(w0, requires_grad=True)
        y = conv(x, w, None, 2, 1, (1, 2), 2)
        (gx,) = nurinet.grad([(y * y).sum()], [x], create_graph=True)
        (gw,) = nurinet.grad([(gx * gx).sum()], [w])
        results.append(gw.array)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-9, atol=1e-9)


def test_conv2d_float32_input_gives_float32_everything() -> None:
    x = Tensor(np.ones((2, 3, 6, 6), np.float32), requires_grad=True)
    layer = nn.Conv2d(3, 4, 3, padding=1)
    y = layer(x)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32 and layer.weight.grad.dtype == np.float32


# ----- layers -----

def test_conv2d_layer_harness() -> None:
    check_layer(nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, groups=2), (2, 4, 7, 6), (2, 6, 4, 7),
                6 * 2 * 3 * 2 + 6)


def test_conv1d_layer_harness() -> None:
    check_layer(nn.Conv1d(3, 5, 3, padding="same", dilation=2), (2, 3, 8), (2, 5, 8), 5 * 3 * 3 + 5)


def test_conv_transpose2d_layer_harness() -> None:
    check_layer(nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, bias=False),
                (2, 4, 3, 4), (2, 6, 6, 8), 4 * 3 * 3 * 3)


def test_depthwise_layer_harness() -> None:
    check_layer(nn.Conv2d(3, 6, 3, groups=3, padding="same"), (2, 3, 5, 5), (2, 6, 5, 5), 6 * 1 * 9 + 6)


@pytest.mark.parametrize(("layer", "fan_in"), [
    (lambda g: nn.Conv2d(6, 40, (3, 5), groups=2, generator=g), 3 * 15),
    (lambda g: nn.Conv1d(4, 30, 7, generator=g), 4 * 7),
    (lambda g: nn.ConvTranspose2d(8, 20, 3, groups=2, generator=g), 10 * 9),
])
def test_initialization_is_uniform_with_bound_one_over_sqrt_fan_in(layer, fan_in) -> None:
    module = layer(nurinet.Generator(0))
    bound = 1.0 / math.sqrt(fan_in)
    w = module.weight.array
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert abs(w.std() - bound / math.sqrt(3.0)) < 0.15 * bound  # the std of U(-b, b) is b / sqrt(3)
    assert np.abs(module.bias.array).max() <= bound
    again = layer(nurinet.Generator(0))
    np.testing.assert_array_equal(again.weight.array, w)


def test_layer_repr_mentions_arguments() -> None:
    text = repr(nn.Conv2d(3, 8, 3, stride=2, groups=1, bias=False))
    assert "Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2)" in text and "bias=False" in text


# ----- errors -----

def test_conv2d_layer_rejects_wrong_channels() -> None:
    with pytest.raises(ValueError, match=r"Conv2d\(3, 8.*expects 3 input channels but got 4"):
        nn.Conv2d(3, 8, 3)(Tensor(np.zeros((1, 4, 5, 5), np.float32)))


@pytest.mark.parametrize(("layer", "shape", "match"), [
    (lambda: nn.Conv1d(3, 8, 3), (2, 5, 9), r"Conv1d\(3, 8.*expects 3 input channels but got 5"),
    (lambda: nn.ConvTranspose2d(4, 2, 3), (1, 2, 5, 5), r"ConvTranspose2d\(4, 2.*expects 4 input channels but got 2"),
    (lambda: nn.Conv2d(6, 6, 3, groups=3), (1, 3, 5, 5), r"Conv2d\(6, 6.*groups=3.*expects 6 input channels but got 3"),
])
def test_every_conv_layer_names_itself_on_wrong_channels(layer, shape, match) -> None:
    with pytest.raises(ValueError, match=match):
        layer()(Tensor(np.zeros(shape, np.float32)))


def test_conv2d_layer_rejects_non_4d_input() -> None:
    with pytest.raises(ValueError, match=r"Conv2d.*expects a 4-D input \(N, C, H, W\), got shape \(3, 5, 5\)"):
        nn.Conv2d(3, 8, 3)(Tensor(np.zeros((3, 5, 5), np.float32)))


def test_conv1d_layer_rejects_non_3d_input() -> None:
    with pytest.raises(ValueError, match=r"Conv1d.*expects a 3-D input \(N, C, L\), got shape \(1, 3, 5, 5\)"):
        nn.Conv1d(3, 8, 3)(Tensor(np.zeros((1, 3, 5, 5), np.float32)))


def test_kernel_larger_than_padded_input() -> None:
    with pytest.raises(ValueError, match=r"Conv2d.*kernel \(5, 5\).*spans \(5, 5\).*padded input is only \(4, 6\)"):
        nn.Conv2d(1, 1, 5, padding=(0, 1))(Tensor(np.zeros((1, 1, 4, 4), np.float32)))
    with pytest.raises(ValueError, match=r"conv1d: the kernel \(3,\) \(dilation \(3,\)\) spans \(7,\)"):
        F.conv1d(np.zeros((1, 1, 6)), np.zeros((1, 1, 3)), dilation=3)


def test_groups_must_divide_channels() -> None:
    with pytest.raises(ValueError, match="Conv2d: groups=2 must divide in_channels=3"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"conv2d: .*3 channels but the weight .* groups=2 expects 4"):
        F.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((4, 2, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="groups must divide both"):
        F.conv2d(np.zeros((1, 4, 5, 5)), np.zeros((3, 2, 3, 3)), groups=2)


def test_bad_arguments() -> None:
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        F.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding must be an int, a tuple, 'valid' or 'same'"):
        F.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match=r"stride must be an int >= 1"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        F.conv2d(x, w, np.zeros(3))
    with pytest.raises(TypeError, match="must share one dtype"):
        F.conv2d(x.astype(np.float32), w)
    with pytest.raises(ValueError, match="output_padding .* must be smaller than the stride"):
        F.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(TypeError, match="padding must be an int or a pair"):
        nn.ConvTranspose2d(2, 2, 3, padding="same")
    with pytest.raises(TypeError, match="float32 parameters but got a float64 input"):
        nn.Conv2d(2, 2, 3)(Tensor(x))
