"""Padding modes: ``F.pad_mode`` and the convolutions' ``padding_mode``, against PyTorch (float64)."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor, nn

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

MODES = ("zeros", "reflect", "replicate", "circular")


def _copy_weights(ours: nn.Module, theirs: object) -> None:
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.array))
        theirs.bias.copy_(torch.tensor(ours.bias.array))


def _compare_layer(ours: nn.Module, theirs: object, x: np.ndarray) -> None:
    """Same output, and same gradients of the input and the weight, for a random upstream gradient."""
    inp, t_inp = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = ours(inp), theirs(t_inp)
    np.testing.assert_allclose(y.array, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    upstream = np.random.default_rng(1).standard_normal(y.shape)
    gx, gw = nurinet.grad([y], [inp, ours.weight], [Tensor(upstream)])
    t_gx, t_gw = torch.autograd.grad([ty], [t_inp, theirs.weight], [torch.tensor(upstream)])
    np.testing.assert_allclose(gx.array, t_gx.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw.array, t_gw.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("padding", "stride", "dilation"), [(1, 1, 1), ((2, 1), 2, 1), ("same", 1, 2), (0, 1, 1)])
def test_conv2d_padding_mode_matches_torch(mode: str, padding: object, stride: int, dilation: int) -> None:
    ours = nn.Conv2d(3, 4, (3, 2), stride=stride, padding=padding, dilation=dilation, padding_mode=mode,
                     dtype=np.float64)
    theirs = torch.nn.Conv2d(3, 4, (3, 2), stride=stride, padding=padding, dilation=dilation, padding_mode=mode,
                             dtype=torch.float64)
    _copy_weights(ours, theirs)
    _compare_layer(ours, theirs, np.random.default_rng(0).standard_normal((2, 3, 7, 6)))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding", [2, "same"])
def test_conv1d_padding_mode_matches_torch(mode: str, padding: object) -> None:
    ours = nn.Conv1d(2, 3, 4, padding=padding, padding_mode=mode, dtype=np.float64)
    theirs = torch.nn.Conv1d(2, 3, 4, padding=padding, padding_mode=mode, dtype=torch.float64)
    _copy_weights(ours, theirs)
    _compare_layer(ours, theirs, np.random.default_rng(2).standard_normal((2, 2, 9)))


@pytest.mark.parametrize(("mode", "torch_mode"), [("reflect", "reflect"), ("replicate", "replicate"),
                                                  ("circular", "circular")])
def test_pad_mode_matches_torch_pad(mode: str, torch_mode: str) -> None:
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5))
    ours = F.pad_mode(x, ((0, 0), (0, 0), (1, 3), (4, 2)), mode)
    theirs = torch.nn.functional.pad(torch.tensor(x), (4, 2, 1, 3), mode=torch_mode)  # last axis first
    np.testing.assert_array_equal(ours.array, theirs.numpy())


def test_pad_mode_small_example() -> None:
    x = np.array([1.0, 2.0, 3.0])
    assert F.pad_mode(x, (2, 2), "reflect").array.tolist() == [3, 2, 1, 2, 3, 2, 1]
    assert F.pad_mode(x, (2, 2), "replicate").array.tolist() == [1, 1, 1, 2, 3, 3, 3]
    assert F.pad_mode(x, (2, 2), "circular").array.tolist() == [2, 3, 1, 2, 3, 1, 2]
    assert F.pad_mode(x, (1, 0), "zeros").array.tolist() == [0, 1, 2, 3]


def test_pad_mode_errors() -> None:
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad_mode(x, 1, "mirror")
    with pytest.raises(ValueError, match="reflect padding of 3 on axis 1"):
        F.pad_mode(x, ((0, 0), (3, 0)), "reflect")
    with pytest.raises(ValueError, match="circular padding of 4"):
        F.pad_mode(x, ((0, 0), (0, 4)), "circular")
    with pytest.raises(ValueError, match="non-negative"):
        F.pad_mode(x, -1, "replicate")


def test_conv_padding_mode_is_checked_and_shown() -> None:
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(1, 1, 3, padding_mode="mirror")
    layer = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular")
    assert "padding_mode='circular'" in repr(layer)
    with pytest.raises(ValueError, match="expects 1 input channels"):
        layer(np.zeros((1, 2, 5, 5), np.float32))


def test_conv_padding_mode_survives_save_and_load(tmp_path) -> None:
    layer = nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect")
    nurinet.save(layer, tmp_path / "conv.nuri")
    loaded = nurinet.load(tmp_path / "conv.nuri")
    assert loaded.padding_mode == "reflect"
    x = np.random.default_rng(0).standard_normal((1, 1, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(loaded(x).array, layer(x).array)
