"""Sequential runs a Linear followed by a ReLU as one op (F.linear_relu): the same values and gradients
as the two layers one after the other, and no fusion where a hook must see the Linear's own output."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet._runtime import gemm
from nurinet.functional.linalg import LinearReLU

PROVIDERS = ["numpy"] + (["native"] if gemm.native_available() else [])


@pytest.fixture(params=PROVIDERS)
def provider(request):
    old = gemm.set_provider(request.param)
    yield request.param
    gemm.set_provider(old)


def _model() -> nn.Sequential:
    nt.manual_seed(0)
    return nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3))


def _one_by_one(model: nn.Sequential, x: nt.Tensor) -> nt.Tensor:
    for module in model:
        x = module(x)
    return x


def _grads(model: nn.Sequential) -> list[np.ndarray]:
    return [p.grad.array.copy() for p in model.parameters()]


@pytest.mark.parametrize("shape", [(50, 40), (4, 6, 40)])
def test_fused_layers_give_the_values_and_gradients_of_the_two(provider, shape):
    model = _model()
    x = nt.tensor(np.random.default_rng(1).standard_normal(shape).astype(np.float32))
    y = model(x)
    assert type(y.creator).__name__ == "Linear" and any(
        isinstance(fn, LinearReLU) for fn in _creators(y))
    y.sum().backward()
    fused = _grads(model)
    model.zero_grad()
    z = _one_by_one(model, x)
    z.sum().backward()
    np.testing.assert_allclose(y.array, z.array, rtol=1e-5, atol=1e-6)
    for a, b in zip(fused, _grads(model)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def _creators(y: nt.Tensor) -> list[object]:
    seen, stack = [], [y.creator]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.append(fn)
        stack.extend(t.creator for t in (fn.inputs or ()))
    return seen


def test_a_hook_on_the_linear_sees_its_own_output(provider):
    model = _model()
    seen = []
    model[0].register_forward_hook(lambda module, inputs, output: seen.append(output.array.copy()))
    x = nt.tensor(np.random.default_rng(2).standard_normal((8, 40)).astype(np.float32))
    model(x)
    assert len(seen) == 1 and (seen[0] < 0).any()  # the pre-activation, not relu of it


def test_nan_and_negative_bias_behave_as_relu(provider):
    layer = nn.Linear(3, 40)
    layer.bias.array[...] = -5.0
    x = np.ones((20, 3), np.float32)
    x[4, 1] = np.nan
    y = nn.Sequential(layer, nn.ReLU())(nt.tensor(x)).array
    want = np.maximum(x @ layer.weight.array.T + layer.bias.array, 0)
    assert np.isnan(y[4]).all() and np.isnan(want[4]).all()
    np.testing.assert_allclose(np.delete(y, 4, 0), np.delete(want, 4, 0), rtol=1e-6, atol=1e-6)
