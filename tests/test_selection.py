"""K-fold splitters, cross-validation and hyperparameter search on Iris and digits."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet.training import Model
from nurinet.training.classification_metrics import F1Score
from nurinet.training.selection import (
    GridSearch,
    KFold,
    RandomSearch,
    StratifiedKFold,
    cross_validate,
    log_uniform,
)


def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = nt.data.load_iris()
    return (x - x.mean(axis=0)) / x.std(axis=0), y


def build(hidden: int = 16, lr: float = 0.05) -> Model:
    model = Model(nn.Sequential(nn.Linear(4, hidden, activation="tanh"), nn.Linear(hidden, 3)))
    model.compile("adam", "cross_entropy", metrics=["accuracy"], lr=lr)
    return model


# ----- splitters --------------------------------------------------------------------------------
def test_kfold_partitions_like_sklearn() -> None:
    folds = list(KFold(3).split(np.zeros(10)))
    assert [len(test) for _, test in folds] == [4, 3, 3]
    np.testing.assert_array_equal(np.concatenate([t for _, t in folds]), np.arange(10))
    for train, test in folds:
        assert set(train) | set(test) == set(range(10)) and not set(train) & set(test)
    model_selection = pytest.importorskip("sklearn.model_selection")
    for (train, test), (ref_train, ref_test) in zip(folds, model_selection.KFold(3).split(np.zeros(10)),
                                                    strict=True):
        np.testing.assert_array_equal(test, ref_test)
        np.testing.assert_array_equal(train, ref_train)


def test_kfold_shuffle_is_seeded() -> None:
    a = KFold(4, shuffle=True, generator=nt.Generator(1)).fold_ids(np.zeros(20))
    b = KFold(4, shuffle=True, generator=nt.Generator(1)).fold_ids(np.zeros(20))
    c = KFold(4, shuffle=True, generator=nt.Generator(2)).fold_ids(np.zeros(20))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.bincount(a).tolist() == [5, 5, 5, 5]


def test_stratified_kfold_keeps_class_shares() -> None:
    y = np.array([0] * 30 + [1] * 12 + [2] * 7)
    splitter = StratifiedKFold(5, shuffle=True, generator=nt.Generator(0))
    tests = [test for _, test in splitter.split(np.zeros(len(y)), y)]
    np.testing.assert_array_equal(np.sort(np.concatenate(tests)), np.arange(len(y)))
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1
    for c, total in [(0, 30), (1, 12), (2, 7)]:
        counts = [np.sum(y[t] == c) for t in tests]
        assert max(counts) - min(counts) <= 1 and sum(counts) == total


def test_splitter_errors() -> None:
    with pytest.raises(ValueError, match="n_splits must be an int >= 2"):
        KFold(1)
    with pytest.raises(ValueError, match="cannot make 5 folds of 3 samples"):
        list(KFold(5).split(np.zeros(3)))
    with pytest.raises(ValueError, match="needs the class labels"):
        list(StratifiedKFold(2).split(np.zeros(4)))
    with pytest.warns(UserWarning, match="smallest class"):
        list(StratifiedKFold(3).split(np.zeros(7), np.array([0, 0, 0, 0, 0, 1, 1])))


# ----- cross-validation -------------------------------------------------------------------------
def test_cross_validate_iris() -> None:
    x, y = iris()
    result = cross_validate(build, x, y, k=3, fit_kwargs={"epochs": 15, "batch_size": 16},
                            metrics=[F1Score(average="macro")], generator=nt.Generator(0),
                            keep_models=True)
    assert len(result.folds) == 3 and len(result.models) == 3
    assert result.models[0] is not result.models[1]
    assert set(result.scores) == {"loss", "accuracy", "f1"}
    assert result.mean["accuracy"] == pytest.approx(np.mean(result.scores["accuracy"]))
    assert result.std["accuracy"] == pytest.approx(np.std(result.scores["accuracy"]))
    assert result.mean["accuracy"] > 0.8
    text = str(result)
    assert "fold 2" in text and "mean" in text and "std" in text


def test_cross_validate_needs_a_compiled_model() -> None:
    x, y = iris()
    with pytest.raises(TypeError, match="compiled nurinet.training.Model"):
        cross_validate(lambda: Model(nn.Linear(4, 3)), x, y, k=2)


# ----- searches ---------------------------------------------------------------------------------
def test_grid_search_ranks_settings_on_iris() -> None:
    x, y = iris()
    nt.manual_seed(0)
    search = GridSearch(build, {"hidden": [2, 16], "lr": [1e-4, 0.05], "epochs": [10]}, cv=2,
                        fit_kwargs={"batch_size": 16}, generator=nt.Generator(0)).fit(x, y)
    assert len(search.results) == 4
    assert sorted(r["rank"] for r in search.results) == [1, 2, 3, 4]
    best = search.best
    assert all(best["mean_score"] >= r["mean_score"] for r in search.results)
    assert search.best_params["lr"] == 0.05  # 10 epochs at lr 1e-4 barely move
    table = search.table()
    assert table.splitlines()[0].split()[:3] == ["rank", "hidden", "lr"]
    assert "mean accuracy" in table


def test_grid_search_validation_split_and_loss_scoring() -> None:
    x, y = iris()
    search = GridSearch(build, [{"lr": [1e-4, 0.05]}], validation_split=0.3, scoring="loss",
                        fit_kwargs={"epochs": 8}, generator=nt.Generator(1)).fit(x, y)
    assert not search.greater_is_better
    assert search.best_params == {"lr": 0.05}
    assert len(search.results[0]["scores"]) == 1


def test_search_errors() -> None:
    x, y = iris()
    with pytest.raises(ValueError, match="non-empty list"):
        GridSearch(build, {"lr": 0.1})
    with pytest.raises(ValueError, match="give cv"):
        GridSearch(build, {"lr": [0.1]}, cv=1)
    with pytest.raises(ValueError, match="does not take a parameter 'depth'"):
        GridSearch(build, {"depth": [1]}, cv=2).fit(x, y)
    with pytest.raises(ValueError, match="scoring='f1' is not among"):
        GridSearch(build, {"lr": [0.1]}, cv=2, scoring="f1", fit_kwargs={"epochs": 1}).fit(x, y)
    with pytest.raises(RuntimeError, match="call fit"):
        _ = GridSearch(build, {"lr": [0.1]}).best_params
    with pytest.raises(ValueError, match="n_iter"):
        RandomSearch(build, {"lr": [0.1]}, n_iter=0)


def test_random_search_on_digits() -> None:
    x, y = nt.data.load_digits(normalize=True)
    x, y = x[:400], y[:400]

    def build_digits(hidden: int, lr: float) -> Model:
        model = Model(nn.Sequential(nn.Linear(64, hidden, activation="relu"), nn.Linear(hidden, 10)))
        model.compile("adam", "cross_entropy", metrics=["accuracy"], lr=lr)
        return model

    search = RandomSearch(build_digits, {"hidden": [16, 32], "lr": log_uniform(1e-3, 3e-2)}, n_iter=3,
                          cv=2, fit_kwargs={"epochs": 4, "batch_size": 32},
                          generator=nt.Generator(0)).fit(x, y)
    assert len(search.results) == 3
    lrs = [r["params"]["lr"] for r in search.results]
    assert all(1e-3 <= lr < 3e-2 for lr in lrs) and len(set(lrs)) == 3
    assert search.best_score > 0.5
    again = RandomSearch(build_digits, {"hidden": [16, 32], "lr": log_uniform(1e-3, 3e-2)}, n_iter=3,
                         generator=nt.Generator(0))
    assert again.candidates() == [r["params"] for r in search.results]
