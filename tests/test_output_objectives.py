"""The training path tells the truth: output layers and their losses, probabilities, thresholds.

Every loss name of DL4J, Keras and PyTorch trains the objective it means; each case below
computes the loss by hand from the network's logits (or outputs) and compares it with what
``evaluate`` reports. Accuracies are compared with hand-thresholded probabilities.
"""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet import config, nn
from nurinet.functional.loss_registry import LOSSES, loss_info
from nurinet.training import Model, evaluate_report

RNG = np.random.default_rng(7)
X = RNG.normal(size=(48, 5)).astype(np.float32)
CLASSES = RNG.integers(0, 3, 48)
LABELS = RNG.integers(0, 2, (48, 4))


def _built(activation: str | None, loss: str, units: int) -> Model:
    output = {"type": "Output", "units": units, "loss": loss}
    if activation is not None:
        output["activation"] = activation
    layers = [{"type": "Dense", "units": 8, "activation": "tanh"}, output]
    return config.build({"seed": 3, "model": {"input_size": 5, "layers": layers}}).model


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    return z - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True)) - z.max(1, keepdims=True)


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z.astype(np.float64))


# ----- one-class-per-sample outputs ---------------------------------------------------------
SOFTMAX_NAMES = ["MCXENT", "NEGATIVELOGLIKELIHOOD", "negative_log_likelihood", "nll", "nll_loss",
                 "NLLLoss", "categorical_crossentropy", "sparse_categorical_crossentropy",
                 "SPARSE_MCXENT", "cross_entropy", "CrossEntropyLoss", "cce", "scce"]


@pytest.mark.parametrize("name", SOFTMAX_NAMES)
@pytest.mark.parametrize("one_hot", [False, True])
def test_softmax_output_trains_the_log_likelihood(name: str, one_hot: bool) -> None:
    model = _built("softmax", name, 3)
    z = model.predict(X, logits=True)
    expected = -_log_softmax(z)[np.arange(len(X)), CLASSES].mean()
    target = np.eye(3, dtype=np.float32)[CLASSES] if one_hot else CLASSES
    if one_hot and "nll" in name.lower() or one_hot and name == "NEGATIVELOGLIKELIHOOD":
        target = np.eye(3, dtype=np.float32)[CLASSES]
    assert model.evaluate(X, target)["loss"] == pytest.approx(expected, rel=1e-5)
    proba = model.predict(X)
    np.testing.assert_allclose(proba, np.exp(_log_softmax(z)), rtol=1e-5, atol=1e-7)


def test_softmax_output_gradient_is_the_fused_one() -> None:
    """The loss of a softmax output is computed from its logits: d loss / d z = (p - t) / N."""
    z = nt.tensor(RNG.normal(size=(6, 3)) * 30.0, requires_grad=True)  # saturated rows
    y = np.array([0, 1, 2, 0, 1, 2])
    loss = F.get_loss("MCXENT")(F.softmax(z), y)
    loss.backward()
    p = np.exp(_log_softmax(z.array))
    np.testing.assert_allclose(z.grad.array, (p - np.eye(3)[y]) / 6, rtol=1e-10, atol=1e-12)
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(
        -_log_softmax(z.array)[np.arange(6), y].mean(), rel=1e-12)


def test_keras_habit_final_softmax_is_not_applied_twice() -> None:
    network = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=-1))
    for loss in ("sparse_categorical_crossentropy", "categorical_crossentropy", "nll"):
        model = Model(network)
        model.compile("sgd", loss, metrics=["accuracy"])
        proba = model.predict(X)
        target = np.eye(3)[CLASSES] if loss == "categorical_crossentropy" else CLASSES
        logs = model.evaluate(X, target)
        assert logs["loss"] == pytest.approx(-np.log(proba[np.arange(48), CLASSES]).mean(), rel=1e-5)
        assert logs["accuracy"] == pytest.approx((proba.argmax(1) == CLASSES).mean())


def test_keras_habit_trains_like_the_logits_network() -> None:
    """A network ending in nn.Softmax trains the same objective as one ending in logits."""
    def trained(with_softmax: bool) -> float:
        nt.manual_seed(0)
        layers = [nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)] + ([nn.Softmax()] if with_softmax else [])
        model = Model(nn.Sequential(*layers))
        model.compile("sgd", "sparse_categorical_crossentropy", lr=0.5)
        model.fit(X, CLASSES, epochs=3, batch_size=16, shuffle=False, verbose=0)
        return model.evaluate(X, CLASSES)["loss"]

    assert trained(True) == pytest.approx(trained(False), rel=1e-5)


def test_network_ending_in_logits_works_as_before() -> None:
    model = Model(nn.Sequential(nn.Linear(5, 3)))
    model.compile("sgd", "categorical_crossentropy", metrics=["accuracy"])
    z = model.predict(X)
    assert model.evaluate(X, CLASSES)["loss"] == pytest.approx(
        -_log_softmax(z)[np.arange(48), CLASSES].mean(), rel=1e-5)
    np.testing.assert_allclose(model.predict_proba(X), np.exp(_log_softmax(z)), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(model.predict_classes(X), z.argmax(1))


class Normalized(nn.Module):
    """Probabilities made without F.softmax, so nothing records their logits."""

    def forward(self, x):
        e = F.exp(x)
        return e / F.sum(e, axis=1, keepdims=True)


def normalized_model(in_features: int) -> Model:
    model = Model(nn.Sequential(nn.Linear(in_features, 3), Normalized()))
    model.compile("sgd", "categorical_crossentropy", from_logits=False)
    return model


def test_from_logits_false_takes_probabilities_made_another_way() -> None:
    model = normalized_model(5)
    p = model.predict(X)
    expected = -np.log(np.clip(p[np.arange(48), CLASSES], 1e-7, 1 - 1e-7)).mean()
    assert model.evaluate(X, CLASSES)["loss"] == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(model.predict_proba(X), p)


def test_kl_divergence_of_a_softmax_output() -> None:
    model = _built("softmax", "KL_DIVERGENCE", 3)
    soft = RNG.dirichlet(np.ones(3), size=48).astype(np.float32)
    logp = _log_softmax(model.predict(X, logits=True))
    expected = (soft * (np.log(np.clip(soft, 1e-7, 1)) - logp)).sum(1).mean()
    assert model.evaluate(X, soft)["loss"] == pytest.approx(expected, rel=1e-4)


# ----- sigmoid outputs ----------------------------------------------------------------------
SIGMOID_NAMES = ["XENT", "binary_crossentropy", "bce", "BCELoss", "binary_cross_entropy",
                 "reconstruction_crossentropy", "bce_with_logits", "BCEWithLogitsLoss"]


@pytest.mark.parametrize("name", SIGMOID_NAMES)
def test_sigmoid_output_binary_cross_entropy_from_logits(name: str) -> None:
    model = _built("sigmoid", name, 1)
    y = CLASSES % 2
    z = model.predict(X, logits=True)[:, 0].astype(np.float64)
    expected = np.mean(_softplus(z) - y * z)
    logs = model.evaluate(X, y)
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    p = model.predict(X)[:, 0]
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-z)), rtol=1e-5)
    assert logs["accuracy"] == pytest.approx(((p > 0.5) == y).mean())
    np.testing.assert_array_equal(model.predict_classes(X), (p > 0.5).astype(int))
    np.testing.assert_allclose(model.predict_proba(X)[:, 0], p)


def test_sigmoid_accuracy_thresholds_probabilities_not_logits() -> None:
    """A network ending in logits with a sigmoid loss: the accuracy thresholds sigmoid(z) at 0.5."""
    nt.manual_seed(1)
    model = Model(nn.Sequential(nn.Linear(5, 1)))
    model.compile("sgd", "bce_with_logits", metrics=["accuracy", "binary_accuracy"])
    y = (X[:, 0] > 0.3).astype(np.int64)
    z = model.predict(X)[:, 0]
    p = 1 / (1 + np.exp(-z))
    logs = model.evaluate(X, y)
    assert logs["accuracy"] == pytest.approx(((p > 0.5) == y).mean())
    assert logs["binary_accuracy"] == pytest.approx(((p > 0.5) == y).mean())
    report = evaluate_report(model, X, y)
    assert report.accuracy == pytest.approx(((p > 0.5) == y).mean())


def test_multi_label_accuracy_is_per_label() -> None:
    for network in (nn.Sequential(nn.Linear(5, 4), nn.Sigmoid()), nn.Sequential(nn.Linear(5, 4))):
        model = Model(network)
        loss = "binary_crossentropy" if len(network) == 2 else "bce_with_logits"
        model.compile("sgd", loss, metrics=["accuracy"])
        p = model.predict_proba(X)
        assert model.evaluate(X, LABELS)["accuracy"] == pytest.approx(((p > 0.5) == LABELS).mean())
        thresholds = np.array([0.3, 0.5, 0.6, 0.45])
        np.testing.assert_array_equal(model.predict_classes(X, threshold=thresholds),
                                      (p > thresholds).astype(int))


def test_multi_label_threshold_per_label_in_metric() -> None:
    from nurinet.training import BinaryAccuracy

    p = RNG.uniform(size=(10, 3))
    y = RNG.integers(0, 2, (10, 3))
    metric = BinaryAccuracy(threshold=[0.2, 0.5, 0.8])
    metric.update_state(p, y)
    assert metric.result() == pytest.approx(((p > [0.2, 0.5, 0.8]) == y).mean())
    with pytest.raises(ValueError, match="2 thresholds"):
        BinaryAccuracy(threshold=[0.2, 0.5]).update_state(p, y)


# ----- values -------------------------------------------------------------------------------
def _values_case(name: str) -> tuple[np.ndarray, object]:
    target = RNG.uniform(0.5, 2.0, size=(48, 2)).astype(np.float32)
    hand = {
        "MSE": lambda p, t: ((p - t) ** 2).mean(),
        "L2": lambda p, t: ((p - t) ** 2).sum(1).mean(),
        "SQUARED_LOSS": lambda p, t: ((p - t) ** 2).sum(1).mean(),
        "L1": lambda p, t: np.abs(p - t).mean(),
        "MEAN_ABSOLUTE_ERROR": lambda p, t: np.abs(p - t).mean(),
        "mape": lambda p, t: (100 * np.abs(t - p) / np.abs(t)).mean(),
        "MEAN_SQUARED_LOGARITHMIC_ERROR":
            lambda p, t: ((np.log1p(np.clip(p, 1e-7, None)) - np.log1p(t)) ** 2).mean(),
        "huber": lambda p, t: np.where(np.abs(p - t) < 1, 0.5 * (p - t) ** 2, np.abs(p - t) - 0.5).mean(),
        "log_cosh": lambda p, t: np.log(np.cosh(p - t)).mean(),
        "COSINE_PROXIMITY": lambda p, t: -(
            (p / np.linalg.norm(p, axis=1, keepdims=True)) * (t / np.linalg.norm(t, axis=1, keepdims=True))
        ).sum(1).mean(),
        "WASSERSTEIN": lambda p, t: (p * t).mean(),
        "poisson_nll_loss": lambda p, t: (np.exp(p) - t * p).mean(),
    }[name]
    return target, hand


@pytest.mark.parametrize("name", ["MSE", "L2", "SQUARED_LOSS", "L1", "MEAN_ABSOLUTE_ERROR", "mape",
                                  "MEAN_SQUARED_LOGARITHMIC_ERROR", "huber", "log_cosh",
                                  "COSINE_PROXIMITY", "WASSERSTEIN", "poisson_nll_loss"])
def test_regression_output_losses_by_hand(name: str) -> None:
    model = _built("identity", name, 2)
    target, hand = _values_case(name)
    p = model.predict(X).astype(np.float64)
    assert model.evaluate(X, target)["loss"] == pytest.approx(hand(p, target.astype(np.float64)),
                                                              rel=1e-4, abs=1e-6)


def test_poisson_after_softplus_and_hinge_with_signed_targets() -> None:
    model = _built("softplus", "POISSON", 2)
    t = RNG.integers(0, 4, size=(48, 2)).astype(np.float32)
    p = model.predict(X).astype(np.float64)
    assert model.evaluate(X, t)["loss"] == pytest.approx((p - t * np.log(p + 1e-7)).mean(), rel=1e-4)
    signed = np.where(LABELS[:, :2] > 0, 1.0, -1.0).astype(np.float32)
    for name, power in (("HINGE", 1), ("SQUARED_HINGE", 2)):
        model = _built("identity", name, 2)
        s = model.predict(X).astype(np.float64)
        expected = (np.maximum(0, 1 - signed * s) ** power).mean()
        assert model.evaluate(X, signed)["loss"] == pytest.approx(expected, rel=1e-5)
    model = _built("identity", "categorical_hinge", 3)
    s = model.predict(X).astype(np.float64)
    onehot = np.eye(3)[CLASSES]
    pos, neg = (onehot * s).sum(1), ((1 - onehot) * s).max(1)
    assert model.evaluate(X, onehot.astype(np.float32))["loss"] == pytest.approx(
        np.maximum(0, neg - pos + 1).mean(), rel=1e-5)


def test_regression_output_has_no_probabilities() -> None:
    model = _built("identity", "mse", 2)
    with pytest.raises(ValueError, match="plain values"):
        model.predict_proba(X)
    with pytest.raises(ValueError, match="plain values"):
        model.predict_classes(X)


# ----- pairings and names -------------------------------------------------------------------
@pytest.mark.parametrize("activation,loss,hint", [
    ("softmax", "hinge", "identity"), ("softmax", "squared_hinge", "identity"),
    ("sigmoid", "MCXENT", "softmax"), ("sigmoid", "NEGATIVELOGLIKELIHOOD", "softmax"),
    ("softmax", "XENT", "sigmoid"), ("softmax", "bce_with_logits", "sigmoid"),
    ("sigmoid", "sparse_categorical_crossentropy", "softmax"),
])
def test_pairings_that_make_no_sense_are_refused(activation: str, loss: str, hint: str) -> None:
    with pytest.raises(ValueError, match=f"makes no sense.*{hint}"):
        _built(activation, loss, 3)


def test_model_path_refuses_a_bad_pairing_at_the_first_batch() -> None:
    model = Model(nn.Sequential(nn.Linear(5, 3), nn.Softmax()))
    model.compile("sgd", "hinge")
    with pytest.raises(ValueError, match="'hinge' after a softmax output makes no sense"):
        model.fit(X, np.eye(3)[CLASSES], verbose=0)


def test_every_catalog_name_resolves_case_and_punctuation_insensitively() -> None:
    for key, info in LOSSES.items():
        assert loss_info(key.upper()) is info
        assert loss_info(f"{key}-Loss") is info or key.endswith("loss")
    for dl4j in ("MCXENT", "NEGATIVELOGLIKELIHOOD", "XENT", "MSE", "L1", "MEAN_ABSOLUTE_ERROR",
                 "HINGE", "SQUARED_HINGE", "KL_DIVERGENCE", "L2", "POISSON", "COSINE_PROXIMITY",
                 "MEAN_ABSOLUTE_PERCENTAGE_ERROR", "MEAN_SQUARED_LOGARITHMIC_ERROR",
                 "RECONSTRUCTION_CROSSENTROPY", "SPARSE_MCXENT", "WASSERSTEIN", "SQUARED_LOSS"):
        assert loss_info(dl4j) is not None
    for keras in ("categorical_crossentropy", "sparse_categorical_crossentropy",
                  "binary_crossentropy", "mse", "mae", "mape", "msle", "hinge", "squared_hinge",
                  "categorical_hinge", "kld", "kl_divergence", "huber", "log_cosh", "logcosh",
                  "poisson", "cosine_similarity"):
        assert loss_info(keras) is not None
    for torch_name in ("cross_entropy", "nll_loss", "bce", "binary_cross_entropy",
                       "bce_with_logits", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                       "kl_div", "poisson_nll_loss", "HingeLoss", "CosineEmbeddingLoss"):
        assert loss_info(torch_name) is not None
    with pytest.raises(ValueError, match="known loss names: .*mcxent"):
        loss_info("mcxnet")


def test_docs_table_lists_every_loss() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "losses.md").read_text(encoding="utf-8")
    for info in {info.name: info for _key, info in LOSSES.items()}.values():
        assert f"`{info.name}`" in page, f"docs/losses.md does not list {info.name}"
