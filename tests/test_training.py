"""The Keras-like training layer: Model.compile/fit/evaluate/predict, callbacks, metrics."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet.training import (
    Accuracy,
    BinaryAccuracy,
    Callback,
    Model,
    TopKCategoricalAccuracy,
    get_metric,
)
from nurinet.training.metrics import confusion_matrix, format_confusion_matrix


def blobs(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated Gaussian blobs in 2-D."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    y = rng.integers(0, 3, n)
    x = centers[y] + rng.standard_normal((n, 2)) * 0.5
    return x.astype(np.float32), y.astype(np.int64)


def small_model(seed: int = 0) -> Model:
    nt.manual_seed(seed)
    model = Model(nn.Sequential(nn.Linear(2, 16, activation="tanh"), nn.Linear(16, 3)))
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"], lr=0.05)
    return model


def test_fit_learns_and_records_history() -> None:
    x, y = blobs()
    model = small_model()
    history = model.fit(x, y, batch_size=16, epochs=8, verbose=0)
    assert list(history.history) == ["loss", "accuracy"]
    assert len(history.history["loss"]) == 8
    assert history.history["loss"][-1] < history.history["loss"][0] * 0.5
    assert history.history["accuracy"][-1] > 0.95


def test_validation_split_takes_the_last_samples() -> None:
    x, y = blobs(100)
    model = small_model()
    history = model.fit(x, y, epochs=2, validation_split=0.2, verbose=0)
    assert {"val_loss", "val_accuracy"} <= set(history.history)
    logs = model.evaluate(x[80:], y[80:])
    assert logs["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-5)


def test_evaluate_and_predict() -> None:
    x, y = blobs()
    model = small_model()
    model.fit(x, y, epochs=5, verbose=0)
    logs = model.evaluate(x, y, batch_size=50)
    assert set(logs) == {"loss", "accuracy"}
    values = model.evaluate(x, y, return_dict=False)
    assert values == pytest.approx([logs["loss"], logs["accuracy"]])
    scores = model.predict(x, batch_size=7)
    assert scores.shape == (len(x), 3)
    assert logs["accuracy"] == pytest.approx(float((scores.argmax(1) == y).mean()))


def test_predict_runs_in_eval_mode_and_restores_training() -> None:
    nt.manual_seed(0)
    model = Model(nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.5), nn.Linear(8, 1)))
    x = np.ones((4, 2), np.float32)
    assert model.training
    np.testing.assert_array_equal(model.predict(x), model.predict(x))
    assert model.training


class Recorder(Callback):
    def __init__(self, stop_at_epoch: int | None = None) -> None:
        super().__init__()
        self.events: list[str] = []
        self.stop_at_epoch = stop_at_epoch

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(f"epoch_begin{epoch}")

    def on_train_batch_end(self, batch, logs=None):
        assert "loss" in logs
        self.events.append("batch")

    def on_test_begin(self, logs=None):
        self.events.append("test_begin")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(f"epoch_end{epoch}")
        if epoch == self.stop_at_epoch:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.events.append("train_end")


def test_callback_hooks_in_order_and_stop_training() -> None:
    x, y = blobs(40)
    model = small_model()
    recorder = Recorder(stop_at_epoch=1)
    history = model.fit(x, y, batch_size=20, epochs=5, verbose=0, callbacks=[recorder],
                        validation_data=(x, y))
    assert recorder.model is model
    assert recorder.events == [
        "train_begin",
        "epoch_begin0", "batch", "batch", "test_begin", "epoch_end0",
        "epoch_begin1", "batch", "batch", "test_begin", "epoch_end1",
        "train_end",
    ]
    assert len(history.history["loss"]) == 2


def test_overridden_train_step_is_used_by_fit() -> None:
    class CountingModel(Model):
        steps = 0

        def train_step(self, batch):
            CountingModel.steps += 1
            return super().train_step(batch)

    nt.manual_seed(0)
    model = CountingModel(nn.Linear(2, 3))
    model.compile("sgd", "cross_entropy", lr=0.1)
    x, y = blobs(30)
    model.fit(x, y, batch_size=10, epochs=2, verbose=0)
    assert CountingModel.steps == 6


def test_subclassed_model_with_forward() -> None:
    class Net(Model):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 3)

        def forward(self, x):
            return self.fc(x)

    model = Net()
    model.compile("adam", "cross_entropy")
    x, y = blobs(30)
    model.fit(x, y, epochs=1, verbose=0)
    assert model.predict(x).shape == (30, 3)


def test_progress_output_is_plain_lines_on_stdout_when_not_a_terminal(capsys) -> None:
    x, y = blobs(30)
    model = small_model()
    model.fit(x, y, epochs=2, verbose=1)
    printed = capsys.readouterr()
    # stdout as in Keras: a notebook shows stderr on red, as if training had failed
    assert printed.out.count("Epoch ") == 2 and "\r" not in printed.out and printed.err == ""
    model.fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr() == ("", "")


def test_progress_bar_is_drawn_on_a_terminal_and_in_a_notebook(monkeypatch) -> None:
    import io

    from nurinet.training import callbacks

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    x, y = blobs(30)
    model = small_model()
    stream = Terminal()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.ProgressBar(1, stream=stream)])
    assert "\r" in stream.getvalue() and "Epoch 2/2" in stream.getvalue() and "%|" in stream.getvalue()
    plain = io.StringIO()
    monkeypatch.setattr(callbacks, "in_notebook", lambda: True)  # a kernel's stdout is no terminal
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ProgressBar(1, stream=plain)])
    assert "%|" in plain.getvalue()
    assert not callbacks.ProgressBar(2)._interactive()


def test_clear_errors() -> None:
    x, y = blobs(30)
    model = Model(nn.Linear(2, 3))
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y)
    model.compile("adam", "cross_entropy")
    with pytest.raises(ValueError, match="x has 30, y has 29"):
        model.fit(x, y[:29], verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="known metric names: .*accuracy"):
        get_metric("accurracy")
    with pytest.raises(ValueError, match="needs a loss"):
        Model(nn.Linear(2, 3)).compile("adam")
    with pytest.raises(NotImplementedError, match="no forward"):
        Model()(nt.ones(2, 2))


def test_accuracy_metrics() -> None:
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    acc = Accuracy()
    acc.update_state(scores, np.array([1, 0, 0]))
    assert acc.result() == pytest.approx(2 / 3)
    acc.update_state(scores, np.eye(2)[[1, 0, 1]])
    assert acc.result() == pytest.approx(5 / 6)
    acc.reset_state()
    assert acc.result() == 0.0
    binary = BinaryAccuracy(threshold=0.25)
    binary.update_state(np.array([0.3, 0.2, 0.9]), np.array([0.0, 0.0, 1.0]))
    assert binary.result() == pytest.approx(2 / 3)
    logits = BinaryAccuracy(from_logits=True)
    logits.update_state(np.array([-1.0, 2.0]), np.array([0, 1]))
    assert logits.result() == 1.0
    top2 = TopKCategoricalAccuracy(k=2)
    top2.update_state(np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]), np.array([1, 0]))
    assert top2.result() == pytest.approx(0.5)


def test_confusion_matrix() -> None:
    m = confusion_matrix([0, 1, 2, 2, 1], [0, 2, 2, 2, 1], num_classes=3)
    np.testing.assert_array_equal(m, [[1, 0, 0], [0, 1, 1], [0, 0, 2]])
    text = format_confusion_matrix(m)
    assert "predicted" in text and len(text.splitlines()) == 4
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 3], [0, 1], num_classes=3)


def test_demo_reaches_its_accuracy_with_defaults() -> None:
    from nurinet.demo import run

    result = run(verbose=0)
    assert result["accuracy"] >= 0.96
    assert result["confusion_matrix"].sum() == result["test_size"]


def test_evaluation_metrics_by_name_in_compile() -> None:
    x, y = blobs(60)
    y = (y > 0).astype(np.int64)  # Two classes: "f1" by name is binary F1, as the class.
    nt.manual_seed(0)
    model = Model(nn.Linear(2, 2))
    model.compile("adam", "cross_entropy", metrics=["accuracy", "f1", "precision"], lr=0.05)
    history = model.fit(x, y, epochs=3, verbose=0)
    assert {"f1", "precision"} <= set(history.history)
    assert 0.0 <= history.history["f1"][-1] <= 1.0
