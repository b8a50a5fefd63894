"""Callbacks, a validation split and early stopping in the scikit-learn estimators, with
scikit-learn's ``MLPClassifier`` meanings (``early_stopping``, ``validation_fraction``,
``n_iter_no_change``, ``tol``, ``validation_scores_``, ``best_validation_score_``)."""

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, train_test_split

from nurinet.sklearn import NeuralNetClassifier, NeuralNetRegressor
from nurinet.training import Callback

RNG = np.random.default_rng(0)
# Two well-separated blobs: the validation accuracy reaches 1 and stays there (a plateau).
BLOBS_X = np.concatenate([RNG.normal(-3, 1, (60, 2)), RNG.normal(3, 1, (60, 2))])
BLOBS_Y = np.repeat(["a", "b"], 60)
# A noisy linear regression trained with a large rate: the validation score wanders.
REG_X = RNG.normal(size=(120, 3))
REG_Y = REG_X @ np.array([1.0, -2.0, 0.5]) + RNG.normal(scale=0.5, size=120)

NEW_PARAMS = {"callbacks": None, "early_stopping": False, "validation_fraction": 0.1,
              "n_iter_no_change": 10, "tol": 1e-4}


class Recorder(Callback):
    """Records the epochs it sees, the logs, and the weights at each epoch's end."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[int] = []
        self.logs: list[dict] = []
        self.weights: list[dict] = []
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.batches += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epochs.append(epoch)
        self.logs.append(dict(logs or {}))
        self.weights.append({k: np.array(v) for k, v in self.model.network.state_dict().items()})


class StopAfter(Callback):
    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch + 1 >= self.epochs:
            self.model.stop_training = True


def weights(estimator) -> dict:  # type: ignore[no-untyped-def]
    return {k: np.array(v) for k, v in estimator.module_.state_dict().items()}


@pytest.mark.parametrize("cls", [NeuralNetClassifier, NeuralNetRegressor])
def test_the_new_parameters_are_stored_as_given_and_cloned(cls) -> None:  # type: ignore[no-untyped-def]
    params = cls().get_params()
    assert {k: params[k] for k in NEW_PARAMS} == NEW_PARAMS
    recorder = Recorder()
    estimator = cls(callbacks=[recorder], early_stopping=True, validation_fraction=0.25, n_iter_no_change=3,
                    tol=0.0)
    copied = clone(estimator)
    assert copied.get_params()["early_stopping"] is True
    assert (copied.validation_fraction, copied.n_iter_no_change, copied.tol) == (0.25, 3, 0.0)
    assert len(copied.callbacks) == 1 and isinstance(copied.callbacks[0], Recorder)
    copied.set_params(early_stopping=False, tol=0.5)
    assert (copied.early_stopping, copied.tol, estimator.early_stopping) == (False, 0.5, True)


def test_early_stopping_stops_on_a_plateau_and_keeps_the_best_epoch() -> None:
    model = NeuralNetClassifier(hidden_layer_sizes=(8,), lr=0.05, epochs=200, batch_size=16, early_stopping=True,
                                validation_fraction=0.2, n_iter_no_change=3, tol=0.0, random_state=0)
    model.fit(BLOBS_X, BLOBS_Y)
    scores = model.validation_scores_
    assert model.n_iter_ < 200 and len(scores) == model.n_iter_ == len(model.loss_curve_)
    best = int(np.argmax(scores))  # the first best epoch: later ones never beat it
    assert model.best_validation_score_ == scores[best] == 1.0
    # scikit-learn's count: stop once n_iter_no_change + 1 epochs in a row did not improve
    assert model.n_iter_ == best + 1 + model.n_iter_no_change + 1


def test_early_stopping_restores_the_weights_of_the_best_epoch() -> None:
    recorder = Recorder()
    model = NeuralNetRegressor(hidden_layer_sizes=(16,), optimizer="sgd", lr=0.08, epochs=300, batch_size=8,
                               early_stopping=True, validation_fraction=0.2, n_iter_no_change=4, tol=0.0,
                               random_state=3, callbacks=[recorder])
    model.fit(REG_X, REG_Y)
    scores = model.validation_scores_
    best = int(np.argmax(scores))
    assert model.n_iter_ < 300
    assert scores[-1] < model.best_validation_score_  # the last epoch was worse: restoring matters
    _, X_val, _, y_val = train_test_split(REG_X, REG_Y, test_size=0.2, random_state=3)
    assert abs(model.score(X_val, y_val) - model.best_validation_score_) <= 1e-12
    assert model.best_validation_score_ == max(scores)
    fitted = model.callbacks_[0]
    kept = weights(model)
    for key, value in fitted.weights[best].items():
        np.testing.assert_array_equal(kept[key], value)
    assert [log["val_score"] for log in fitted.logs] == scores


def test_tol_counts_small_improvements_as_none() -> None:
    common = {"hidden_layer_sizes": (16,), "optimizer": "sgd", "lr": 0.08, "epochs": 300, "batch_size": 8,
              "early_stopping": True, "n_iter_no_change": 2, "random_state": 3}
    strict = NeuralNetRegressor(tol=0.0, **common).fit(REG_X, REG_Y)
    loose = NeuralNetRegressor(tol=0.5, **common).fit(REG_X, REG_Y)
    assert loose.n_iter_ <= strict.n_iter_
    assert loose.n_iter_ == 1 + common["n_iter_no_change"] + 1  # nothing beats the first epoch by 0.5


def test_the_callbacks_see_every_epoch_and_are_copied_for_each_fit() -> None:
    recorder = Recorder()
    model = NeuralNetClassifier(hidden_layer_sizes=(4,), epochs=5, batch_size=30, callbacks=[recorder],
                                random_state=0)
    model.fit(BLOBS_X, BLOBS_Y)
    fitted = model.callbacks_[0]
    assert fitted is not recorder and recorder.epochs == [] and recorder.model is None
    assert fitted.epochs == [0, 1, 2, 3, 4]
    assert fitted.batches == 5 * 4  # 120 samples in batches of 30
    assert [log["loss"] for log in fitted.logs] == model.loss_curve_
    assert all("val_score" not in log for log in fitted.logs)
    model.fit(BLOBS_X, BLOBS_Y)  # a refit starts over with fresh copies
    assert model.callbacks_[0] is not fitted and model.callbacks_[0].epochs == [0, 1, 2, 3, 4]
    copied = clone(model).fit(BLOBS_X, BLOBS_Y)
    assert copied.callbacks_[0].epochs == [0, 1, 2, 3, 4] and fitted.epochs == [0, 1, 2, 3, 4]


def test_a_callback_stops_training() -> None:
    model = NeuralNetRegressor(epochs=50, callbacks=[StopAfter(3)], random_state=0).fit(REG_X, REG_Y)
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3
    assert model.validation_scores_ is None and model.best_validation_score_ is None


def test_the_validation_split_is_stratified() -> None:
    seen: list[np.ndarray] = []

    class Spy(NeuralNetClassifier):
        def score(self, X, y, sample_weight=None):  # type: ignore[no-untyped-def]
            seen.append(np.asarray(y))
            return super().score(X, y, sample_weight)

    X = RNG.normal(size=(100, 3))
    y = np.array(["rare"] * 10 + ["mid"] * 20 + ["common"] * 70)  # a plain 10% split often misses "rare"
    model = Spy(hidden_layer_sizes=(4,), epochs=2, early_stopping=True, validation_fraction=0.1,
                random_state=7).fit(X, y)
    assert len(seen) == model.n_iter_ == 2
    held_out = seen[0]
    assert len(held_out) == 10 and sorted(held_out.tolist()) == ["common"] * 7 + ["mid"] * 2 + ["rare"]
    _, _, _, expected = train_test_split(X, y, test_size=0.1, stratify=y, random_state=7)
    assert sorted(held_out.tolist()) == sorted(expected.tolist())


def test_grid_search_over_early_stopping() -> None:
    search = GridSearchCV(NeuralNetClassifier(hidden_layer_sizes=(8,), lr=0.05, epochs=40, n_iter_no_change=2,
                                              random_state=0),
                          {"early_stopping": [False, True]}, cv=3)
    search.fit(BLOBS_X, BLOBS_Y)
    assert len(search.cv_results_["params"]) == 2
    assert search.best_score_ > 0.9
    with_stopping = clone(search.estimator).set_params(early_stopping=True).fit(BLOBS_X, BLOBS_Y)
    assert with_stopping.n_iter_ < 40


@pytest.mark.parametrize(("params", "error", "words"), [
    ({"validation_fraction": 1.0, "early_stopping": True}, ValueError, "validation_fraction"),
    ({"validation_fraction": 0}, ValueError, "validation_fraction"),
    ({"n_iter_no_change": 0}, ValueError, "n_iter_no_change"),
    ({"tol": -1.0}, ValueError, "tol"),
    ({"early_stopping": "yes"}, ValueError, "early_stopping"),
    ({"callbacks": [object()]}, TypeError, "Callback"),
    ({"callbacks": Recorder()}, TypeError, "list"),
])
def test_bad_parameters_are_refused_at_fit(params, error, words) -> None:  # type: ignore[no-untyped-def]
    model = NeuralNetClassifier(epochs=1, **params)  # stored as given
    with pytest.raises(error, match=words):
        model.fit(BLOBS_X, BLOBS_Y)


def test_too_few_samples_for_a_stratified_split_are_refused() -> None:
    X, y = RNG.normal(size=(6, 2)), np.array([0, 0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match="early_stopping cannot hold out"):
        NeuralNetClassifier(epochs=1, early_stopping=True).fit(X, y)


def test_partial_fit_ignores_early_stopping_and_callbacks() -> None:
    recorder = Recorder()
    model = NeuralNetClassifier(early_stopping=True, callbacks=[recorder], random_state=0)
    model.partial_fit(BLOBS_X, BLOBS_Y)
    model.partial_fit(BLOBS_X, BLOBS_Y)
    assert model.n_iter_ == 2 and recorder.epochs == []
