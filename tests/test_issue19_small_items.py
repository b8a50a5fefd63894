"""The small items of issue 19: Keras's hard sigmoid, the perceptron's random start and the
LSTM's unit forget bias (the convolutions' padding modes are in test_padding_modes.py)."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor, nn
from nurinet.autograd.gradcheck import gradcheck

# ----- hard sigmoid: PyTorch's and Keras 2's / DL4J's ---------------------------------------


def test_the_two_hard_sigmoids_differ_as_documented() -> None:
    x = np.array([-3.0, -2.5, -1.0, 0.0, 1.0, 2.5, 3.0])
    np.testing.assert_allclose(F.hardsigmoid(x).array, np.clip(x / 6 + 0.5, 0, 1))
    np.testing.assert_allclose(F.hard_sigmoid_keras(x).array, np.clip(0.2 * x + 0.5, 0, 1))
    assert F.hard_sigmoid_keras(Tensor(np.array([1.0]))).item() == pytest.approx(0.7)
    assert F.hardsigmoid(Tensor(np.array([1.0]))).item() == pytest.approx(1 / 6 + 0.5)


def test_hard_sigmoid_keras_by_name_and_as_a_layer() -> None:
    x = np.linspace(-4, 4, 9)
    for name in ("hard_sigmoid_keras", "HardSigmoidKeras", "hard-sigmoid-dl4j"):
        np.testing.assert_allclose(F.get_activation(name)(x).array, np.clip(0.2 * x + 0.5, 0, 1))
    assert F.get_activation("hardsigmoid") is F.hardsigmoid  # the plain name stays PyTorch's
    np.testing.assert_allclose(nn.HardsigmoidKeras()(x).array, np.clip(0.2 * x + 0.5, 0, 1))
    np.testing.assert_allclose(nn.Activation("hard_sigmoid_keras")(x).array, np.clip(0.2 * x + 0.5, 0, 1))


def test_hard_sigmoid_keras_matches_torch_keras_formula_and_gradient() -> None:
    x = Tensor(np.array([-3.0, -1.2, 0.3, 2.0, 2.7]), requires_grad=True)
    F.hard_sigmoid_keras(x).sum().backward()
    np.testing.assert_allclose(x.grad.array, [0.0, 0.2, 0.2, 0.2, 0.0])
    assert gradcheck(F.hard_sigmoid_keras, [Tensor(np.array([-1.2, 0.3, 2.0]), requires_grad=True)])


# ----- the perceptron's start ---------------------------------------------------------------


def test_perceptron_starts_at_zero_by_default() -> None:
    p = nn.Perceptron(3)
    assert not p.weight.array.any() and p.bias.array == 0


@pytest.mark.parametrize("kind", ["uniform", "normal"])
def test_perceptron_random_start_is_seeded_and_scaled(kind: str) -> None:
    a = nn.Perceptron(500, weight_init=kind, init_scale=0.1, generator=nurinet.random.Generator(3))
    b = nn.Perceptron(500, weight_init=kind, init_scale=0.1, generator=nurinet.random.Generator(3))
    np.testing.assert_array_equal(a.weight.array, b.weight.array)
    if kind == "uniform":
        assert np.abs(a.weight.array).max() <= 0.1
    else:
        assert 0.08 < a.weight.array.std() < 0.12
    assert a.bias.array != 0


def test_perceptron_learns_and_from_random_starts() -> None:
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 0, 0, 1])
    lines = set()
    for seed in range(5):
        p = nn.Perceptron(2, weight_init="uniform", generator=nurinet.random.Generator(seed))
        assert p.fit(x, y, epochs=100).converged
        np.testing.assert_array_equal(p.predict(x), y)
        lines.add((*np.round(p.weight.array, 4), round(float(p.bias.array), 4)))
    assert len(lines) > 1  # different starts, different separating lines


def test_perceptron_init_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="weight_init must be one of"):
        nn.Perceptron(2, weight_init="xavier")
    with pytest.raises(ValueError, match="init_scale must be > 0"):
        nn.Perceptron(2, weight_init="normal", init_scale=0)


# ----- the LSTM's unit forget bias ------------------------------------------------------------


def test_unit_forget_bias_sets_pytorch_rows_of_the_forget_gate() -> None:
    cell = nn.LSTMCell(3, 4, unit_forget_bias=True)
    expected = np.zeros(16, np.float32)
    expected[4:8] = 1.0  # gates i, f, g, o: f is the second block
    np.testing.assert_array_equal(cell.bias_ih.array, expected)
    np.testing.assert_array_equal(cell.bias_hh.array, np.zeros(16))
    layer = nn.LSTM(3, 4, num_layers=2, bidirectional=True, unit_forget_bias=True)
    for name, param in layer.named_parameters():
        if name.startswith("bias_ih"):
            np.testing.assert_array_equal(param.array, expected, err_msg=name)
        elif name.startswith("bias_hh"):
            assert not param.array.any(), name


def test_unit_forget_bias_keeps_the_cell_state_by_sigmoid_of_one() -> None:
    """With x = 0 and h = 0 every gate is its bias: c' = sigmoid(1) c + sigmoid(0) tanh(0) = 0.731 c."""
    cell = nn.LSTMCell(2, 3, unit_forget_bias=True, dtype=np.float64)
    c0 = np.array([[1.0, -2.0, 0.5]])
    _, c1 = cell(np.zeros((1, 2)), (np.zeros((1, 3)), c0))
    np.testing.assert_allclose(c1.array, c0 / (1 + np.exp(-1.0)))
    layer = nn.LSTM(2, 3, unit_forget_bias=True, dtype=np.float64)
    _, (_, c_n) = layer(np.zeros((1, 1, 2)), (np.zeros((1, 1, 3)), c0[None]))
    np.testing.assert_allclose(c_n.array[0], c0 / (1 + np.exp(-1.0)))


def test_unit_forget_bias_default_and_errors_and_saving(tmp_path) -> None:
    assert nn.LSTM(2, 3).bias_ih_l0.array[3:6].std() > 0  # PyTorch's uniform start unchanged
    with pytest.raises(ValueError, match="needs bias=True"):
        nn.LSTM(2, 3, bias=False, unit_forget_bias=True)
    with pytest.raises(ValueError, match="needs bias=True"):
        nn.LSTMCell(2, 3, bias=False, unit_forget_bias=True)
    nurinet.save(nn.LSTM(2, 3, unit_forget_bias=True), tmp_path / "lstm.nuri")
    assert nurinet.load(tmp_path / "lstm.nuri").unit_forget_bias is True
