"""Keras's conveniences of ``Model.fit`` / ``compile``: class_weight, sample_weight,
steps_per_epoch, validation_steps, validation_freq, gradient accumulation, per-step learning-rate
schedules and the moving average of the weights (``ExponentialMovingAverage`` / ``use_ema``).

Each expectation is computed by hand (NumPy, or a plain loop of autograd and optimizer steps),
not by the code under test.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet import nn
from nurinet.data import DataLoader, TensorDataset
from nurinet.training import Callback, ExponentialMovingAverage, Model, get_callback
from nurinet.training.loss_weights import weighted_loss
from nurinet.training.outputs import Objective

RNG = np.random.default_rng(3)
X = RNG.normal(size=(24, 4))
Y = RNG.integers(0, 3, 24)
Y[:3] = [0, 1, 2]  # every class present


def linear(loss: object = "cross_entropy", out: int = 3, seed: int = 0, model_cls: type = Model,
           optimizer: object = "sgd", **compile_kwargs: object) -> Model:
    nt.manual_seed(seed)
    model = model_cls(nn.Linear(4, out))
    model.double()
    compile_kwargs.setdefault("lr", 0.1)
    model.compile(optimizer, loss, **compile_kwargs)
    return model


def mlp(seed: int = 0, **compile_kwargs: object) -> Model:
    """No batch-dependent layer: a step on a batch depends only on the mean gradient."""
    nt.manual_seed(seed)
    model = Model(nn.Sequential(nn.Linear(4, 8, activation="tanh"), nn.Linear(8, 3)))
    model.double()
    model.compile("sgd", "cross_entropy", lr=0.2, momentum=0.9, **compile_kwargs)
    return model


def weights_of(model: Model) -> list[np.ndarray]:
    return [p.array.copy() for p in model.parameters()]


def assert_same_weights(a: Model, b: Model, tol: float = 1e-10) -> None:
    for wa, wb in zip(weights_of(a), weights_of(b)):
        np.testing.assert_allclose(wa, wb, rtol=0, atol=tol)


def numpy_cross_entropy(model: Model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample softmax cross-entropy of a Linear model, in NumPy."""
    w, b = model.network.weight.array, model.network.bias.array
    z = x @ w.T + b
    zmax = z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]
    return lse - z[np.arange(len(y)), y]


class Recorder(Callback):
    """Weights after every batch and at every epoch's end, and the learning rate of each batch."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.batches: list[list[np.ndarray]] = []
        self.epochs: list[list[np.ndarray]] = []
        self.rates: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.batches.append(weights_of(self.model))
        self.rates.append(self.model.optimizer.param_groups[0]["lr"])

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epochs.append(weights_of(self.model))


class Spy(Model):
    """Records the first input column of every training and validation batch (and its weights)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__(network)
        self.trained: list[list[float]] = []
        self.tested: list[list[float]] = []
        self.train_weights: list[list[float]] = []

    def train_step(self, batch):  # type: ignore[no-untyped-def]
        self.trained.append(batch[0].array[:, 0].tolist())
        if len(batch) == 3:
            self.train_weights.append(batch[2].array.tolist())
        return super().train_step(batch)

    def test_step(self, batch):  # type: ignore[no-untyped-def]
        self.tested.append(batch[0].array[:, 0].tolist())
        return super().test_step(batch)


def indexed(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs whose first column is the sample's index, and targets."""
    x = RNG.normal(size=(n, 4))
    x[:, 0] = np.arange(n)
    return x, np.arange(n) % 3


# ----- class_weight --------------------------------------------------------------------------------
def test_class_weight_loss_is_the_hand_weighted_mean() -> None:
    model = linear()
    per_sample = numpy_cross_entropy(model, X, Y)
    weights = np.where(Y == 1, 3.0, 1.0)  # class 2 is not listed: it weighs 1, as in Keras
    history = model.fit(X, Y, batch_size=len(X), epochs=1, verbose=0, shuffle=False,
                        class_weight={0: 1, 1: 3})
    expected = (weights * per_sample).sum() / len(X)  # Keras's sum_over_batch_size
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-12)
    assert expected != pytest.approx(per_sample.mean(), rel=1e-3)


def test_class_weight_step_is_the_gradient_of_the_weighted_loss() -> None:
    model = linear()
    reference = linear()
    weights = np.where(Y == 1, 3.0, np.where(Y == 2, 0.5, 1.0))
    model.fit(X, Y, batch_size=len(X), epochs=1, verbose=0, class_weight={0: 1.0, 1: 3.0, 2: 0.5})
    losses = F.cross_entropy(reference(nt.Tensor(X)), nt.Tensor(Y), reduction="none")
    loss = (losses * nt.Tensor(weights)).sum() / len(X)
    loss.backward()
    for p in reference.parameters():
        p.array -= 0.1 * p.grad.array
    assert_same_weights(model, reference, 1e-12)


def test_class_weight_with_one_hot_targets_equals_integer_targets() -> None:
    one_hot = np.eye(3)[Y]
    a = linear("categorical_crossentropy")
    b = linear("sparse_categorical_crossentropy")
    ha = a.fit(X, one_hot, batch_size=8, epochs=2, verbose=0, shuffle=False, class_weight={1: 4.0})
    hb = b.fit(X, Y, batch_size=8, epochs=2, verbose=0, shuffle=False, class_weight={1: 4.0})
    assert ha.history["loss"] == pytest.approx(hb.history["loss"], rel=1e-12)
    assert_same_weights(a, b, 1e-12)


def test_class_weight_of_a_sigmoid_binary_classifier() -> None:
    yb = (Y == 1).astype(np.float64)
    model = linear("binary_cross_entropy_with_logits", out=1)
    z = X @ model.network.weight.array.T[:, 0] + model.network.bias.array[0]
    per_sample = np.logaddexp(0, z) - yb * z
    history = model.fit(X, yb[:, None], batch_size=len(X), verbose=0, class_weight={0: 1, 1: 3})
    expected = (np.where(yb == 1, 3.0, 1.0) * per_sample).mean()
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-12)


def test_class_weight_multiplies_sample_weight() -> None:
    sw = RNG.uniform(0.5, 2.0, len(X))
    a, b = linear(), linear()
    a.fit(X, Y, batch_size=6, epochs=2, verbose=0, shuffle=False, class_weight={2: 2.5}, sample_weight=sw)
    b.fit(X, Y, batch_size=6, epochs=2, verbose=0, shuffle=False, sample_weight=sw * np.where(Y == 2, 2.5, 1))
    assert_same_weights(a, b, 1e-12)


def _no_reduction_loss(prediction, target):  # type: ignore[no-untyped-def]
    return F.cross_entropy(prediction, target)


@pytest.mark.parametrize(("make", "kwargs", "error", "words"), [
    (linear, {"class_weight": {5: 2.0}}, ValueError, "class index 5, but the model outputs 3 classes"),
    (linear, {"class_weight": {-1: 2.0}}, ValueError, "class index -1"),
    (linear, {"class_weight": {0.5: 2.0}}, TypeError, "keys must be class indices"),
    (linear, {"class_weight": {0: -2.0}}, ValueError, "finite number >= 0"),
    (linear, {"class_weight": {0: "2"}}, TypeError, "must be a number"),
    (linear, {"class_weight": [1.0, 2.0]}, TypeError, "must be a dict"),
    (lambda: linear("mse", out=1), {"class_weight": {0: 2.0}}, ValueError, "needs a classification loss"),
    (lambda: linear(_no_reduction_loss), {"class_weight": {0: 2.0}}, ValueError, "takes no reduction"),
    (lambda: linear(_no_reduction_loss), {"sample_weight": np.ones(24)}, ValueError, "takes no reduction"),
    (lambda: linear(nn.CrossEntropyLoss(weight=np.ones(3))), {"class_weight": {0: 2.0}}, ValueError,
     "not both"),
    (lambda: linear(optimizer="lbfgs", lr=1.0), {"class_weight": {0: 2.0}}, ValueError,
     "need a first-order optimizer"),
])
def test_bad_class_or_sample_weights_are_refused(make, kwargs, error, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=_escape(words)):
        make().fit(X, Y, batch_size=8, verbose=0, **kwargs)


def test_class_weight_refuses_targets_that_are_not_classes() -> None:
    def loss(prediction, target, reduction="mean"):  # type: ignore[no-untyped-def]
        return F.mse_loss(prediction, target, reduction=reduction)

    with pytest.raises(ValueError, match="fractional values"):
        linear(loss, out=1).fit(X, X[:, :1].ravel() + 0.25, verbose=0, class_weight={0: 2.0})
    with pytest.raises(ValueError, match="not one-hot rows"):
        linear(loss, out=3).fit(X, X[:, :3], verbose=0, class_weight={0: 2.0})


def _escape(words: str) -> str:
    import re

    return re.escape(words)


# ----- sample_weight -------------------------------------------------------------------------------
def test_weights_of_one_give_the_unweighted_loss_for_every_kind_of_loss() -> None:
    rng = np.random.default_rng(0)
    logits = nt.Tensor(rng.normal(size=(6, 3)))
    labels = rng.integers(0, 3, 6)
    probs = rng.dirichlet(np.ones(3), 6)
    cases = [("cross_entropy", logits, labels), ("sparse_categorical_crossentropy", logits, labels),
             ("categorical_crossentropy", logits, np.eye(3)[labels]), ("mse", logits, probs),
             ("mae", logits, probs), ("huber", logits, probs), ("kl_divergence", F.softmax(logits, axis=1), probs),
             ("binary_cross_entropy_with_logits", logits, (probs > 0.3).astype(float)),
             ("l2", logits, probs), ("log_cosh", logits, probs), ("cosine_proximity", logits, probs)]
    ones = np.ones(6)
    for name, output, target in cases:
        loss = Objective(name)
        assert weighted_loss(loss, output, target, ones).item() == pytest.approx(
            loss(output, target).item(), rel=1e-12), name
    for module in (nn.MSELoss(), nn.MSELoss(reduction="sum"), nn.CrossEntropyLoss()):
        target = labels if isinstance(module, nn.CrossEntropyLoss) else probs
        assert weighted_loss(module, logits, target, ones).item() == pytest.approx(
            module(logits, target).item(), rel=1e-12)
        assert module.reduction in ("mean", "sum")  # restored


def test_zero_weights_with_the_rest_doubled_equal_dropping_those_samples() -> None:
    # Keras's weighted loss divides by the batch size N, not by the sum of the weights: weights
    # 0 on half the samples and 2 on the other half give sum_kept(loss) / (N / 2), which is the
    # mean over the kept samples, so training is the same as training on them alone.
    keep = np.arange(len(X)) % 2 == 0
    sw = np.where(keep, 2.0, 0.0)
    a, b = linear(), linear()
    a.fit(X, Y, batch_size=len(X), epochs=5, verbose=0, sample_weight=sw)
    b.fit(X[keep], Y[keep], batch_size=int(keep.sum()), epochs=5, verbose=0)
    assert_same_weights(a, b, 1e-12)


def test_zero_weights_with_a_sum_loss_equal_dropping_those_samples() -> None:
    keep = np.arange(len(X)) % 3 != 0
    a = linear(nn.CrossEntropyLoss(reduction="sum"), lr=0.02)
    b = linear(nn.CrossEntropyLoss(reduction="sum"), lr=0.02)
    a.fit(X, Y, batch_size=len(X), epochs=5, verbose=0, sample_weight=keep.astype(float))
    b.fit(X[keep], Y[keep], batch_size=len(X), epochs=5, verbose=0)
    assert_same_weights(a, b, 1e-12)


def test_sample_weight_is_shuffled_with_the_samples() -> None:
    x, y = indexed(20)
    model = linear(model_cls=Spy)
    model.fit(x, y, batch_size=6, epochs=3, verbose=0, sample_weight=np.arange(20) * 0.5,
              generator=nt.Generator(1))
    assert len(model.train_weights) == 12
    for rows, weights in zip(model.trained, model.train_weights):
        assert weights == [0.5 * r for r in rows]
    assert model.trained[0] != sorted(model.trained[0]) or model.trained[1] != sorted(model.trained[1])


def test_validation_split_holds_out_the_last_weights_too() -> None:
    sw = RNG.uniform(0.0, 3.0, len(X))
    model = linear()
    history = model.fit(X, Y, batch_size=5, epochs=1, verbose=0, sample_weight=sw, validation_split=0.25)
    cut = 18
    expected = (sw[cut:] * numpy_cross_entropy(model, X[cut:], Y[cut:])).mean()
    assert history.history["val_loss"][0] == pytest.approx(expected, rel=1e-12)


def test_validation_data_with_weights_reports_the_weighted_loss() -> None:
    sw = RNG.uniform(0.0, 3.0, 10)
    xv, yv = X[:10], Y[:10]
    model = linear()
    history = model.fit(X, Y, batch_size=4, epochs=1, verbose=0, validation_data=(xv, yv, sw))
    expected = (sw * numpy_cross_entropy(model, xv, yv)).mean()
    assert history.history["val_loss"][0] == pytest.approx(expected, rel=1e-12)


def test_a_loader_of_weighted_batches_trains_as_the_arrays_do() -> None:
    sw = RNG.uniform(0.0, 2.0, len(X))
    a, b = linear(), linear()
    a.fit(X, Y, batch_size=8, epochs=2, verbose=0, shuffle=False, sample_weight=sw)
    b.fit(DataLoader(TensorDataset(X, Y, sw), batch_size=8), epochs=2, verbose=0)
    assert_same_weights(a, b, 1e-12)


@pytest.mark.parametrize(("weights", "x", "error", "words"), [
    (np.ones(5), X, ValueError, "must have shape (24,)"),
    (np.ones((24, 1)), X, ValueError, "must have shape (24,)"),
    (-np.ones(24), X, ValueError, "finite weights >= 0"),
    (np.full(24, np.nan), X, ValueError, "finite weights >= 0"),
    (np.array(["a"] * 24), X, TypeError, "must hold numbers"),
    (np.ones(24), DataLoader(TensorDataset(X, Y), batch_size=8), ValueError, "third item"),
])
def test_bad_sample_weights_are_refused(weights, x, error, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=_escape(words)):
        linear().fit(x, Y if isinstance(x, np.ndarray) else None, verbose=0, sample_weight=weights)


def test_bad_validation_weights_are_refused() -> None:
    with pytest.raises(ValueError, match=_escape("must have shape (10,)")):
        linear().fit(X, Y, verbose=0, validation_data=(X[:10], Y[:10], np.ones(3)))
    with pytest.raises(ValueError, match=_escape("(x_val, y_val, val_sample_weight)")):
        linear().fit(X, Y, verbose=0, validation_data=(X, Y, Y, Y))


# ----- steps_per_epoch / validation_steps / validation_freq ----------------------------------------
def test_steps_per_epoch_on_arrays_continues_where_the_last_epoch_stopped() -> None:
    x, y = indexed(8)
    model = linear(model_cls=Spy)
    seen_steps = []

    class Params(Callback):
        def on_train_begin(self, logs=None):  # type: ignore[no-untyped-def]
            seen_steps.append(self.params["steps"])

    history = model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0, steps_per_epoch=3,
                        callbacks=[Params()])
    assert model.trained == [[0, 1], [2, 3], [4, 5], [6, 7], [0, 1], [2, 3]]
    assert history.epoch == [0, 1] and seen_steps == [3]


def test_steps_per_epoch_ends_the_epochs_of_an_endless_generator() -> None:
    def endless():  # type: ignore[no-untyped-def]
        i = 0
        while True:
            rows = (np.arange(4) + 4 * i) % 24
            yield nt.Tensor(X[rows]), nt.Tensor(Y[rows])
            i += 1

    model = linear(model_cls=Spy)
    history = model.fit(endless(), epochs=3, verbose=0, steps_per_epoch=4)
    assert len(model.trained) == 12 and len(history.history["loss"]) == 3


def test_a_generator_that_runs_out_stops_training_with_a_warning() -> None:
    batches = ((nt.Tensor(X[i:i + 4]), nt.Tensor(Y[i:i + 4])) for i in range(0, 24, 4))  # 6 batches
    model = linear(model_cls=Spy)
    with pytest.warns(RuntimeWarning, match="ran out after 2 of 4 steps"):
        history = model.fit(batches, epochs=5, verbose=0, steps_per_epoch=4)
    assert len(model.trained) == 6 and len(history.history["loss"]) == 2


def test_a_loader_with_more_steps_than_batches_starts_over() -> None:
    x, y = indexed(6)
    model = linear(model_cls=Spy)
    model.fit(DataLoader(TensorDataset(x, y), batch_size=3), epochs=1, verbose=0, steps_per_epoch=5)
    assert model.trained == [[0, 1, 2], [3, 4, 5], [0, 1, 2], [3, 4, 5], [0, 1, 2]]


def test_validation_steps_reads_the_same_first_batches_every_time() -> None:
    x, y = indexed(10)
    model = linear(model_cls=Spy)
    model.fit(X, Y, batch_size=2, epochs=3, verbose=0, validation_data=(x, y), validation_steps=2)
    assert model.tested == [[0, 1], [2, 3]] * 3


def test_validation_freq_validates_every_nth_epoch() -> None:
    model = linear(model_cls=Spy)
    history = model.fit(X, Y, batch_size=24, epochs=5, verbose=0, validation_data=(X[:6], Y[:6]),
                        validation_freq=2)
    assert len(history.history["loss"]) == 5
    assert len(history.history["val_loss"]) == 2 and len(model.tested) == 2


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"steps_per_epoch": 0}, "steps_per_epoch must be a whole number >= 1"),
    ({"steps_per_epoch": 2.5}, "steps_per_epoch must be a whole number >= 1"),
    ({"steps_per_epoch": True}, "steps_per_epoch"),
    ({"validation_steps": -1}, "validation_steps must be a whole number >= 1"),
    ({"validation_freq": 0}, "validation_freq must be a whole number >= 1"),
    ({"validation_freq": [1, 3]}, "a list of epochs is not accepted"),
    ({"validation_freq": "2"}, "validation_freq"),
])
def test_bad_step_options_are_refused(kwargs, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=_escape(words)):
        linear().fit(X, Y, verbose=0, **kwargs)


# ----- gradient accumulation -----------------------------------------------------------------------
@pytest.mark.parametrize("n", [40, 35])
def test_accumulated_small_batches_equal_one_large_batch(n: int) -> None:
    x, y = X.repeat(2, axis=0)[:n], Y.repeat(2)[:n]
    accumulated, large = mlp(gradient_accumulation_steps=4), mlp()
    accumulated.fit(x, y, batch_size=5, epochs=3, shuffle=False, verbose=0)
    large.fit(x, y, batch_size=20, epochs=3, shuffle=False, verbose=0)  # 35: batches of 20 and 15
    assert_same_weights(accumulated, large, 1e-10)
    assert accumulated.optimizer_steps.iterations == large.optimizer_steps.iterations == 6
    different = mlp()
    different.fit(x, y, batch_size=5, epochs=3, shuffle=False, verbose=0)
    assert not np.allclose(weights_of(different)[0], weights_of(large)[0], atol=1e-6)


def test_accumulation_steps_once_per_group() -> None:
    model = mlp(gradient_accumulation_steps=3)
    before, recorder = weights_of(model), Recorder()
    model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[recorder])  # 6 batches
    after = [before, *recorder.batches]
    changed = [not np.array_equal(a[0], b[0]) for a, b in itertools.pairwise(after)]
    assert changed == [False, False, True, False, False, True]


@pytest.mark.parametrize(("kwargs", "error", "words"), [
    ({"gradient_accumulation_steps": 0}, ValueError, "whole number >= 1"),
    ({"gradient_accumulation_steps": 2.0}, ValueError, "whole number >= 1"),
    ({"gradient_accumulation_steps": 2, "optimizer": "lbfgs"}, ValueError, "first-order optimizer"),
    ({"use_ema": True, "ema_momentum": 1.5}, ValueError, "decay must be a number in [0, 1)"),
    ({"use_ema": "yes"}, TypeError, "use_ema must be True or False"),
    ({"lr": lambda step: 0.1, "learning_rate": lambda step: 0.1}, TypeError, "not both"),
    ({"lr": lambda step: -1.0}, ValueError, "returned -1.0 for step 0"),
])
def test_bad_compile_options_are_refused(kwargs, error, words) -> None:  # type: ignore[no-untyped-def]
    optimizer = kwargs.pop("optimizer", "sgd")
    model = Model(nn.Linear(4, 3))
    with pytest.raises(error, match=_escape(words)):
        model.compile(optimizer, "cross_entropy", **kwargs)


# ----- per-step learning-rate schedules ------------------------------------------------------------
def schedule(step: int) -> float:
    return 0.2 / (1.0 + step)


class ByHand(Callback):
    """Sets the rate of each batch itself: the reference for a schedule given to compile."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.model.optimizer.param_groups[0]["lr"] = schedule(self.count)
        self.count += 1

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.count = 0


def test_a_schedule_sets_the_rate_of_every_step() -> None:
    scheduled, reference = linear(lr=schedule), linear(lr=1.0)
    recorder = Recorder()
    scheduled.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[recorder])
    reference.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[ByHand()])
    assert recorder.rates == [schedule(i) for i in range(6)]
    assert_same_weights(scheduled, reference, 0.0)
    scheduled.fit(X, Y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=[recorder])
    assert recorder.rates == [schedule(i) for i in range(6, 9)]  # the count continues, as Keras's


def test_a_schedule_counts_optimizer_steps_with_accumulation() -> None:
    model = linear(learning_rate=schedule, gradient_accumulation_steps=2)
    recorder = Recorder()
    model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[recorder])  # 6 batches
    assert recorder.rates[1::2] == [schedule(0), schedule(1), schedule(2)]


def test_a_schedule_drives_an_optimizer_given_as_an_object() -> None:
    nt.manual_seed(0)
    model = Model(nn.Linear(4, 3))
    model.double()
    model.compile(nt.optim.SGD(model.parameters(), lr=5.0), "cross_entropy", learning_rate=schedule)
    assert model.optimizer.param_groups[0]["lr"] == schedule(0)
    recorder = Recorder()
    model.fit(X, Y, batch_size=12, epochs=2, verbose=0, callbacks=[recorder])
    assert recorder.rates == [schedule(i) for i in range(4)]


# ----- moving average of the weights ---------------------------------------------------------------
def test_ema_puts_the_hand_computed_average_in_the_model_at_the_end() -> None:
    model, recorder = linear(), Recorder()
    ema = ExponentialMovingAverage(decay=0.8)
    history = model.fit(X, Y, batch_size=6, epochs=3, verbose=0, callbacks=[ema, recorder],
                        validation_data=(X[:8], Y[:8]))
    average = [w.copy() for w in recorder.batches[0]]  # the first step sets the average (Keras)
    for step in recorder.batches[1:]:
        average = [0.8 * a + 0.2 * w for a, w in zip(average, step)]
    for got, want in zip(weights_of(model), average):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert ema.updates == 12
    raw = recorder.epochs[-1]  # validation during training used the raw weights, as in Keras
    assert not np.allclose(raw[0], average[0])
    for p, w in zip(model.parameters(), raw):
        p.array[...] = w
    assert model.evaluate(X[:8], Y[:8], batch_size=8)["loss"] == pytest.approx(
        history.history["val_loss"][-1], rel=1e-12)


def test_compile_use_ema_equals_the_callback() -> None:
    a = linear(use_ema=True, ema_momentum=0.9)
    b = linear()
    a.fit(X, Y, batch_size=6, epochs=2, verbose=0, shuffle=False)
    b.fit(X, Y, batch_size=6, epochs=2, verbose=0, shuffle=False, callbacks=[ExponentialMovingAverage(0.9)])
    assert_same_weights(a, b, 0.0)
    plain = linear()
    plain.fit(X, Y, batch_size=6, epochs=2, verbose=0, shuffle=False)
    assert not np.allclose(weights_of(plain)[0], weights_of(a)[0])


def test_ema_updates_once_per_accumulated_step() -> None:
    model = mlp(gradient_accumulation_steps=4)
    ema = ExponentialMovingAverage(0.5)
    model.fit(X, Y, batch_size=4, epochs=2, verbose=0, callbacks=[ema])  # 6 batches: 2 steps per epoch
    assert ema.updates == model.optimizer_steps.iterations == 4


def test_ema_is_known_by_name_and_checks_its_decay() -> None:
    assert get_callback("ExponentialMovingAverage") is ExponentialMovingAverage
    assert get_callback("exponential_moving_average") is ExponentialMovingAverage
    for decay in (1.0, -0.1, "0.9"):
        with pytest.raises(ValueError, match=_escape("decay must be a number in [0, 1)")):
            ExponentialMovingAverage(decay)  # type: ignore[arg-type]
