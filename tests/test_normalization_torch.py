"""BatchNorm1d/2d, LayerNorm and GroupNorm against PyTorch: outputs, gradients of the input,
weight and bias, and running statistics over several training steps, then evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from nurinet import Tensor, nn

pytestmark = pytest.mark.torch

TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPES = [np.float64, np.float32]


def _torch_dtype(torch, dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def _step(torch, ours, theirs, x: np.ndarray, rng: np.random.Generator, dtype) -> None:
    """One forward/backward on both; compare the output and every gradient."""
    tol = TOL[dtype]
    xo, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    np.testing.assert_allclose(yo.array, yt.detach().numpy(), rtol=tol, atol=tol)
    gy = rng.standard_normal(x.shape).astype(dtype)
    ours.zero_grad()
    theirs.zero_grad()
    yo.backward(Tensor(gy))
    yt.backward(torch.tensor(gy))
    np.testing.assert_allclose(xo.grad.array, xt.grad.numpy(), rtol=tol, atol=tol)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.array, q.grad.numpy(), rtol=tol, atol=tol, err_msg=name)


def _compare_stats(ours, theirs, dtype) -> None:
    tol = TOL[dtype]
    for name, buffer in theirs.named_buffers():
        np.testing.assert_allclose(getattr(ours, name).array, buffer.numpy(), rtol=tol, atol=tol, err_msg=name)


BN_CASES = [("BatchNorm1d", (8, 3)), ("BatchNorm1d", (4, 3, 7)), ("BatchNorm2d", (4, 3, 5, 5))]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("kind, shape", BN_CASES, ids=["bn1d_2d", "bn1d_3d", "bn2d"])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
def test_batch_norm_matches_torch_train_then_eval(kind, shape, momentum, dtype) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    theirs = getattr(torch.nn, kind)(3, momentum=momentum).to(_torch_dtype(torch, dtype))
    ours = getattr(nn, kind)(3, momentum=momentum, dtype=dtype)
    with torch.no_grad():  # non-trivial affine parameters
        theirs.weight.copy_(torch.tensor(rng.uniform(0.5, 2.0, 3)))
        theirs.bias.copy_(torch.tensor(rng.standard_normal(3)))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for _ in range(4):
        x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
        _step(torch, ours, theirs, x, rng, dtype)
        _compare_stats(ours, theirs, dtype)
    ours.eval()
    theirs.eval()
    _step(torch, ours, theirs, rng.standard_normal(shape).astype(dtype), rng, dtype)
    _compare_stats(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_options_match_torch(affine, dtype) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    theirs = torch.nn.BatchNorm2d(2, affine=affine, track_running_stats=False).to(_torch_dtype(torch, dtype))
    ours = nn.BatchNorm2d(2, affine=affine, track_running_stats=False, dtype=dtype)
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        _step(torch, ours, theirs, rng.standard_normal((3, 2, 4, 4)).astype(dtype), rng, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("normalized_shape, shape", [(6, (4, 6)), ((3, 4), (2, 5, 3, 4))], ids=["1d", "2d"])
def test_layer_norm_matches_torch(normalized_shape, shape, dtype) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    theirs = torch.nn.LayerNorm(normalized_shape, eps=1e-4).to(_torch_dtype(torch, dtype))
    ours = nn.LayerNorm(normalized_shape, eps=1e-4, dtype=dtype)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(rng.uniform(0.5, 2.0, theirs.weight.shape)))
        theirs.bias.copy_(torch.tensor(rng.standard_normal(theirs.bias.shape)))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for _ in range(2):
        _step(torch, ours, theirs, (rng.standard_normal(shape) * 2 + 1).astype(dtype), rng, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("groups, channels, shape", [(2, 6, (3, 6, 4, 4)), (3, 3, (2, 3, 5)), (1, 4, (2, 4, 3))],
                         ids=["2of6", "instance", "layer"])
def test_group_norm_matches_torch(groups, channels, shape, dtype) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    theirs = torch.nn.GroupNorm(groups, channels).to(_torch_dtype(torch, dtype))
    ours = nn.GroupNorm(groups, channels, dtype=dtype)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(rng.uniform(0.5, 2.0, channels)))
        theirs.bias.copy_(torch.tensor(rng.standard_normal(channels)))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for _ in range(2):
        _step(torch, ours, theirs, (rng.standard_normal(shape) * 2 + 1).astype(dtype), rng, dtype)


@pytest.mark.parametrize("make", [
    lambda m: m.BatchNorm1d(5), lambda m: m.BatchNorm2d(4, affine=False), lambda m: m.LayerNorm((3, 2)),
    lambda m: m.GroupNorm(2, 6),
], ids=["bn1d", "bn2d_no_affine", "layer_norm", "group_norm"])
def test_initial_state_matches_torch(make) -> None:
    """Weight ones, bias zeros, running mean 0 and variance 1, no batch counted: the same keys and values."""
    torch = pytest.importorskip("torch")
    ours, theirs = make(nn).state_dict(), make(torch.nn).state_dict()
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        np.testing.assert_array_equal(ours[key], value.numpy(), err_msg=key)
