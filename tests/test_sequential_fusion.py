"""Sequential runs a Linear followed by a ReLU as one op (F.linear_relu): the same values and gradients
as the two layers one after the other, and no fusion where a hook must see the Linear's own output."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet._runtime import native, probe
from nurinet._runtime.modes import forced
from nurinet.functional.linalg import LinearReLU


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
def test_fused_layers_give_the_values_and_gradients_of_the_two(gemm_provider, shape):
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


def test_a_hook_on_the_linear_sees_its_own_output(gemm_provider):
    model = _model()
    seen = []
    model[0].register_forward_hook(lambda module, inputs, output: seen.append(output.array.copy()))
    x = nt.tensor(np.random.default_rng(2).standard_normal((8, 40)).astype(np.float32))
    model(x)
    assert len(seen) == 1 and (seen[0] < 0).any()  # the pre-activation, not relu of it


def test_nan_and_negative_bias_behave_as_relu(gemm_provider):
    layer = nn.Linear(3, 40)
    layer.bias.array[...] = -5.0
    x = np.ones((20, 3), np.float32)
    x[4, 1] = np.nan
    y = nn.Sequential(layer, nn.ReLU())(nt.tensor(x)).array
    want = np.maximum(x @ layer.weight.array.T + layer.bias.array, 0)
    assert np.isnan(y[4]).all() and np.isnan(want[4]).all()
    np.testing.assert_allclose(np.delete(y, 4, 0), np.delete(want, 4, 0), rtol=1e-6, atol=1e-6)


# ----- the Transformer layers' feed-forward block fuses linear1 and a ReLU the same way ------------------
def _encoder_layer(activation, norm_first: bool = False, decoder: bool = False) -> nn.Module:
    nt.manual_seed(3)
    kind = nn.TransformerDecoderLayer if decoder else nn.TransformerEncoderLayer
    layer = kind(16, 2, dim_feedforward=32, dropout=0.0, activation=activation, batch_first=True,
                 norm_first=norm_first)
    layer.train()
    return layer


def _step(layer: nn.Module, x: np.ndarray) -> tuple[nt.Tensor, bool, list[np.ndarray]]:
    """The output, whether the graph holds a LinearReLU (looked at before the backward frees it), the grads."""
    layer.zero_grad()
    inputs = (nt.tensor(x), nt.tensor(x[:, :3])) if isinstance(layer, nn.TransformerDecoderLayer) else (nt.tensor(x),)
    y = layer(*inputs)
    fused = any(isinstance(fn, LinearReLU) for fn in _creators(y))
    (y * y).sum().backward()
    return y, fused, _grads(layer)


@pytest.mark.parametrize(("activation", "norm_first", "decoder"),
                         [("relu", False, False), (nn.ReLU(), False, False), ("relu", True, False),
                          ("relu", False, True), ("relu", True, True)])
def test_the_transformer_feed_forward_runs_linear_and_relu_as_one_op(gemm_provider, activation, norm_first, decoder):
    layer = _encoder_layer(activation, norm_first, decoder)
    x = np.random.default_rng(4).standard_normal((3, 5, 16)).astype(np.float32)
    fused, was_fused, fused_grads = _step(layer, x)
    assert was_fused
    seen = []
    layer.linear1.register_forward_hook(lambda module, inputs, output: seen.append(output))  # must see linear1's own output
    plain, was_fused, plain_grads = _step(layer, x)
    assert len(seen) == 1 and not was_fused
    np.testing.assert_allclose(fused.array, plain.array, rtol=1e-5, atol=1e-6)
    for a, b in zip(fused_grads, plain_grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("activation", ["gelu", lambda t: nt.functional.relu(t)])
def test_other_activations_are_not_fused(activation):
    _, was_fused, _ = _step(_encoder_layer(activation), np.ones((2, 4, 16), np.float32))
    assert not was_fused


def test_a_hook_on_the_relu_module_turns_the_fusion_off():
    relu = nn.ReLU()
    seen = []
    relu.register_forward_hook(lambda module, inputs, output: seen.append(output))
    _, was_fused, _ = _step(_encoder_layer(relu), np.ones((2, 4, 16), np.float32))
    assert not was_fused and len(seen) == 1


@pytest.mark.skipif(not native.available(), reason="no native kernels here")
def test_a_3d_linear_relu_takes_the_one_pass_relu_and_bias_gradient():
    x = nt.tensor(np.random.default_rng(5).standard_normal((2, 3, 4)).astype(np.float32), requires_grad=True)
    w = nt.tensor(np.random.default_rng(6).standard_normal((5, 4)).astype(np.float32), requires_grad=True)
    b = nt.tensor(np.zeros(5, np.float32), requires_grad=True)
    with forced(), probe.counting() as counts:
        nt.functional.linear_relu(x, w, b).sum().backward()
    assert counts["native.relu_backward_column_sums"] == 1
    with forced(RELU_BIAS_PASS_MAX_ELEMENTS=0), probe.counting() as counts:  # above the ceiling: two steps
        b.grad = None
        nt.functional.linear_relu(x, w, b).sum().backward()
    assert counts["native.relu_backward_column_sums"] == 0
    want = ((x.array @ w.array.T) > 0).sum(axis=(0, 1)).astype(np.float32)
    np.testing.assert_allclose(b.grad.array, want)


@pytest.mark.parametrize("activation", ["relu", nn.ReLU(), nt.functional.relu])
def test_a_linear_layer_with_a_relu_activation_runs_as_one_op(gemm_provider, activation):
    nt.manual_seed(7)
    fused = nn.Linear(6, 9, activation=activation)
    plain = nn.Linear(6, 9)
    plain.load_state_dict(fused.state_dict())
    x = nt.tensor(np.random.default_rng(8).standard_normal((5, 6)).astype(np.float32))
    y = fused(x)
    assert isinstance(y.creator, LinearReLU)
    y.sum().backward()
    z = nn.ReLU()(plain(x))
    z.sum().backward()
    np.testing.assert_allclose(y.array, z.array, rtol=1e-6, atol=1e-6)
    for a, b in zip(_grads(fused), _grads(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_hook_on_a_linear_layer_s_relu_activation_sees_its_input():
    relu = nn.ReLU()
    seen = []
    relu.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].array.copy()))
    y = nn.Linear(6, 9, activation=relu)(nt.tensor(-np.ones((2, 6), np.float32)))
    assert len(seen) == 1 and not isinstance(y.creator, LinearReLU)
