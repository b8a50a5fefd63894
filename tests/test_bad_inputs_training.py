"""Bad input tried on purpose against losses, metrics and ``Model``: each case gets a clear error
(naming the argument, the shapes or the values) or PyTorch's/Keras's documented behaviour;
never an internal error and never a silent wrong number.

``CASES`` lists the inputs that must be refused (with the words the message must contain);
the tests below it check what must work.
"""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet import nn
from nurinet.data import DataLoader, TensorDataset
from nurinet.training import (
    BinaryAccuracy,
    CategoricalAccuracy,
    Model,
    SparseCategoricalAccuracy,
)
from tests.test_output_objectives import normalized_model

RNG = np.random.default_rng(11)
X = RNG.normal(size=(20, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 20)


def _model(loss: str = "sparse_categorical_crossentropy", softmax: bool = False) -> Model:
    nt.manual_seed(0)
    layers = [nn.Linear(4, 3)] + ([nn.Softmax()] if softmax else [])
    model = Model(nn.Sequential(*layers))
    model.compile("sgd", loss, metrics=["accuracy"])
    return model


def _loader() -> DataLoader:
    return DataLoader(TensorDataset(X, Y), batch_size=8)


# (what, call, exception, words the message contains)
CASES = [
    # ----- Model.fit ------------------------------------------------------------------------
    ("fit on 0 samples", lambda: _model().fit(X[:0], Y[:0], verbose=0), ValueError, "no samples"),
    ("fit without y", lambda: _model().fit(X, verbose=0), ValueError, "targets y are missing"),
    ("fit with a dict x", lambda: _model().fit({"a": X}, Y, verbose=0), TypeError, "got dict"),
    ("fit with a string x", lambda: _model().fit("data.csv", Y, verbose=0), TypeError, "got str"),
    ("fit with mismatched lengths", lambda: _model().fit(X, Y[:5], verbose=0), ValueError,
     "x has 20, y has 5"),
    ("fit with validation_data=(x,)", lambda: _model().fit(X, Y, validation_data=(X,), verbose=0),
     ValueError, "validation_data must be (x_val, y_val)"),
    ("fit with validation_data=x only", lambda: _model().fit(X, Y, validation_data=X, verbose=0),
     ValueError, "pass the targets too"),
    ("fit with validation_data of 0 samples",
     lambda: _model().fit(X, Y, validation_data=(X[:0], Y[:0]), verbose=0), ValueError, "no samples"),
    ("fit with a loader and validation_split",
     lambda: _model().fit(_loader(), validation_split=0.5, verbose=0), ValueError,
     "validation_split needs arrays"),
    ("fit with validation_split=1", lambda: _model().fit(X, Y, validation_split=1.0, verbose=0),
     ValueError, "validation_split must be in [0, 1)"),
    ("fit with validation_split=-0.1", lambda: _model().fit(X, Y, validation_split=-0.1, verbose=0),
     ValueError, "validation_split must be in [0, 1)"),
    ("fit with validation_split leaving nothing", lambda: _model().fit(X[:2], Y[:2],
     validation_split=0.9, verbose=0), ValueError, "leaves no training"),
    ("fit with batch_size=0", lambda: _model().fit(X, Y, batch_size=0, verbose=0), ValueError,
     "batch_size must be a whole number >= 1"),
    ("fit with batch_size=2.5", lambda: _model().fit(X, Y, batch_size=2.5, verbose=0), ValueError,
     "batch_size"),
    ("fit with verbose='loud'", lambda: _model().fit(X, Y, verbose="loud"), ValueError,
     "verbose must be 0"),
    ("fit with epochs='3'", lambda: _model().fit(X, Y, epochs="3", verbose=0), ValueError,
     "epochs must be a whole number"),
    ("fit with epochs=-1", lambda: _model().fit(X, Y, epochs=-1, verbose=0), ValueError, "epochs"),
    ("fit before compile", lambda: Model(nn.Linear(4, 3)).fit(X, Y), RuntimeError, "compile"),
    ("fit with a class index out of range", lambda: _model().fit(X, np.full(20, 3), verbose=0),
     ValueError, "class index 3"),
    ("fit with a negative class index", lambda: _model().fit(X, np.full(20, -1), verbose=0),
     ValueError, "class index -1"),
    ("fit with fractional float class targets",
     lambda: _model().fit(X, Y + 0.5, verbose=0), TypeError, "whole numbers"),
    ("fit with targets of the wrong shape",
     lambda: _model().fit(X, np.zeros((20, 5)), verbose=0), ValueError, "got shape (20, 5)"),
    ("fit with inputs of the wrong width", lambda: _model().fit(X[:, :3], Y, verbose=0), ValueError,
     "Linear"),
    ("fit with 1-D inputs", lambda: _model().fit(X[:, 0], Y, verbose=0), ValueError, "Linear"),
    # ----- Model.evaluate / predict -------------------------------------------------------------
    ("evaluate on 0 samples", lambda: _model().evaluate(X[:0], Y[:0]), ValueError, "no samples"),
    ("evaluate without y", lambda: _model().evaluate(X), ValueError, "targets y are missing"),
    ("evaluate with batch_size=0", lambda: _model().evaluate(X, Y, batch_size=0), ValueError,
     "batch_size"),
    ("evaluate on an empty loader", lambda: _model().evaluate(DataLoader(TensorDataset(X[:0], Y[:0]),
     batch_size=4)), ValueError, "no samples"),
    ("predict on 0 samples", lambda: _model().predict(X[:0]), ValueError, "no samples"),
    ("predict with a dict", lambda: _model().predict({"a": X}), TypeError, "got dict"),
    ("predict_proba of a regression", lambda: _model("mse").predict_proba(X), ValueError,
     "plain values"),
    ("predict_classes of a regression", lambda: _model("mse").predict_classes(X), ValueError,
     "plain values"),
    ("predict_classes with a threshold per label of the wrong length",
     lambda: _model("bce_with_logits").predict_classes(X, threshold=[0.5, 0.5]), ValueError,
     "2 thresholds"),
    ("predict(logits=True) of probabilities made without a softmax", lambda: normalized_model(4).predict(
     X, logits=True), ValueError, "logits are not known"),
    # ----- compile ----------------------------------------------------------------------------
    ("compile without a loss", lambda: Model(nn.Linear(4, 3)).compile("sgd"), ValueError, "needs a loss"),
    ("compile with an unknown loss", lambda: Model(nn.Linear(4, 3)).compile("sgd", "cross_entrophy"),
     ValueError, "known loss names"),
    ("compile with a loss that is not a name", lambda: Model(nn.Linear(4, 3)).compile("sgd", 3),
     TypeError, "loss must be"),
    ("compile with from_logits='yes'", lambda: Model(nn.Linear(4, 3)).compile(
     "sgd", "mse", from_logits="yes"), TypeError, "from_logits"),
    ("compile with an unknown metric", lambda: Model(nn.Linear(4, 3)).compile(
     "sgd", "mse", metrics=["acuracy"]), ValueError, "unknown metric"),
    # ----- losses -------------------------------------------------------------------------------
    ("binary_cross_entropy with target 2", lambda: F.binary_cross_entropy(
     nt.tensor([0.3, 0.6]), nt.tensor([2.0, 0.0])), ValueError, "target should be between 0 and 1"),
    ("binary_cross_entropy with target NaN", lambda: F.binary_cross_entropy(
     nt.tensor([0.3, 0.6]), nt.tensor([np.nan, 0.0])), ValueError, "target should be between 0 and 1"),
    ("binary_cross_entropy of logits", lambda: F.binary_cross_entropy(
     nt.tensor([-3.0, 0.6]), nt.tensor([1.0, 0.0])), ValueError, "binary_cross_entropy_with_logits"),
    ("kl_div with a negative target", lambda: F.kl_div(
     nt.tensor([-1.0, -0.5]), nt.tensor([-0.5, 1.5])), ValueError, "target must hold probabilities"),
    ("cross_entropy with float class targets", lambda: F.cross_entropy(
     nt.tensor(X[:, :3]), Y.astype(np.float32)), TypeError, "integer class indices"),
    ("cross_entropy with an index out of range", lambda: F.cross_entropy(
     nt.tensor(X[:, :3]), np.full(20, 5)), ValueError, "class index 5"),
    ("cross_entropy with a negative index", lambda: F.cross_entropy(
     nt.tensor(X[:, :3]), np.full(20, -2)), ValueError, "class index -2"),
    ("mse with mismatched shapes", lambda: F.mse_loss(nt.tensor(X), nt.tensor(X[:, :2])), ValueError,
     "differ"),
    ("nll of logits by name", lambda: F.get_loss("nll")(nt.tensor(np.abs(X[:, :3])), Y), ValueError,
     "log-probabilities"),
    ("hinge with targets 0.5", lambda: F.hinge_loss(nt.tensor([0.3, 0.6]), nt.tensor([0.5, 1.0])),
     ValueError, "targets must be -1 or 1"),
    ("categorical_crossentropy with targets of another shape", lambda: F.get_loss(
     "categorical_crossentropy")(nt.tensor(X[:, :3]), np.zeros((20, 4))), ValueError, "(20, 4)"),
    # ----- metrics ------------------------------------------------------------------------------
    ("sparse accuracy with targets of another shape", lambda: SparseCategoricalAccuracy().update_state(
     np.eye(3), np.zeros((3, 2))), ValueError, "class indices of shape (3,)"),
    ("accuracy with fractional class targets", lambda: CategoricalAccuracy().update_state(
     np.eye(3), np.array([0.5, 1.0, 2.0])), ValueError, "whole numbers"),
    ("binary accuracy with a target per sample for 2 labels", lambda: BinaryAccuracy().update_state(
     np.ones((4, 2)) * 0.7, np.ones(3)), ValueError, "differ"),
]


@pytest.mark.parametrize("what,call,error,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_clearly(what, call, error, words) -> None:
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value), f"{what}: {info.value}"


# ----- what must work -------------------------------------------------------------------------
def test_categorical_metrics_read_index_and_one_hot_targets_alike() -> None:
    scores = np.eye(4)[[0, 1, 2, 3]] + 0.1
    for metric in (SparseCategoricalAccuracy(), CategoricalAccuracy()):
        metric.update_state(scores, np.array([0, 1, 2, 3]))  # indices: a perfect model
        metric.update_state(scores, np.eye(4))  # one-hot: a perfect model
        assert metric.result() == 1.0


def test_validation_split_zero_means_no_split_and_integral_float_targets_work() -> None:
    history = _model().fit(X, Y.astype(np.float64), validation_split=0.0, verbose=0)
    assert "val_loss" not in history.history
    history = _model().fit(X, Y[:, None], validation_split=0.25, verbose=0)  # (N, 1) labels, as Keras
    assert "val_accuracy" in history.history


def test_nan_inputs_give_nan_losses_not_internal_errors() -> None:
    bad = X.copy()
    bad[3, 1] = np.nan
    logs = _model().evaluate(bad, Y)
    assert np.isnan(logs["loss"])
    assert _model().predict(bad)[3].tolist() != _model().predict(bad)[2].tolist()


def test_a_batch_of_one_and_a_loader_of_one() -> None:
    model = _model()
    model.fit(X[:1], Y[:1], verbose=0)
    assert model.predict(X[:1]).shape == (1, 3)
    assert model.predict_classes(X[:1]).shape == (1,)


class _Exploding(nn.Module):
    def __init__(self, error: type[BaseException]) -> None:
        super().__init__()
        self.linear, self.error, self.armed = nn.Linear(4, 3), error, False

    def forward(self, x):
        if self.armed and not self.training:
            raise self.error("boom")
        return self.linear(x)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_modes_are_restored_on_every_exit_path(error) -> None:
    network = _Exploding(error)
    model = Model(network)
    model.compile("sgd", "sparse_categorical_crossentropy")
    network.armed = True
    for call in (lambda: model.predict(X), lambda: model.evaluate(X, Y),
                 lambda: model.fit(X, Y, validation_data=(X, Y), verbose=0)):
        model.train()
        with pytest.raises(error):
            call()
        assert model.training and network.training


def test_count_of_bad_inputs_tried() -> None:
    """The note of issue #15 reports this figure; keep it honest."""
    assert len(CASES) >= 50
