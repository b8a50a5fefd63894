"""Ensembles: probability averaging, majority vote, training members from seeds."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet.training import Model
from nurinet.training.ensemble import Ensemble, train_ensemble


class Fixed:
    """A stand-in member whose predictions are given."""

    def __init__(self, outputs: np.ndarray) -> None:
        self.outputs = np.asarray(outputs, dtype=np.float32)

    def predict(self, x: object) -> np.ndarray:
        return self.outputs


def test_average_and_vote_closed_form() -> None:
    a = Fixed([[0.6, 0.4], [0.1, 0.9], [0.55, 0.45]])
    b = Fixed([[0.6, 0.4], [0.8, 0.2], [0.55, 0.45]])
    c = Fixed([[0.0, 1.0], [0.7, 0.3], [0.0, 1.0]])
    average = Ensemble([a, b, c], "average", from_logits=False)
    np.testing.assert_allclose(average.predict_proba(None)[:, 1], [0.6, 1.4 / 3, 1.9 / 3], rtol=1e-6)
    np.testing.assert_array_equal(average.predict(None), [1, 0, 1])
    vote = Ensemble([a, b, c], "vote", from_logits=False)
    np.testing.assert_array_equal(vote.predict(None), [0, 0, 0])  # two of three say class 0
    np.testing.assert_allclose(vote.predict_proba(None)[:, 0], [2 / 3, 2 / 3, 2 / 3])
    weighted = Ensemble([a, b, c], "vote", weights=[1, 1, 3], from_logits=False)
    np.testing.assert_array_equal(weighted.predict(None), [1, 0, 1])


def test_vote_tie_goes_to_higher_average_probability() -> None:
    a = Fixed([[0.9, 0.1]])
    b = Fixed([[0.4, 0.6]])
    assert Ensemble([a, b], "vote", from_logits=False).predict(None).tolist() == [0]
    assert Ensemble([Fixed([[0.6, 0.4]]), Fixed([[0.1, 0.9]])], "vote",
                    from_logits=False).predict(None).tolist() == [1]


def test_logits_and_binary_outputs() -> None:
    logits = np.array([[2.0, 0.0, -1.0]])
    probs = np.exp(logits) / np.exp(logits).sum()
    ens = Ensemble([Fixed(logits)])
    np.testing.assert_allclose(ens.predict_proba(None), probs, rtol=1e-6)
    binary = Ensemble([Fixed([[0.0], [3.0]]), Fixed([[-1.0], [1.0]])])

    def sig(v: float) -> float:
        return 1 / (1 + np.exp(-v))

    np.testing.assert_allclose(binary.predict_proba(None)[:, 1], [(0.5 + sig(-1)) / 2,
                                                                 (sig(3) + sig(1)) / 2], rtol=1e-6)


def test_ensemble_errors() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([])
    with pytest.raises(ValueError, match="method must be one of"):
        Ensemble([Fixed([[1.0, 0.0]])], "median")
    with pytest.raises(TypeError, match="has no predict"):
        Ensemble([object()])
    with pytest.raises(ValueError, match="weights must be 2"):
        Ensemble([Fixed([[1.0, 0.0]])] * 2, weights=[1.0])
    with pytest.raises(ValueError, match="differ in shape"):
        Ensemble([Fixed([[1.0, 0.0]]), Fixed([[1.0, 0.0, 0.0]])]).predict(None)
    with pytest.raises(ValueError, match="2 seeds given for n=3"):
        train_ensemble(lambda: None, 3, None, None, seeds=[1, 2])


def test_train_ensemble_on_digits() -> None:
    x, y = nt.data.load_digits(normalize=True)
    x_train, y_train, x_test, y_test = x[:300], y[:300], x[1000:1400], y[1000:1400]

    def build() -> Model:
        model = Model(nn.Sequential(nn.Linear(64, 32, activation="tanh"), nn.Linear(32, 10)))
        model.compile("adam", "cross_entropy", metrics=["accuracy"], lr=0.01)
        return model

    ens = train_ensemble(build, 3, x_train, y_train, seeds=[0, 1, 2],
                         fit_kwargs={"epochs": 8, "batch_size": 32})
    assert len(ens) == 3
    first = ens.members[0].network[0].weight.array
    assert not np.allclose(first, ens.members[1].network[0].weight.array)
    scores = ens.evaluate(x_test, y_test)
    for member, acc in zip(ens.members, scores["members"], strict=True):
        assert acc == pytest.approx(member.evaluate(x_test, y_test)["accuracy"])
    assert scores["ensemble"] >= min(scores["members"])
    assert scores["ensemble"] > 0.7
    again = train_ensemble(build, 1, x_train, y_train, seeds=[0], fit_kwargs={"epochs": 8, "batch_size": 32})
    np.testing.assert_allclose(again.members[0].network[0].weight.array, first)  # seeded: reproducible
    text = ens.report(x_test, y_test)
    assert "member 2" in text and "ensemble (average, 3 members)" in text
