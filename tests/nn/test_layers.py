"""Layers: Linear, Maxout, Identity, Flatten, Dropout, Perceptron; an MLP learning XOR."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor, nn
from nurinet.functional.dropout import dropout
from tests.nn.harness import check_layer

# ----- the generic harness over every layer ------------------------------------------------------
LAYERS = [
    ("linear", lambda: nn.Linear(4, 3), (5, 4), (5, 3), 4 * 3 + 3, False),
    ("linear_nobias_3d", lambda: nn.Linear(4, 3, bias=False), (2, 5, 4), (2, 5, 3), 12, False),
    ("linear_float64", lambda: nn.Linear(4, 2, dtype=np.float64), (3, 4), (3, 2), 10, False),
    ("linear_tanh", lambda: nn.Linear(4, 2, activation=F.tanh), (3, 4), (3, 2), 10, False),
    ("linear_tanh_by_name", lambda: nn.Linear(4, 2, activation="tanh"), (3, 4), (3, 2), 10, False),
    ("maxout", lambda: nn.Maxout(4, 3, pieces=2), (5, 4), (5, 3), 2 * (4 * 3 + 3), False),
    ("identity", lambda: nn.Identity(), (2, 3), (2, 3), 0, False),
    ("flatten", lambda: nn.Flatten(), (2, 3, 4, 5), (2, 60), 0, False),
    ("flatten_middle", lambda: nn.Flatten(1, 2), (2, 3, 4, 5), (2, 12, 5), 0, False),
    ("dropout", lambda: nn.Dropout(0.5), (8, 16), (8, 16), 0, True),
    ("mlp_with_dropout", lambda: nn.Sequential(nn.Linear(6, 8, activation=F.tanh), nn.Dropout(0.3),
                                               nn.Linear(8, 2)), (4, 6), (4, 2), 6 * 8 + 8 + 8 * 2 + 2, True),
]


@pytest.mark.parametrize(("make", "shape", "out", "count", "differ"), [case[1:] for case in LAYERS],
                         ids=[case[0] for case in LAYERS])
def test_layer_harness(make, shape, out, count, differ) -> None:
    check_layer(make(), shape, out, count, train_eval_differ=differ)
    check_layer(make(), shape, out, count, train_eval_differ=differ, make_fresh=make)


def test_harness_catches_a_wrong_gradient() -> None:
    class WrongGradient(nn.Linear):
        def forward(self, x: Tensor) -> Tensor:
            # the gradient flows through -weight, but the value uses +weight: a broken layer
            return F.linear(x, self.weight.detach() * 2.0 - self.weight)

    with pytest.raises(AssertionError, match="no SGD step"):
        check_layer(WrongGradient(3, 2, bias=False), (4, 3), (4, 2), 6)
    with pytest.raises(AssertionError, match="parameters, expected"):
        check_layer(nn.Linear(3, 2), (4, 3), (4, 2), 7)
    with pytest.raises(AssertionError, match="training and eval outputs should differ"):
        check_layer(nn.Identity(), (4, 3), (4, 3), 0, train_eval_differ=True)


# ----- Linear ------------------------------------------------------------------------------------
def test_linear_computes_x_wt_plus_b() -> None:
    layer = nn.Linear(3, 2)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_allclose(layer(Tensor(x)).array, x @ layer.weight.array.T + layer.bias.array, rtol=1e-6)
    assert layer.weight.shape == (2, 3) and layer.bias.shape == (2,)
    assert layer.weight.dtype == np.float32
    assert nn.Linear(3, 2, bias=False).bias is None
    assert repr(nn.Linear(3, 2, bias=False)) == "Linear(in_features=3, out_features=2, bias=False)"


def test_linear_activation_callable_and_module() -> None:
    layer = nn.Linear(3, 2, activation=F.tanh)
    x = nurinet.randn(4, 3)
    np.testing.assert_allclose(layer(x).array, np.tanh(F.linear(x, layer.weight, layer.bias).array), rtol=1e-6)
    assert repr(layer).endswith("activation=tanh)")
    inner = nn.Linear(2, 2)
    wrapped = nn.Linear(3, 2, activation=inner)  # a Module activation is a registered child
    assert list(wrapped.state_dict()) == ["weight", "bias", "activation.weight", "activation.bias"]
    with pytest.raises(TypeError, match="activation must be None, a name"):
        nn.Linear(3, 2, activation=3)


def test_linear_activation_by_name() -> None:
    layer = nn.Linear(3, 2, activation="tanh")  # resolved by nurinet.nn.activation.get_activation
    x = nurinet.randn(4, 3)
    np.testing.assert_allclose(layer(x).array, np.tanh(F.linear(x, layer.weight, layer.bias).array), rtol=1e-6)
    with pytest.raises((ValueError, KeyError), match="no_such_activation"):
        nn.Linear(3, 2, activation="no_such_activation")


def test_linear_errors_name_the_layer_and_shapes() -> None:
    layer = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"Linear\(in_features=4, out_features=3, bias=True\) expects "
                                         r"inputs of shape \(\*, 4\) but got shape \(2, 5\) \(weight shape \(3, 4\)\)"):
        layer(nurinet.randn(2, 5))
    with pytest.raises(TypeError, match="float32 parameters but got a float64 input.*double"):
        layer(Tensor(np.ones((2, 4))))
    with pytest.raises(ValueError, match="in_features must be a positive integer, got 0"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="out_features must be a positive integer, got 2.5"):
        nn.Linear(3, 2.5)
    with pytest.raises(TypeError, match="floating-point dtype"):
        nn.Linear(3, 2, dtype=np.int32)


def test_linear_generator_makes_init_reproducible() -> None:
    a = nn.Linear(5, 4, generator=nurinet.Generator(1))
    b = nn.Linear(5, 4, generator=nurinet.Generator(1))
    np.testing.assert_array_equal(a.weight.array, b.weight.array)
    np.testing.assert_array_equal(a.bias.array, b.bias.array)
    bound = 1 / math.sqrt(5)
    assert np.abs(a.weight.array).max() <= bound and np.abs(a.bias.array).max() <= bound


@pytest.mark.torch
def test_linear_matches_pytorch() -> None:
    torch = pytest.importorskip("torch")
    ours = nn.Linear(5, 3, dtype=np.float64)
    theirs = torch.nn.Linear(5, 3, dtype=torch.float64)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 4, 5))
    y = ours(Tensor(x))
    (y**2).sum().backward()
    ty = theirs(torch.from_numpy(x))
    (ty**2).sum().backward()
    np.testing.assert_allclose(y.array, ty.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad.array, theirs.weight.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(ours.bias.grad.array, theirs.bias.grad.numpy(), atol=1e-10)


# ----- Maxout, Identity, Flatten -----------------------------------------------------------------
def test_maxout_is_the_max_of_its_pieces() -> None:
    layer = nn.Maxout(3, 2, pieces=4)
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    pieces = (x @ layer.weight.array.T + layer.bias.array).reshape(5, 2, 4)
    np.testing.assert_allclose(layer(Tensor(x)).array, pieces.max(axis=-1), rtol=1e-6)
    assert repr(layer) == "Maxout(in_features=3, out_features=2, pieces=4)"
    with pytest.raises(ValueError, match="pieces must be a positive integer"):
        nn.Maxout(3, 2, pieces=0)
    with pytest.raises(ValueError, match=r"Maxout\(.*\) expects inputs of shape \(\*, 3\)"):
        layer(nurinet.randn(2, 4))


def test_maxout_gradient_reaches_only_the_winning_piece() -> None:
    layer = nn.Maxout(2, 1, pieces=3, dtype=np.float64)
    x = Tensor(np.array([[0.3, -1.2]]))
    layer(x).sum().backward()
    winner = int(np.argmax(x.array @ layer.weight.array.T + layer.bias.array))
    expected = np.zeros((3, 2))
    expected[winner] = x.array[0]
    np.testing.assert_array_equal(layer.weight.grad.array, expected)


def test_identity_and_flatten() -> None:
    x = nurinet.randn(2, 3, 4)
    assert nn.Identity(54, unused=True)(x) is x
    assert nn.Flatten(0)(x).shape == (24,)
    assert nn.Flatten(-2)(x).shape == (2, 12)
    with pytest.raises(ValueError, match=r"Flatten\(start_dim=3, end_dim=-1\) cannot flatten .*\(2, 3, 4\)"):
        nn.Flatten(3)(x)
    with pytest.raises(ValueError, match="start_dim before end_dim"):
        nn.Flatten(2, 1)(x)


# ----- Dropout -----------------------------------------------------------------------------------
def test_dropout_statistics_and_scaling() -> None:
    p, n = 0.3, 200_000
    y = nn.Dropout(p, generator=nurinet.Generator(0))(nurinet.ones(n)).array
    kept = y != 0
    assert abs(1 - kept.mean() - p) < 5 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)
    assert y.dtype == np.float32


def test_dropout_eval_is_identity_and_train_is_not() -> None:
    layer = nn.Dropout(0.5)
    x = nurinet.randn(10, 10)
    assert layer.eval()(x) is x
    layer.train()
    assert not np.array_equal(layer(x).array, x.array)
    assert dropout(x, 0.0) is x and dropout(x, 0.5, training=False) is x


def test_dropout_backward_multiplies_by_the_mask() -> None:
    x = nurinet.randn(6, 7, requires_grad=True)
    y = dropout(x, 0.4, generator=nurinet.Generator(3))
    y.backward(nurinet.ones_like(y))
    mask = y.array / x.array
    np.testing.assert_allclose(x.grad.array, mask, rtol=1e-5)
    assert np.all(np.isclose(mask, 0.0) | np.isclose(mask, 1 / 0.6, rtol=1e-5))
    assert np.isclose(mask, 0.0).any() and not np.isclose(mask, 0.0).all()


def test_dropout_generator_reproducible() -> None:
    x = nurinet.ones(50)
    a = nn.Dropout(0.5, generator=nurinet.Generator(4))(x).array
    b = nn.Dropout(0.5, generator=nurinet.Generator(4))(x).array
    np.testing.assert_array_equal(a, b)
    layer = nn.Dropout(0.5, generator=nurinet.Generator(4))
    assert not np.array_equal(layer(x).array, layer(x).array)  # the stream moves on


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, "0.5", True])
def test_dropout_rejects_bad_probabilities(p) -> None:
    with pytest.raises(ValueError, match=r"Dropout: the drop probability p must be a number in \[0, 1\)"):
        nn.Dropout(p)
    with pytest.raises(ValueError, match=r"dropout: the drop probability p"):
        dropout(nurinet.ones(3), p)


def test_dropout_rejects_integer_tensors() -> None:
    with pytest.raises(TypeError, match="floating-point tensor"):
        dropout(Tensor(np.ones(3, np.int64)), 0.5)


# ----- Perceptron --------------------------------------------------------------------------------
INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
GATES = {"and": [0, 0, 0, 1], "or": [0, 1, 1, 1], "nand": [1, 1, 1, 0]}


@pytest.mark.parametrize("gate", sorted(GATES))
def test_perceptron_learns_linearly_separable_gates(gate: str) -> None:
    unit = nn.Perceptron(2, threshold=0.5, lr=1.0)
    result = unit.fit(INPUTS, GATES[gate], epochs=100)
    assert result.converged and unit.converged and result.errors[-1] == 0
    assert result.epochs == len(result.errors) < 100
    np.testing.assert_array_equal(unit.predict(INPUTS), GATES[gate])
    assert unit(Tensor(INPUTS)).dtype == np.float32


def test_perceptron_never_learns_xor() -> None:
    xor = [0, 1, 1, 0]
    unit = nn.Perceptron(2)
    result = unit.fit(INPUTS, xor, epochs=1000)
    assert not result.converged and not unit.converged and result.epochs == 1000
    assert min(result.errors) > 0  # every epoch makes a mistake: no line separates XOR
    assert (unit.predict(INPUTS) == xor).mean() < 1.0


def test_perceptron_rule_is_rosenblatts() -> None:
    unit = nn.Perceptron(2, threshold=0.5, lr=0.25)
    unit.fit(np.array([[1.0, 0.0]]), [1], epochs=1)  # 0 > 0.5 is false: wrong, so w += lr * x
    np.testing.assert_array_equal(unit.weight.array, [0.25, 0.0])
    assert unit.bias.item() == 0.25
    assert not unit.weight.requires_grad
    assert list(unit.state_dict()) == ["weight", "bias"]


def test_perceptron_errors() -> None:
    unit = nn.Perceptron(2)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(N, 2\), got shape \(4, 3\)"):
        unit.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="y must hold one 0 or 1 per sample"):
        unit.fit(INPUTS, [0, 1, 2, 1])
    with pytest.raises(ValueError, match="y must hold one 0 or 1 per sample"):
        unit.fit(INPUTS, [0, 1])
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        unit.fit(INPUTS, GATES["and"], epochs=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        nn.Perceptron(2, lr=0.0)
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        nn.Perceptron(0)


# ----- an MLP learns XOR -----------------------------------------------------------------------------
def _train_xor_mlp(seed: int, hidden: int = 4, steps: int = 300, lr: float = 3.0) -> float:
    """Linear -> tanh -> Linear -> sigmoid, MSE, full-batch gradient descent written out."""
    g = nurinet.Generator(seed)
    first, second = nn.Linear(2, hidden, generator=g), nn.Linear(hidden, 1, generator=g)
    params = [*first.parameters(), *second.parameters()]
    x, y = Tensor(INPUTS), Tensor(np.array([[0], [1], [1], [0]], np.float32))
    for _ in range(steps):
        prob = 1.0 / (1.0 + F.exp(-second(F.tanh(first(x)))))
        loss = ((prob - y) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        for p in params:
            p.array -= lr * p.grad.array
    prob = 1.0 / (1.0 + F.exp(-second(F.tanh(first(x)))))
    return float(((prob.array > 0.5) == (y.array > 0.5)).mean())


def test_mlp_learns_xor_for_most_seeds() -> None:
    accuracies = [_train_xor_mlp(seed) for seed in range(10)]
    assert sum(a == 1.0 for a in accuracies) >= 9, accuracies


def test_stacked_linear_layers_without_activation_stay_linear() -> None:
    # Two Linear layers compose to one affine map: no non-linearity, no XOR.
    model = nn.Sequential(nn.Linear(2, 8), nn.Linear(8, 1))
    x = Tensor(INPUTS)
    y = model(x).array.ravel()
    assert math.isclose(y[0] + y[3], y[1] + y[2], abs_tol=1e-5)  # affine: f(00)+f(11) = f(01)+f(10)


# ----- layers added with the training-path and study-note work -----------------------------------
def test_output_layer_passes_the_harness() -> None:
    layer = nn.OutputLayer(4, 3, activation="softmax", loss="MCXENT")
    check_layer(layer, (5, 4), (5, 3), expected_param_count=4 * 3 + 3)


def test_activity_regularization_and_keras_hard_sigmoid_pass_the_harness() -> None:
    check_layer(nn.ActivityRegularization(l1=1e-3), (5, 4), (5, 4), expected_param_count=0)
    check_layer(nn.HardsigmoidKeras(), (5, 4), (5, 4), expected_param_count=0)


def test_probabilistic_max_pool_passes_the_harness() -> None:
    from nurinet.models.cdbn import ProbabilisticMaxPool2d

    check_layer(ProbabilisticMaxPool2d(2), (2, 3, 4, 6), (2, 3, 2, 3), expected_param_count=0)
