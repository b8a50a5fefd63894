"""Activity regularization (Keras's ``activity_regularizer``, ``ActivityRegularization``) and the
sparse autoencoder's KL penalty: values by hand, gradients by gradcheck, the loss of ``Model.fit``."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nurinet
from nurinet import Tensor, nn
from nurinet.autograd.gradcheck import gradcheck
from nurinet.nn.regularizers import (
    L1,
    L1L2,
    KLSparsity,
    add_activity_penalties,
    get_regularizer,
)
from nurinet.training import Model


def _kl_by_hand(rho: float, activations: np.ndarray) -> float:
    total = 0.0
    for q in activations.mean(axis=0).ravel():
        total += rho * math.log(rho / q) + (1 - rho) * math.log((1 - rho) / (1 - q))
    return total


def test_linear_activity_penalty_is_l1_l2_of_its_output_over_the_batch() -> None:
    layer = nn.Linear(3, 4, activation="tanh", dtype=np.float64, activity_regularizer=L1L2(l1=0.01, l2=0.1))
    x = np.random.default_rng(0).standard_normal((5, 3))
    y = layer(x).array
    penalty = add_activity_penalties(layer)
    assert penalty.item() == pytest.approx((0.01 * np.abs(y).sum() + 0.1 * (y**2).sum()) / 5)
    assert add_activity_penalties(layer) is None  # collected once


def test_activity_regularization_layer_is_the_identity_with_a_penalty() -> None:
    layer = nn.ActivityRegularization(l1=0.5)
    x = np.array([[1.0, -2.0], [0.5, 0.0]])
    np.testing.assert_array_equal(layer(x).array, x)
    assert add_activity_penalties(layer).item() == pytest.approx(0.5 * 3.5 / 2)
    assert repr(layer) == "ActivityRegularization(l1=0.5, l2=0)"
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0"):
        nn.ActivityRegularization(l2=-1.0)


def test_conv_layers_take_an_activity_regularizer() -> None:
    x = np.random.default_rng(1).standard_normal((2, 1, 5, 5))
    for layer in (nn.Conv2d(1, 2, 3, dtype=np.float64, activity_regularizer=L1(0.1)),
                  nn.ConvTranspose2d(1, 2, 3, dtype=np.float64, activity_regularizer=L1(0.1))):
        y = layer(x).array
        assert add_activity_penalties(layer).item() == pytest.approx(0.1 * np.abs(y).sum() / 2)
        assert "activity_regularizer=L1(l1=0.1, l2=0)" in repr(layer)
    conv1d = nn.Conv1d(2, 3, 2, dtype=np.float64, activity_regularizer=L1(0.1))
    y = conv1d(np.ones((4, 2, 6))).array
    assert add_activity_penalties(conv1d).item() == pytest.approx(0.1 * np.abs(y).sum() / 4)


def test_activity_regularizer_must_be_a_regularizer() -> None:
    with pytest.raises(TypeError, match="activity_regularizer must be a Regularizer"):
        nn.Linear(2, 2, activity_regularizer=0.01)
    with pytest.raises(TypeError, match="Conv2d: activity_regularizer"):
        nn.Conv2d(1, 1, 3, activity_regularizer="l1")


def test_kl_sparsity_by_hand() -> None:
    a = np.array([[0.1, 0.8, 0.3], [0.3, 0.6, 0.05]])
    assert KLSparsity(rho=0.2, beta=3.0)(Tensor(a)).item() == pytest.approx(3.0 * _kl_by_hand(0.2, a))
    assert KLSparsity(rho=0.25)(Tensor(np.full((4, 2), 0.25))).item() == pytest.approx(0.0, abs=1e-12)
    # As an activity regularizer the KL term is already a batch mean: not divided again.
    layer = nn.Linear(3, 2, activation="sigmoid", dtype=np.float64, activity_regularizer=KLSparsity(0.1, 2.0))
    out = layer(np.random.default_rng(2).standard_normal((6, 3))).array
    assert add_activity_penalties(layer).item() == pytest.approx(2.0 * _kl_by_hand(0.1, out))


def test_kl_sparsity_checks_and_name() -> None:
    with pytest.raises(ValueError, match="rho must lie in"):
        KLSparsity(rho=1.0)
    with pytest.raises(ValueError, match="beta must be"):
        KLSparsity(beta=-1)
    assert get_regularizer("kl_sparsity") is KLSparsity


def test_gradients_of_the_penalties_by_gradcheck() -> None:
    rng = np.random.default_rng(3)
    a = Tensor(rng.uniform(0.1, 0.9, (4, 3)), requires_grad=True)
    assert gradcheck(lambda t: KLSparsity(0.05, 1.5)(t), [a])
    x = Tensor(rng.standard_normal((5, 3)))
    w = Tensor(rng.standard_normal((2, 3)), requires_grad=True)

    def penalty_through_a_sigmoid_layer(weight: Tensor) -> Tensor:
        out = nurinet.functional.sigmoid(x @ weight.T)
        return KLSparsity(0.2).activity_penalty(out) + L1L2(0.1, 0.2).activity_penalty(out)

    assert gradcheck(penalty_through_a_sigmoid_layer, [w])


def _regression(activity_regularizer: object) -> tuple[Model, np.ndarray, np.ndarray]:
    g = nurinet.Generator(0)
    net = nn.Sequential(nn.Linear(4, 8, activation="sigmoid", generator=g, dtype=np.float64,
                                  activity_regularizer=activity_regularizer),
                        nn.Linear(8, 1, generator=g, dtype=np.float64))
    model = Model(net)
    model.compile(optimizer="sgd", loss="mse", lr=0.1)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((32, 4))
    return model, x, x[:, :1] * 0.5


def test_model_adds_the_activity_penalty_to_its_loss_and_logs() -> None:
    model, x, y = _regression(KLSparsity(0.05, 0.5))
    hidden = model.network[0]
    with nurinet.no_grad():
        h = hidden(x).array
        mse = float(((model.network[1](h).array - y) ** 2).mean())
    add_activity_penalties(model)  # forget what this check's forward recorded
    logs = model.evaluate(x, y, batch_size=32)
    assert logs["loss"] == pytest.approx(mse + 0.5 * _kl_by_hand(0.05, h))
    assert logs["regularization"] == pytest.approx(0.5 * _kl_by_hand(0.05, h))
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert len(history.history["regularization"]) == 2 and history.history["regularization"][0] > 0


def test_kl_penalty_drives_the_mean_activation_toward_rho() -> None:
    means = {}
    for name, regularizer in (("none", None), ("kl", KLSparsity(0.05, 1.0))):
        model, x, y = _regression(regularizer)
        model.fit(x, y, batch_size=8, epochs=30, verbose=0)
        with nurinet.no_grad():
            means[name] = float(model.network[0](x).array.mean())
    assert means["kl"] < 0.2 < means["none"]


def test_sparse_autoencoder_example_quick(tmp_path) -> None:
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "sparse_autoencoder.py"
    spec = importlib.util.spec_from_file_location("_example_sparse_autoencoder", path)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example
    spec.loader.exec_module(example)
    runs = example.main(["--quick", "--out", str(tmp_path / "r.json")])["runs"]
    assert runs["kl"]["test"]["fraction_below_0.1"] > runs["none"]["test"]["fraction_below_0.1"]
    assert runs["kl"]["final_regularization_log"] > 0 and runs["none"]["final_regularization_log"] is None
    assert (tmp_path / "r.json").is_file()
