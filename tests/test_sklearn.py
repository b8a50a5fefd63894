"""The scikit-learn estimators: scikit-learn's own estimator checks, accuracy on Iris and digits,
model selection (GridSearchCV, cross_val_score, Pipeline, clone) and reproducibility."""

from __future__ import annotations

import importlib
import pickle
import sys

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, make_regression
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import nurinet
from nurinet import nn
from nurinet.random import default_generator
from nurinet.sklearn import NeuralNetClassifier, NeuralNetRegressor

# Small settings that still pass the accuracy checks of check_estimator, so the checks run fast.
FAST = {"epochs": 15, "lr": 0.01, "hidden_layer_sizes": (32,), "random_state": 0}


# Every check of sklearn.utils.estimator_checks.check_estimator runs; none is expected to fail.
# scikit-learn itself skips two: the pandas-input check (when pandas is absent) and the array-API
# check (unless SCIPY_ARRAY_API=1; the estimators convert inputs to NumPy float32 arrays anyway).
@parametrize_with_checks([NeuralNetClassifier(**FAST), NeuralNetRegressor(**FAST)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


def test_iris_cross_validation_in_a_pipeline(iris):
    X, y = iris
    pipeline = make_pipeline(StandardScaler(), NeuralNetClassifier(epochs=40, lr=0.01, random_state=0))
    scores = cross_val_score(pipeline, X, y, cv=3)
    assert scores.mean() > 0.9, scores


def test_digits_accuracy_and_probabilities():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    clf = NeuralNetClassifier(hidden_layer_sizes=(64,), epochs=20, lr=0.003, random_state=0).fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.93
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X_test))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X_test)), proba, atol=1e-12)
    assert clf.n_features_in_ == 64 and clf.n_iter_ == 20 and len(clf.loss_curve_) == 20
    assert clf.loss_curve_[-1] < clf.loss_curve_[0] / 5


def test_digits_with_a_cnn_module_and_input_shape():
    def cnn(n_features, n_classes, channels=8):
        return nn.Sequential(nn.Conv2d(1, channels, 3), nn.ReLU(), nn.Flatten(), nn.Linear(channels * 36, n_classes))

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.3, random_state=1, stratify=y)
    clf = NeuralNetClassifier(cnn, module_kwargs={"channels": 4}, input_shape=(1, 8, 8), epochs=6, lr=0.005,
                              random_state=0).fit(X_train, y_train)
    assert clf.module_[0].out_channels == 4
    assert clf.score(X_test, y_test) > 0.9


def test_arbitrary_labels_are_encoded(iris):
    X, y = iris
    names = np.array(["virginica", "setosa", "versicolor"])[y]
    clf = make_pipeline(StandardScaler(), NeuralNetClassifier(epochs=30, lr=0.01, random_state=0)).fit(X, names)
    assert list(clf[-1].classes_) == ["setosa", "versicolor", "virginica"]
    predicted = clf.predict(X)
    assert predicted.dtype == names.dtype and (predicted == names).mean() > 0.9


def test_grid_search_over_lr_and_hidden_size(iris):
    X, y = iris
    pipeline = make_pipeline(StandardScaler(), NeuralNetClassifier(epochs=10, random_state=0))
    grid = {"neuralnetclassifier__lr": [1e-5, 3e-2], "neuralnetclassifier__hidden_layer_sizes": [(4,), (32,)]}
    search = GridSearchCV(pipeline, grid, cv=3).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["neuralnetclassifier__lr"] == 3e-2  # 10 epochs at lr 1e-5 learn nothing
    assert search.best_score_ > 0.85
    assert search.best_estimator_[-1].module_[0].out_features == \
        search.best_params_["neuralnetclassifier__hidden_layer_sizes"][0]


def test_get_set_params_and_clone(iris):
    clf = NeuralNetClassifier(lr=0.05, epochs=3, hidden_layer_sizes=(8, 8))
    params = clf.get_params()
    assert params["lr"] == 0.05 and params["hidden_layer_sizes"] == (8, 8) and params["module"] is None
    assert clf.set_params(lr=0.2) is clf and clf.lr == 0.2
    with pytest.raises(ValueError, match="Invalid parameter"):
        clf.set_params(learning_rate=1)
    X, y = iris
    clf.fit(X, y)
    copy = clone(clf)
    assert copy.get_params() == clf.get_params()
    assert not hasattr(copy, "module_") and hasattr(clf, "module_")


def test_random_state_makes_fits_reproducible_and_leaves_the_default_generator_alone(iris):
    X, y = iris
    nurinet.manual_seed(5)
    before = default_generator.get_state()
    settings = {"epochs": 5, "dropout": 0.3, "hidden_layer_sizes": (16,)}
    a = NeuralNetClassifier(random_state=3, **settings).fit(X, y).predict_proba(X)
    b = NeuralNetClassifier(random_state=3, **settings).fit(X, y).predict_proba(X)
    c = NeuralNetClassifier(random_state=4, **settings).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert default_generator.get_state() == before
    # random_state=None follows nurinet.manual_seed.
    nurinet.manual_seed(9)
    d = NeuralNetClassifier(**settings).fit(X, y).predict_proba(X)
    nurinet.manual_seed(9)
    np.testing.assert_array_equal(d, NeuralNetClassifier(**settings).fit(X, y).predict_proba(X))


def test_a_module_instance_is_copied_not_trained(iris):
    X, y = iris
    module = nn.Sequential(nn.Linear(4, 10), nn.Tanh(), nn.Linear(10, 3))
    weights = module[0].weight.numpy().copy()
    clf = NeuralNetClassifier(module, epochs=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(module[0].weight.numpy(), weights)
    assert clf.module_ is not module and not np.array_equal(clf.module_[0].weight.numpy(), weights)
    again = NeuralNetClassifier(module, epochs=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_partial_fit_trains_one_epoch_per_call(iris):
    X, y = iris
    X = StandardScaler().fit_transform(X)
    clf = NeuralNetClassifier(lr=0.01, random_state=0)
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])  # the first batch lacks class 2
    assert list(clf.classes_) == [0, 1, 2] and clf.n_iter_ == 1
    for _ in range(20):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 21 and clf.loss_curve_[-1] < clf.loss_curve_[1]
    assert clf.score(X, y) > 0.85
    with pytest.raises(ValueError, match=r"labels \[7\] not in classes_"):
        clf.partial_fit(X[:2], [7, 7])
    with pytest.raises(ValueError, match="missing from classes"):
        NeuralNetClassifier().partial_fit(X, y, classes=[0, 1])


def test_regressor_one_and_several_targets():
    X, y = make_regression(n_samples=300, n_features=5, n_targets=2, noise=1.0, random_state=0)
    y = y / y.std(axis=0)
    reg = make_pipeline(StandardScaler(), NeuralNetRegressor(epochs=60, lr=0.01, random_state=0))
    assert reg.fit(X, y).score(X, y) > 0.95
    assert reg.predict(X).shape == (300, 2)
    single = NeuralNetRegressor(epochs=60, lr=0.01, random_state=0).fit(X, y[:, 0])
    assert single.predict(X).shape == (300,) and single.n_outputs_ == 1
    assert single.score(X, y[:, 0]) > 0.95
    assert np.mean(cross_val_score(NeuralNetRegressor(epochs=30, lr=0.01, random_state=0), X, y[:, 1], cv=3)) > 0.9


def test_clear_errors(iris):
    X, y = iris
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        NeuralNetClassifier(epochs=0).fit(X, y)
    with pytest.raises(TypeError, match="must return an nn.Module"):
        NeuralNetClassifier(lambda n_in, n_out: "not a module").fit(X, y)
    with pytest.raises(TypeError, match="module_kwargs"):
        NeuralNetClassifier(module_kwargs={"width": 3}).fit(X, y)
    with pytest.raises(ValueError, match="unknown optimizer"):
        NeuralNetClassifier(optimizer="adamax2", epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="lower lr"), np.errstate(over="ignore", invalid="ignore"):
        NeuralNetRegressor(lr=1e3, optimizer="sgd", epochs=5).fit(X * 1e3, X[:, 0] * 1e3)


def test_missing_sklearn_gives_an_install_hint(monkeypatch):
    for name in [name for name in sys.modules if name.split(".")[0] == "sklearn"]:
        monkeypatch.setitem(sys.modules, name, None)  # makes "import sklearn..." raise ImportError
    monkeypatch.setattr(nurinet, "sklearn", sys.modules["nurinet.sklearn"])  # restored afterwards
    monkeypatch.delitem(sys.modules, "nurinet.sklearn")
    module = importlib.import_module("nurinet.sklearn")  # importable without scikit-learn
    with pytest.raises(ImportError, match=r"pip install 'nurinet\[sklearn\]'"):
        module.NeuralNetClassifier  # noqa: B018 (the access builds the class)


def test_fitted_estimator_pickles():
    X, y = load_iris(return_X_y=True)
    clf = NeuralNetClassifier(epochs=2, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    assert type(again) is NeuralNetClassifier
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
