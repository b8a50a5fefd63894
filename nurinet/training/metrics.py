"""Stateful metrics for ``Model.compile(metrics=[...])``, in the Keras manner.

A metric accumulates over batches with ``update_state(y_pred, y_true)``,
reports with ``result()`` and starts over with ``reset_state()``. ``Model`` gives each
metric the probabilities of a classifier's output (whether the network ends in a
softmax/sigmoid or in logits; see :mod:`nurinet.training.outputs`), the logits to a metric
made with ``from_logits=True``, and the raw output of a regression; it tells each metric
what the output is through ``observe_output`` first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nurinet.autograd.tensor import Tensor
from nurinet.backend import to_numpy
from nurinet.names import NameTable


def _array(x: Any) -> np.ndarray:
    return to_numpy(x.array if isinstance(x, Tensor) else x)


class Metric:
    """Base class: a running value over the batches of an epoch."""

    name = "metric"

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name
        self.reset_state()

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0

    def update_state(self, y_pred: Any, y_true: Any) -> None:
        raise NotImplementedError

    def observe_output(self, spec: Any) -> None:
        """Hear what the model's output is (an ``OutputSpec``) before the next update."""

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Mean(Metric):
    """The weighted mean of values given to ``update_state(value, weight)`` (the loss mean)."""

    name = "mean"

    def update_state(self, value: Any, weight: Any = 1) -> None:  # type: ignore[override]
        self.total += float(value) * float(weight)
        self.count += float(weight)  # type: ignore[assignment]


class _Matches(Metric):
    """Fraction of samples whose prediction matches the target."""

    def update_state(self, y_pred: Any, y_true: Any) -> None:
        hits = self.matches(_array(y_pred), _array(y_true))
        self.total += float(hits.sum())
        self.count += int(hits.size)

    def matches(self, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _class_labels(pred: np.ndarray, true: np.ndarray, metric: str) -> np.ndarray:
    """Integer class labels of the shape ``pred.shape[:-1]`` from index or one-hot targets.

    Raises:
        ValueError: the targets fit neither form (the message gives both shapes).
    """
    if true.shape == pred.shape and pred.shape[-1] > 1:
        return true.argmax(axis=-1)
    if true.shape == pred.shape[:-1] + (1,) and pred.shape[-1] > 1:
        true = true.reshape(pred.shape[:-1])
    if true.shape != pred.shape[:-1]:
        raise ValueError(f"{metric}: scores of shape {pred.shape} need class indices of shape "
                         f"{pred.shape[:-1]} or one-hot rows of shape {pred.shape}, got targets of "
                         f"shape {true.shape}")
    if true.dtype.kind == "f" and true.size and not bool((true == np.floor(true)).all()):
        raise ValueError(f"{metric}: class-index targets must be whole numbers, got values such as "
                         f"{true[true != np.floor(true)].flat[0]}")
    return true


class SparseCategoricalAccuracy(_Matches):
    """Argmax of the scores (N, C) equals the integer class (N,) (one-hot targets are read
    as their argmax, since the shapes tell the two apart)."""

    name = "accuracy"

    def matches(self, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
        return pred.argmax(axis=-1) == _class_labels(pred, true, "sparse_categorical_accuracy")


class CategoricalAccuracy(_Matches):
    """Argmax of the scores equals argmax of the one-hot (or soft) target (integer class
    targets are read as indices, since the shapes tell the two apart)."""

    name = "accuracy"

    def matches(self, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
        return pred.argmax(axis=-1) == _class_labels(pred, true, "categorical_accuracy")


def _binary_matches(pred: np.ndarray, true: np.ndarray, threshold: Any, metric: str) -> np.ndarray:
    """``(pred > threshold) == (true > 0.5)`` per element; ``(N,)`` targets fit ``(N, 1)`` scores."""
    if pred.shape != true.shape:
        if pred.size != true.size:
            raise ValueError(f"{metric}: scores of shape {pred.shape} and targets of shape "
                             f"{true.shape} differ (one 0/1 target per output)")
        pred = pred.reshape(true.shape)
    thresholds = np.asarray(threshold)
    if thresholds.ndim and thresholds.shape[-1] != (pred.shape[-1] if pred.ndim else 1):
        raise ValueError(f"{metric}: {thresholds.shape[-1]} thresholds for outputs of shape "
                         f"{pred.shape}; give one threshold, or one per label (last axis)")
    return (pred > thresholds) == (true > 0.5)


class BinaryAccuracy(_Matches):
    """``(score > threshold) == target`` for binary targets, per label for multi-label outputs.

    Args:
        threshold: Decision threshold on the probability (0.5 by default; 0.0 with
            ``from_logits=True``): a number, or one per label (the last axis).
        from_logits: The scores are logits, so the default threshold is 0.
    """

    name = "binary_accuracy"

    def __init__(self, threshold: Any = None, from_logits: bool = False,
                 name: str | None = None) -> None:
        self.from_logits = from_logits
        self.threshold = (0.0 if from_logits else 0.5) if threshold is None else threshold
        super().__init__(name)

    def matches(self, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
        return _binary_matches(pred, true, self.threshold, "binary_accuracy")


class TopKCategoricalAccuracy(_Matches):
    """The integer (or one-hot) target is among the ``k`` highest scores."""

    def __init__(self, k: int = 5, name: str | None = None) -> None:
        self.k = k
        super().__init__(name or f"top_{k}_accuracy")

    def matches(self, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
        if true.ndim == pred.ndim:
            true = true.argmax(axis=-1)
        top = np.argpartition(-pred, min(self.k, pred.shape[-1]) - 1, axis=-1)[..., : self.k]
        return (top == true[..., None]).any(axis=-1)


class Accuracy(_Matches):
    """Accuracy that picks its rule from the model's output, as Keras's ``"accuracy"`` does.

    A sigmoid output (one or many labels): per-label binary accuracy at ``threshold`` on
    the probabilities. A softmax output: the argmax against class indices or one-hot rows.
    When the model does not say (a plain function of the output), the shapes decide:
    scores (N, C>1) are classes, scores (N,) or (N, 1) binary probabilities.

    Args:
        threshold: Decision threshold of a sigmoid output's probabilities: a number, or one
            per label.
    """

    name = "accuracy"

    def __init__(self, threshold: Any = 0.5, name: str | None = None) -> None:
        self.threshold, self.link = threshold, None
        super().__init__(name)

    def observe_output(self, spec: Any) -> None:
        self.link = getattr(spec, "link", None)

    def matches(self, pred: np.ndarray, true: np.ndarray) -> np.ndarray:
        multi_class = pred.ndim >= 2 and pred.shape[-1] > 1
        if self.link == "sigmoid" or (self.link is None and not multi_class):
            return _binary_matches(pred, true, self.threshold, "accuracy")
        return pred.argmax(axis=-1) == _class_labels(pred, true, "accuracy")


def _fill_metrics(table: NameTable) -> None:
    """Every public Metric class of ``nurinet.training`` by its class name, plus Keras's short
    names; the evaluation metrics are imported here, on first lookup."""
    from nurinet import training
    from nurinet.training import classification_metrics as cm
    from nurinet.training import regression_metrics as rm

    table.add_public(training, lambda obj: isinstance(obj, type) and issubclass(obj, Metric)
                     and obj is not Metric and obj is not Mean)
    # The class names give "accuracy", "binary_accuracy", "f1_score"...; these are the other names.
    aliases = {
        Accuracy: ("acc",), TopKCategoricalAccuracy: ("top_k_accuracy",), cm.F1Score: ("f1",),
        rm.MeanAbsoluteError: ("mae", "mean_absolute_error"),
        rm.MeanSquaredError: ("mse", "mean_squared_error"),
        rm.RootMeanSquaredError: ("rmse", "root_mean_squared_error"), rm.R2Score: ("r2",),
    }
    for cls, names in aliases.items():
        table.register(names[0], cls, *names[1:], overwrite=True)


METRICS = NameTable("metric", hint="Pass a Metric object for your own metric")
METRICS.add_loader(_fill_metrics)


def get_metric(metric: str | Metric) -> Metric:
    """A fresh metric from its name (``"accuracy"``, ``"f1"``, ``"mae"``, ``"BinaryAccuracy"``...,
    case and punctuation ignored) or the metric itself.

    Raises:
        ValueError: an unknown name (the message lists the known names).
    """
    if isinstance(metric, Metric):
        return metric
    if not isinstance(metric, str):
        raise TypeError(f"a metric must be a name or a Metric object, got {metric!r}")
    return METRICS.get(metric)()


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """Counts ``m[i, j]`` of samples of true class ``i`` predicted as class ``j`` (혼동 행렬).

    Args:
        y_true: Integer class labels.
        y_pred: Integer predicted labels (take ``argmax`` of scores first).
        num_classes: Number of classes; inferred from the labels when None.
    """
    true = _array(y_true).astype(np.int64).ravel()
    pred = _array(y_pred).astype(np.int64).ravel()
    if true.shape != pred.shape:
        raise ValueError(f"confusion_matrix: {true.size} labels but {pred.size} predictions")
    n = num_classes if num_classes is not None else int(max(true.max(initial=-1), pred.max(initial=-1))) + 1
    if true.size and (min(true.min(), pred.min()) < 0 or max(true.max(), pred.max()) >= n):
        raise ValueError(f"confusion_matrix: a label is outside 0..{n - 1}")
    return np.bincount(true * n + pred, minlength=n * n).reshape(n, n)


def format_confusion_matrix(matrix: np.ndarray, labels: Sequence[str] | None = None) -> str:
    """The matrix as aligned text: rows are true classes, columns predictions."""
    n = matrix.shape[0]
    labels = [str(i) for i in range(n)] if labels is None else [str(v) for v in labels]
    width = max(max(len(s) for s in labels), len(str(int(matrix.max(initial=0))))) + 1
    header = " " * (width + 1) + "".join(f"{s:>{width}}" for s in labels) + "   <- predicted"
    rows = [f"{labels[i]:>{width}} " + "".join(f"{int(v):>{width}}" for v in matrix[i]) for i in range(n)]
    return "\n".join([header, *rows])
