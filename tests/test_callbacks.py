"""Training callbacks: exact stopping, checkpointing, logging and gradient monitoring behaviour."""

from __future__ import annotations

import contextlib
import csv
import glob
import math
import os
import struct

import numpy as np
import pytest

import nurinet as nt
from nurinet import io, nn
from nurinet.training import (
    Callback,
    CSVLogger,
    EarlyStopping,
    GradientMonitor,
    LearningRateScheduler,
    Model,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TensorBoard,
    TerminateOnNaN,
)


def data(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-1.0], [2.0]], np.float32)).astype(np.float32)


def model(lr: float = 0.05, seed: int = 0) -> Model:
    nt.manual_seed(seed)
    m = Model(nn.Linear(3, 1))
    m.compile(optimizer="sgd", loss="mse", lr=lr)
    return m


class Script(Callback):
    """Overwrites ``logs[key]`` with scripted values (runs before the callback under test) and
    records the weights at the end of each epoch."""

    def __init__(self, values: list[float], key: str = "val_loss") -> None:
        super().__init__()
        self.values, self.key = values, key

    def on_train_begin(self, logs=None) -> None:
        self.weights = []

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.state_dict())


def fit(m: Model, callbacks: list, epochs: int = 10, **kwargs):
    x, y = data()
    return m.fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=callbacks, **kwargs)


def assert_weights(m: Model, weights: dict) -> None:
    for key, value in m.state_dict().items():
        np.testing.assert_array_equal(value, weights[key])


# ----- EarlyStopping -----------------------------------------------------------------------
def test_early_stopping_stops_at_the_right_epoch_and_restores_the_best_weights() -> None:
    m = model()
    script = Script([1.0, 0.8, 0.9, 0.85, 0.7, 0.6])
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    history = fit(m, [script, stop])
    assert history.epoch == [0, 1, 2, 3]  # epochs 2 and 3 fail to beat 0.8
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1 and stop.best == 0.8
    assert_weights(m, script.weights[1])
    assert not np.array_equal(script.weights[1]["network.weight"], script.weights[3]["network.weight"])


def test_early_stopping_without_restoring_keeps_the_last_weights() -> None:
    m = model()
    script = Script([1.0, 1.0, 1.0, 1.0])
    stop = EarlyStopping(patience=1)
    fit(m, [script, stop])
    assert stop.stopped_epoch == 1
    assert_weights(m, script.weights[1])


def test_early_stopping_min_delta_mode_and_start_from_epoch() -> None:
    stop = EarlyStopping(monitor="val_accuracy", patience=1, min_delta=0.05)
    assert stop.rule.mode == "max"
    fit(model(), [Script([0.5, 0.52, 0.9], "val_accuracy"), stop])
    assert stop.stopped_epoch == 1  # +0.02 is below min_delta
    late = EarlyStopping(patience=1, start_from_epoch=3)
    history = fit(model(), [Script([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), late])
    assert history.epoch == [0, 1, 2, 3, 4]  # epochs 0..2 are not monitored


def test_early_stopping_baseline() -> None:
    values = [0.9, 0.95, 0.97, 0.99]
    with_baseline = EarlyStopping(patience=2, baseline=0.5)
    assert fit(model(), [Script(values), with_baseline]).epoch == [0, 1]
    assert fit(model(), [Script(values), EarlyStopping(patience=2)]).epoch == [0, 1, 2]


def test_early_stopping_resets_itself_between_fits() -> None:
    stop = EarlyStopping(patience=1)
    m = model()
    fit(m, [Script([1.0, 2.0, 3.0]), stop])
    assert stop.stopped_epoch == 1
    fit(m, [Script([5.0, 4.0, 3.0]), stop], epochs=3)
    assert stop.stopped_epoch == 0 and stop.best == 3.0


def test_missing_monitor_warns_and_bad_arguments_raise() -> None:
    with pytest.warns(RuntimeWarning, match="'val_loss' is not in the logs.*'loss'"):
        fit(model(), [EarlyStopping()], epochs=1)
    with pytest.raises(ValueError, match="mode must be"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="min_delta"):
        EarlyStopping(min_delta=-1)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)


# ----- ModelCheckpoint ----------------------------------------------------------------------
def test_checkpoint_best_only_writes_only_on_improvement(tmp_path) -> None:
    m = model()
    script = Script([1.0, 0.9, 0.95, 0.8, 0.85])
    ckpt = ModelCheckpoint(str(tmp_path / "w-{epoch:02d}-{val_loss:.2f}.safetensors"),
                           save_best_only=True, save_weights_only=True)
    fit(m, [script, ckpt], epochs=5)
    names = ["w-01-1.00.safetensors", "w-02-0.90.safetensors", "w-04-0.80.safetensors"]
    assert [os.path.basename(p) for p in ckpt.saved] == names
    assert sorted(os.listdir(tmp_path)) == names
    for path, epoch in zip(ckpt.saved, [0, 1, 3]):
        tensors, _ = io.load_file(path)  # verifies the checksum: the file is complete
        for key, value in tensors.items():
            np.testing.assert_array_equal(value, script.weights[epoch][key])


def test_checkpoint_every_epoch_and_full_checkpoint_restores_the_optimizer(tmp_path) -> None:
    m = model()
    m.compile(optimizer="momentum", loss="mse", lr=0.01)
    ckpt = ModelCheckpoint(tmp_path / "new_dir" / "last.safetensors")
    fit(m, [ckpt], epochs=3)
    assert ckpt.saved == [str(tmp_path / "new_dir" / "last.safetensors")] * 3
    fresh = model()
    fresh.compile(optimizer="momentum", loss="mse", lr=0.01)
    record = io.load_checkpoint(tmp_path / "new_dir" / "last.safetensors", fresh, fresh.optimizer)
    assert record["epoch"] == 3
    assert_weights(fresh, m.state_dict())
    mine, theirs = fresh.optimizer.state_dict()["state"], m.optimizer.state_dict()["state"]
    for pos in theirs:
        np.testing.assert_array_equal(mine[pos]["momentum_buffer"], theirs[pos]["momentum_buffer"])


def test_interrupted_checkpoint_write_leaves_the_previous_file_intact(tmp_path, monkeypatch) -> None:
    import nurinet.io.safetensors as st

    m = model()
    script = Script([1.0, 0.5])
    path = tmp_path / "best.safetensors"
    ckpt = ModelCheckpoint(path, save_best_only=True, save_weights_only=True)
    fit(m, [script, ckpt], epochs=1)
    good = path.read_bytes()
    real_open = st.atomic_open

    @contextlib.contextmanager
    def crashing_open(target):
        with real_open(target) as f:
            class Crash:
                def write(self, chunk):
                    f.write(bytes(chunk)[: len(chunk) // 2])
                    raise OSError("disk full (simulated)")
            yield Crash()

    monkeypatch.setattr(st, "atomic_open", crashing_open)
    with pytest.raises(OSError, match="simulated"):
        fit(m, [script, ckpt], epochs=2)  # epoch 0 improves (reset best) and the save crashes
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["best.safetensors"]  # no temporary file left behind
    io.load_file(path)


def test_checkpoint_bad_filepath_key(tmp_path) -> None:
    with pytest.raises(KeyError, match="cannot format filepath"):
        fit(model(), [ModelCheckpoint(str(tmp_path / "{val_acc}.safetensors"))], epochs=1)


# ----- learning-rate callbacks ------------------------------------------------------------------
def test_learning_rate_scheduler_sets_the_rate_each_epoch() -> None:
    m = model(lr=0.1)
    seen = []

    class Watch(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(self.model.optimizer.param_groups[0]["lr"])

    history = fit(m, [LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch), Watch()], epochs=3)
    assert seen == [0.1] * 4 + [0.05] * 4 + [0.025] * 4
    assert history.history["learning_rate"] == [0.1, 0.05, 0.025]
    with pytest.raises(ValueError, match="must return a number >= 0"):
        fit(model(), [LearningRateScheduler(lambda epoch, lr: None)], epochs=1)
    with pytest.raises(TypeError, match="schedule"):
        LearningRateScheduler(0.1)


def test_reduce_lr_on_plateau_callback_counts_like_keras() -> None:
    m = model(lr=1.0)
    cb = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.0, min_lr=0.2)
    history = fit(m, [Script([1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5]), cb], epochs=10)
    assert history.history["learning_rate"] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2]
    with pytest.raises(ValueError, match="patience must be an integer >= 1"):
        ReduceLROnPlateau(patience=0)


# ----- CSVLogger and TerminateOnNaN -------------------------------------------------------------
def test_csv_logger_content_and_append(tmp_path) -> None:
    path = tmp_path / "log.csv"
    m = model()
    x, y = data()
    history = m.fit(x, y, epochs=3, verbose=0, validation_data=data(16, 1), callbacks=[CSVLogger(path)])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2]
    np.testing.assert_array_equal([float(r[1]) for r in rows[1:]], history.history["loss"])
    np.testing.assert_array_equal([float(r[2]) for r in rows[1:]], history.history["val_loss"])
    history = m.fit(x, y, epochs=2, verbose=0, callbacks=[CSVLogger(path, append=True)])
    lines = path.read_text().splitlines()
    assert len(lines) == 6 and lines[4] == f"0,{history.history['loss'][0]!r},NA"  # header kept, no val
    m.fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, separator=";")])
    lines = path.read_text().splitlines()  # without append the file starts over
    assert len(lines) == 2 and lines[0] == "epoch;loss"


def test_terminate_on_nan_stops_at_the_bad_batch() -> None:
    x, y = data()
    x[40] = np.nan  # batch 2 of 4
    batches = []

    class Count(Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(batch)

    guard = TerminateOnNaN()
    history = model().fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0,
                          callbacks=[Count(), guard])
    assert guard.stopped == (0, 2)
    assert batches == [0, 1, 2] and history.epoch == [0]
    assert math.isnan(history.history["loss"][0])


# ----- TensorBoard ------------------------------------------------------------------------------
def read_events(directory: str) -> list:
    from tensorboardX.proto.event_pb2 import Event

    events = []
    for name in sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*"))):
        with open(name, "rb") as f:
            raw = f.read()
        offset = 0
        while offset < len(raw):  # TFRecord: length, crc, payload, crc
            (length,) = struct.unpack("<Q", raw[offset:offset + 8])
            events.append(Event.FromString(raw[offset + 12:offset + 12 + length]))
            offset += 12 + length + 4
    return events


def scalars(directory: str) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list] = {}
    for event in read_events(directory):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_tensorboard_writes_train_and_validation_scalars_and_histograms(tmp_path) -> None:
    pytest.importorskip("tensorboardX")
    x, y = data()
    history = model().fit(x, y, epochs=2, verbose=0, validation_data=data(16, 1),
                          callbacks=[TensorBoard(tmp_path, histogram_freq=1)])
    train, val = scalars(str(tmp_path / "train")), scalars(str(tmp_path / "validation"))
    assert [s for s, _ in train["epoch_loss"]] == [0, 1]
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], history.history["loss"], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in val["epoch_loss"]], history.history["val_loss"], rtol=1e-6)
    tags = {v.tag for e in read_events(str(tmp_path / "train")) for v in e.summary.value if v.HasField("histo")}
    assert {"network.weight", "network.weight/gradient", "network.bias"} <= tags


def test_tensorboard_histogram_freq_must_be_non_negative() -> None:
    with pytest.raises(ValueError, match="histogram_freq"):
        TensorBoard(histogram_freq=-1)


# ----- GradientMonitor ------------------------------------------------------------------------
def deep_mlp(activation: type, depth: int = 10, width: int = 32, he: bool = False) -> Model:
    nt.manual_seed(0)
    layers: list = [nn.Linear(8, width), activation()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), activation()]
    layers.append(nn.Linear(width, 1))
    net = nn.Sequential(*layers)
    if he:
        for layer in layers:
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
    m = Model(net)
    m.compile(optimizer="sgd", loss="mse", lr=1e-3)
    return m


def first_to_last_ratio(activation: type, he: bool) -> tuple[float, GradientMonitor]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8)).astype(np.float32)
    y = rng.standard_normal((64, 1)).astype(np.float32)
    monitor = GradientMonitor()
    m = deep_mlp(activation, he=he)
    history = m.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[monitor])
    assert len(monitor.grad_norms["network.0.weight"]) == 2
    assert history.history["grad_norm/network.0.weight"] == monitor.grad_norms["network.0.weight"]
    last = max(int(name.split(".")[1]) for name in monitor.grad_norms if name.endswith(".weight"))
    first_norm = monitor.grad_norms["network.0.weight"][-1]
    return first_norm / monitor.grad_norms[f"network.{last}.weight"][-1], monitor


def test_gradient_monitor_shows_vanishing_gradients_in_a_deep_sigmoid_mlp() -> None:
    sigmoid_ratio, _ = first_to_last_ratio(nn.Sigmoid, he=False)
    relu_ratio, monitor = first_to_last_ratio(nn.ReLU, he=True)
    assert sigmoid_ratio < 1e-4  # the gradient shrinks ~4x or more per sigmoid layer
    assert 0.05 < relu_ratio < 20  # He init keeps it at the same scale
    summary = monitor.layer_summary()
    assert set(summary["network.0.weight"]) == {"grad_norm", "update_ratio"}
    assert 0 <= summary["network.1"]["dead_relu"] < 0.5
    assert all(0 < r < 1 for name, r in ((n, v[-1]) for n, v in monitor.update_ratios.items()))


def test_gradient_monitor_dead_relu_fraction_and_unwrapping() -> None:
    nt.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    net[0].bias.array[:2] = -1e3  # two of eight units never fire
    m = Model(net)
    m.compile(optimizer="sgd", loss="mse", lr=1e-4)
    monitor = GradientMonitor(every=2)
    x = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    history = m.fit(x, x[:, :1], batch_size=16, epochs=2, verbose=0, callbacks=[monitor])
    assert monitor.dead_relu["network.1"] == [0.25, 0.25]
    assert history.history["dead_relu/network.1"] == [0.25, 0.25]
    assert "forward" not in net[1].__dict__  # the recording wrapper is removed after training
    assert monitor.grad_norms["network.0.bias"][0] > 0


def test_gradient_monitor_arguments() -> None:
    with pytest.raises(ValueError, match="every"):
        GradientMonitor(every=0)
