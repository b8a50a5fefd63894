"""Weight penalties and constraints: exact values, gradients, and that Model.fit uses them."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet.nn.regularizers import (
    L1,
    L1L2,
    L2,
    Clip,
    MaxNorm,
    MaxValue,
    MinMaxNorm,
    NonNeg,
    UnitNorm,
    add_constraint,
    add_regularizer,
    apply_constraints,
    has_regularizers,
    regularization_loss,
)
from nurinet.training import Model

W = np.array([[1.0, -2.0, 0.5], [-0.25, 0.0, 3.0]])


def param(values: np.ndarray = W, dtype=np.float64) -> nt.Parameter:
    return nt.Parameter(values.astype(dtype))


@pytest.mark.parametrize("reg, value, grad", [
    (L1(0.1), 0.1 * np.abs(W).sum(), 0.1 * np.sign(W)),
    (L2(0.01), 0.01 * (W**2).sum(), 0.02 * W),
    (L1L2(0.1, 0.01), 0.1 * np.abs(W).sum() + 0.01 * (W**2).sum(), 0.1 * np.sign(W) + 0.02 * W),
    (L1L2(), 0.0, np.zeros_like(W)),
])
def test_penalty_values_and_gradients(reg, value: float, grad: np.ndarray) -> None:
    w = param()
    penalty = reg(w)
    assert penalty.item() == pytest.approx(value, rel=1e-12)
    penalty.backward()
    np.testing.assert_allclose(w.grad.array, grad, rtol=1e-12)


def test_penalty_keeps_float32() -> None:
    assert L1L2(0.1, 0.1)(param(dtype=np.float32)).dtype == np.float32


def test_regularization_loss_sums_over_a_model() -> None:
    nt.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    assert not has_regularizers(net) and regularization_loss(net).item() == 0.0
    add_regularizer(net[0], "weight", L2(0.5))
    add_regularizer(net[2], "bias", L1(0.25))
    assert has_regularizers(net)
    w0, b2 = net[0].weight.array, net[2].bias.array
    total = regularization_loss(net)
    assert total.item() == pytest.approx(0.5 * (w0**2).sum() + 0.25 * np.abs(b2).sum(), rel=1e-6)
    total.backward()
    np.testing.assert_allclose(net[0].weight.grad.array, w0, rtol=1e-6)
    np.testing.assert_allclose(net[2].bias.grad.array, 0.25 * np.sign(b2))
    assert net[2].weight.grad is None
    assert "_regularizers" not in str(net.state_dict().keys())
    assert has_regularizers(copy.deepcopy(net))


@pytest.mark.parametrize("constraint, expected", [
    (NonNeg(), np.maximum(W, 0)),
    (MaxValue(1.0), np.minimum(W, 1.0)),
    (Clip(-0.5, 0.75), np.clip(W, -0.5, 0.75)),
    # row norms are sqrt(5.25) ~ 2.29 and sqrt(9.0625) ~ 3.01: only the second row is scaled
    (MaxNorm(2.5), np.stack([W[0], W[1] * 2.5 / np.sqrt(9.0625)])),
    (MaxNorm(1.0, axis=0), W / np.maximum(np.sqrt((W**2).sum(0)), 1.0)),
    (UnitNorm(), W / np.sqrt((W**2).sum(1, keepdims=True))),
    (MinMaxNorm(2.5, 2.8), np.stack([W[0] * 2.5 / np.sqrt(5.25), W[1] * 2.8 / np.sqrt(9.0625)])),
    (MinMaxNorm(2.5, 2.8, rate=0.5),
     np.stack([W[0] * (1.25 + 0.5 * np.sqrt(5.25)) / np.sqrt(5.25),
               W[1] * (1.4 + 0.5 * np.sqrt(9.0625)) / np.sqrt(9.0625)])),
])
def test_constraint_results(constraint, expected: np.ndarray) -> None:
    w = W.copy()
    constraint(w)
    np.testing.assert_allclose(w, expected, rtol=1e-12)


def test_norm_constraints_leave_zero_units_and_keep_float32() -> None:
    w = np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)
    UnitNorm()(w)
    np.testing.assert_allclose(w, [[0, 0], [0.6, 0.8]], rtol=1e-6)
    MaxNorm(0.5)(w)
    MinMaxNorm(0.1, 0.2)(w)
    assert w.dtype == np.float32 and np.all(np.isfinite(w))


def test_apply_constraints_projects_every_attached_parameter() -> None:
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    net[0].weight.array[...] = W
    net[1].bias.array[...] = [-1.0, 2.0]
    add_constraint(net[0], "weight", MaxNorm(1.0))
    add_constraint(net[1], "bias", NonNeg())
    apply_constraints(net)
    np.testing.assert_allclose(np.linalg.norm(net[0].weight.array, axis=1), [1.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(net[1].bias.array, [0.0, 2.0])


def make_model(seed: int = 0) -> Model:
    nt.manual_seed(seed)
    return Model(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)))


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    return x, (x.sum(1, keepdims=True) * 3).astype(np.float32)


def test_fit_adds_the_penalty_to_the_loss_and_logs_it() -> None:
    x, y = data()
    model = make_model()
    add_regularizer(model.network[0], "weight", L2(0.1))
    model.compile(optimizer="sgd", loss="mse", lr=0.0)  # lr 0: the weights stay put
    history = model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    penalty = 0.1 * (model.network[0].weight.array.astype(np.float64) ** 2).sum()
    assert history.history["regularization"][0] == pytest.approx(penalty, rel=1e-5)
    plain = nn.MSELoss()(model(nt.tensor(x)), nt.tensor(y)).item()
    assert history.history["loss"][0] == pytest.approx(plain + penalty, rel=1e-5)
    assert model.evaluate(x, y)["regularization"] == pytest.approx(penalty, rel=1e-5)


def test_fit_without_regularizers_logs_no_regularization() -> None:
    x, y = data()
    model = make_model()
    model.compile(optimizer="sgd", loss="mse", lr=0.01)
    assert "regularization" not in model.fit(x, y, epochs=1, verbose=0).history


def test_l2_penalty_shrinks_the_weights_in_training() -> None:
    x, y = data()
    free, decayed = make_model(), make_model()
    add_regularizer(decayed.network[0], "weight", L2(0.05))
    for model in (free, decayed):
        model.compile(optimizer="sgd", loss="mse", lr=0.01)
        model.fit(x, y, batch_size=16, epochs=5, verbose=0)
    assert np.abs(decayed.network[0].weight.array).sum() < np.abs(free.network[0].weight.array).sum()


def test_fit_applies_constraints_after_each_step() -> None:
    x, y = data()
    model = make_model()
    add_constraint(model.network[0], "weight", MaxNorm(0.5))
    add_constraint(model.network[2], "weight", NonNeg())
    model.compile(optimizer="sgd", loss="mse", lr=0.05)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert np.linalg.norm(model.network[0].weight.array, axis=1).max() <= 0.5 + 1e-6
    assert model.network[2].weight.array.min() >= 0.0


def test_attaching_errors() -> None:
    layer = nn.Linear(2, 2, bias=False)
    with pytest.raises(KeyError, match="no parameter 'bias'.*'weight'"):
        add_regularizer(layer, "bias", L2())
    with pytest.raises(KeyError, match="no parameter 'kernel'"):
        add_constraint(layer, "kernel", NonNeg())
    with pytest.raises(TypeError, match="Regularizer"):
        add_regularizer(layer, "weight", 0.01)
    with pytest.raises(TypeError, match="Constraint"):
        add_constraint(layer, "weight", L2())
    with pytest.raises(TypeError, match="Module"):
        add_regularizer(np.zeros(2), "weight", L2())


@pytest.mark.parametrize("build, match", [
    (lambda: L2(-1.0), "l2 must be a finite number >= 0"),
    (lambda: L1(float("nan")), "l1"),
    (lambda: L1L2(l1="0.1"), "l1"),
    (lambda: MaxNorm(0.0), "max_value"),
    (lambda: Clip(), "min_value, max_value or both"),
    (lambda: Clip(1.0, 0.0), "above max_value"),
    (lambda: MinMaxNorm(2.0, 1.0), "min_value <= max_value"),
    (lambda: MinMaxNorm(rate=0.0), "rate"),
])
def test_bad_arguments(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_attachments_made_between_fits_are_picked_up() -> None:
    x, y = data()
    model = make_model()
    model.compile(optimizer="sgd", loss="mse", lr=0.01)
    assert "regularization" not in model.fit(x, y, epochs=1, verbose=0).history
    add_regularizer(model.network[2], "weight", L1(0.5))
    add_constraint(model.network[2], "weight", MaxValue(-1.0))
    history = model.fit(x, y, epochs=1, verbose=0).history
    assert history["regularization"][0] > 0
    assert model.network[2].weight.array.max() <= -1.0
    assert model.__dict__.get("_attachment_cache") is None  # nothing cached outside fit
