"""Stateful classification metrics: Precision, Recall, F1Score, ConfusionMatrix, AUC.

Each accumulates over batches (``update_state(y_pred, y_true)``), so the value
reported for an epoch is the value over all of its samples, not an average of
per-batch values (which would be wrong for precision, recall, F1 and AUC).

Predictions are read as follows: integer arrays are class labels; float
scores of shape (N, C>1) are reduced with ``argmax``; float scores of shape
(N,) or (N, 1) are binary scores, positive when ``score > threshold``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet.training.metrics import Metric, _array, confusion_matrix

_AVERAGES = ("binary", "micro", "macro", "weighted")


def predicted_labels(y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    """Class labels from predictions: labels as they are, argmax of (N, C) scores, or a threshold.

    Args:
        y_pred: Integer labels (N,), scores (N, C) with C > 1, or binary scores (N,) / (N, 1).
        threshold: Decision threshold for binary scores (``score > threshold`` is class 1).
    """
    pred = _array(y_pred)
    if pred.dtype.kind in "iub":
        return pred.astype(np.int64).ravel()
    if pred.ndim >= 2 and pred.shape[-1] > 1:
        return pred.argmax(axis=-1).ravel()
    return (pred.ravel() > threshold).astype(np.int64)


def per_class_scores(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 and support of a confusion matrix (0 where undefined)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    predicted, support = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(tp), where=both > 0)
    return precision, recall, f1, support


def averaged_scores(matrix: np.ndarray, average: str, pos_label: int = 1) -> tuple[float, float, float]:
    """Precision, recall and F1 of a confusion matrix under an averaging rule.

    ``macro`` and ``weighted`` average over the classes that occur in the
    targets or the predictions (as scikit-learn does without ``labels=``);
    ``micro`` pools all classes (it equals the accuracy for single-label data).
    """
    if average == "binary":
        if matrix.shape[0] > 2:
            raise ValueError(
                f"average='binary' needs two classes but the data has {matrix.shape[0]}; "
                "use average='micro', 'macro' or 'weighted'"
            )
        padded = np.zeros((2, 2))
        padded[: matrix.shape[0], : matrix.shape[0]] = matrix
        return tuple(float(v[pos_label]) for v in per_class_scores(padded)[:3])  # type: ignore[return-value]
    precision, recall, f1, support = per_class_scores(matrix)
    if average == "micro":
        total = float(np.sum(matrix))
        value = float(np.trace(matrix)) / total if total else 0.0
        return value, value, value
    present = (np.asarray(matrix).sum(axis=0) + support) > 0
    if not present.any():
        return 0.0, 0.0, 0.0
    weights = support[present] if average == "weighted" else np.ones(int(present.sum()))
    if weights.sum() == 0:
        return 0.0, 0.0, 0.0
    return tuple(float(np.average(v[present], weights=weights)) for v in (precision, recall, f1))  # type: ignore[return-value]


def _check_average(average: str, where: str) -> str:
    if average not in _AVERAGES:
        raise ValueError(f"{where}: average must be one of {_AVERAGES}, got {average!r}")
    return average


class ConfusionMatrix(Metric):
    """The running confusion matrix ``m[true, predicted]`` over all batches.

    ``result()`` returns the matrix (an int64 array), not a float, so use it in
    your own evaluation loop (or read ``classification_report``) rather than in
    ``compile(metrics=...)``, whose progress line prints floats.

    Args:
        num_classes: Number of classes; when None the matrix grows to the
            largest label seen (and to C for (N, C) scores).
        threshold: Decision threshold for binary scores.
        from_logits: Binary scores are logits, so the default threshold is 0.
    """

    name = "confusion_matrix"

    def __init__(self, num_classes: int | None = None, threshold: float | None = None,
                 from_logits: bool = False, name: str | None = None) -> None:
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
            raise ValueError(f"{type(self).__name__}: num_classes must be a positive int, got {num_classes!r}")
        self.num_classes = num_classes
        self.threshold = (0.0 if from_logits else 0.5) if threshold is None else float(threshold)
        super().__init__(name)

    def reset_state(self) -> None:
        n = self.num_classes or 0
        self.matrix = np.zeros((n, n), dtype=np.int64)

    def update_state(self, y_pred: Any, y_true: Any) -> None:
        scores = _array(y_pred)
        true = _array(y_true)
        if true.ndim == scores.ndim and scores.ndim >= 2 and scores.shape[-1] > 1:
            true = true.argmax(axis=-1)  # one-hot targets
        true = true.astype(np.int64).ravel()
        pred = predicted_labels(scores, self.threshold)
        if true.size != pred.size:
            raise ValueError(f"{type(self).__name__}: {pred.size} predictions but {true.size} targets")
        wide = scores.shape[-1] if scores.ndim >= 2 and scores.dtype.kind == "f" else 0
        seen = max(int(true.max(initial=-1)), int(pred.max(initial=-1))) + 1
        n = self.num_classes or max(self.matrix.shape[0], seen, wide, 2)
        if seen > n:
            raise ValueError(f"{type(self).__name__}: a label is >= num_classes={n}")
        self._grow(n)
        self.matrix += confusion_matrix(true, pred, n)

    def _grow(self, n: int) -> None:
        old = self.matrix.shape[0]
        if n > old:
            bigger = np.zeros((n, n), dtype=np.int64)
            bigger[:old, :old] = self.matrix
            self.matrix = bigger

    def result(self) -> np.ndarray:  # type: ignore[override]
        return self.matrix.copy()


class _ConfusionScore(ConfusionMatrix):
    """Precision / recall / F1 from the running confusion matrix."""

    index = 0

    def __init__(self, average: str = "binary", num_classes: int | None = None,
                 threshold: float | None = None, from_logits: bool = False, pos_label: int = 1,
                 name: str | None = None) -> None:
        self.average = _check_average(average, type(self).__name__)
        self.pos_label = pos_label
        super().__init__(num_classes, threshold, from_logits, name)

    def result(self) -> float:  # type: ignore[override]
        if not self.matrix.size:
            return 0.0
        return averaged_scores(self.matrix, self.average, self.pos_label)[self.index]


class Precision(_ConfusionScore):
    """Precision ``tp / (tp + fp)``: of the samples predicted positive, the fraction that are.

    Args:
        average: ``"binary"`` (the ``pos_label`` class of a two-class problem),
            ``"micro"``, ``"macro"`` or ``"weighted"`` for several classes.
        num_classes: Number of classes, when known.
        threshold: Decision threshold for binary scores (default 0.5, or 0 with ``from_logits``).
        from_logits: Binary scores are logits.
        pos_label: The positive class for ``average="binary"``.

    Example:
        >>> model.compile("adam", "cross_entropy", metrics=[Precision(average="macro")])
    """

    name = "precision"
    index = 0


class Recall(_ConfusionScore):
    """Recall ``tp / (tp + fn)``: of the positive samples, the fraction found (same arguments as Precision)."""

    name = "recall"
    index = 1


class F1Score(_ConfusionScore):
    """F1, the harmonic mean of precision and recall (same arguments as Precision)."""

    name = "f1"
    index = 2


class AUC(Metric):
    """Area under the ROC curve over every sample seen, computed exactly (no buckets).

    Binary scores (N,) or (N, 1), or (N, 2) (column 1 is the positive
    score); for (N, C>2) scores the one-vs-rest AUCs are macro-averaged over
    the classes for which both positives and negatives were seen (0.0 until
    then, so a one-class first batch does not stop training). Any monotonic
    score works (logits or probabilities).

    The scores seen so far are kept sorted: each batch is merged in (a
    stable sort of two sorted runs, linear time), so calling ``result()``
    after every batch, as ``fit`` does, stays linear in the samples seen.
    """

    name = "auc"

    def reset_state(self) -> None:
        self.scores: np.ndarray | None = None  # (K, n) sorted ascending per column
        self.positive: np.ndarray | None = None  # (K, n) matching positive flags

    def update_state(self, y_pred: Any, y_true: Any) -> None:
        scores = np.asarray(_array(y_pred), dtype=np.float64)
        true = np.asarray(_array(y_true)).ravel()
        scores = scores.reshape(len(scores), -1) if scores.ndim > 1 else scores[:, None]
        if len(scores) != len(true):
            raise ValueError(f"AUC: {len(scores)} predictions but {len(true)} targets")
        if scores.shape[1] == 2:
            scores = scores[:, 1:]
        positive = (true[:, None] == np.arange(scores.shape[1])) if scores.shape[1] > 1 \
            else (true[:, None] == 1)
        if self.scores is not None and self.scores.shape[0] != scores.shape[1]:
            raise ValueError(f"AUC: got {scores.shape[1]} score columns after {self.scores.shape[0]}")
        order = np.argsort(scores, axis=0, kind="stable")
        scores, positive = np.take_along_axis(scores, order, 0).T, np.take_along_axis(positive, order, 0).T
        if self.scores is not None:
            scores = np.concatenate([self.scores, scores], axis=1)
            positive = np.concatenate([self.positive, positive], axis=1)  # type: ignore[list-item]
            order = np.argsort(scores, axis=1, kind="stable")
            scores, positive = np.take_along_axis(scores, order, 1), np.take_along_axis(positive, order, 1)
        self.scores, self.positive = scores, positive

    def result(self) -> float:
        if self.scores is None:
            return 0.0
        aucs = [_sorted_auc(s, p) for s, p in zip(self.scores, self.positive, strict=True)]  # type: ignore[arg-type]
        defined = [a for a in aucs if a is not None]
        return float(np.mean(defined)) if defined else 0.0


def _sorted_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Mann-Whitney AUC of ascending-sorted scores (ties count one half), or None with one class."""
    n, n_pos = scores.size, int(positive.sum())
    if n_pos == 0 or n_pos == n:
        return None
    starts = np.r_[0, np.flatnonzero(np.diff(scores)) + 1]
    ends = np.r_[starts[1:], n]
    midranks = (starts + 1 + ends) / 2.0  # the mean 1-based rank of each tie group
    rank_sum = float(np.dot(midranks, np.add.reduceat(positive.astype(np.float64), starts)))
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * (n - n_pos))
