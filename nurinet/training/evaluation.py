"""Evaluation reports and the evaluation toolkit's public names.

``classification_report`` gathers per-class precision/recall/F1/support, the
accuracy, macro and weighted averages and the confusion matrix into one object
whose ``str()`` is a Deeplearning4j-style summary. The stateful metrics live
in ``classification_metrics`` and ``regression_metrics``, the score curves in
``curves``; they are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nurinet.training.classification_metrics import (
    AUC,
    ConfusionMatrix,
    F1Score,
    Precision,
    Recall,
    averaged_scores,
    per_class_scores,
    predicted_labels,
)
from nurinet.training.curves import (
    PrecisionRecallCurve,
    RocCurve,
    ThresholdChoice,
    ThresholdSweep,
    average_precision,
    choose_threshold,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
    threshold_sweep,
)
from nurinet.training.metrics import _array, confusion_matrix, format_confusion_matrix
from nurinet.training.regression_metrics import (
    MAE,
    MSE,
    RMSE,
    MeanAbsoluteError,
    MeanSquaredError,
    R2Score,
    RootMeanSquaredError,
)

__all__ = [
    "AUC", "MAE", "MSE", "RMSE", "ClassificationReport", "ConfusionMatrix", "F1Score",
    "MeanAbsoluteError", "MeanSquaredError", "Precision", "PrecisionRecallCurve", "R2Score", "Recall",
    "RocCurve", "RootMeanSquaredError", "ThresholdChoice", "ThresholdSweep", "average_precision",
    "choose_threshold", "classification_report", "evaluate_report", "precision_recall_curve",
    "roc_auc_score", "roc_curve", "threshold_sweep",
]

_BAR = "=" * 66


def _banner(title: str) -> str:
    pad = len(_BAR) - len(title)
    return "=" * (pad // 2) + title + "=" * (pad - pad // 2)


@dataclass
class ClassificationReport:
    """Per-class and averaged scores of a classifier on a labelled set.

    Attributes:
        labels: Class names, one per row of ``confusion``.
        precision, recall, f1, support: Per-class arrays.
        accuracy: Fraction of correct predictions.
        macro, weighted: ``{"precision", "recall", "f1"}`` averaged equally /
            by support over the classes present.
        confusion: ``confusion[i, j]`` counts class ``i`` predicted as ``j``.
    """

    labels: list[str]
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    accuracy: float
    macro: dict[str, float]
    weighted: dict[str, float]
    confusion: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``{label: {precision, recall, f1, support}, "accuracy", "macro avg", ...}``."""
        out: dict[str, Any] = {
            label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(self.labels, self.precision, self.recall, self.f1,
                                         self.support, strict=True)
        }
        out.update({"accuracy": self.accuracy, "macro avg": dict(self.macro),
                    "weighted avg": dict(self.weighted), "confusion_matrix": self.confusion.tolist()})
        return out

    def table(self) -> str:
        """The per-class table (scikit-learn's layout)."""
        width = max(12, *(len(s) + 2 for s in self.labels))
        lines = [f"{'':>{width}} {'precision':>9} {'recall':>9} {'f1-score':>9} {'support':>9}"]
        for label, p, r, f, s in zip(self.labels, self.precision, self.recall, self.f1, self.support,
                                     strict=True):
            lines.append(f"{label:>{width}} {p:>9.4f} {r:>9.4f} {f:>9.4f} {int(s):>9d}")
        total = int(self.support.sum())
        lines.append(f"{'accuracy':>{width}} {'':>9} {'':>9} {self.accuracy:>9.4f} {total:>9d}")
        for name, avg in (("macro avg", self.macro), ("weighted avg", self.weighted)):
            lines.append(f"{name:>{width}} {avg['precision']:>9.4f} {avg['recall']:>9.4f} "
                         f"{avg['f1']:>9.4f} {total:>9d}")
        return "\n".join(lines)

    def __str__(self) -> str:
        n = len(self.labels)
        matrix = format_confusion_matrix(self.confusion, [str(i) for i in range(n)]).splitlines()
        legend = [f"{row} | {i} = {label}" for i, (row, label) in enumerate(
            zip(matrix[1:], self.labels, strict=True))]
        return "\n".join([
            "", _banner("Evaluation Metrics"),
            f" # of classes:    {n}",
            f" Accuracy:        {self.accuracy:.4f}",
            f" Precision:       {self.macro['precision']:.4f}",
            f" Recall:          {self.macro['recall']:.4f}",
            f" F1 Score:        {self.macro['f1']:.4f}",
            f"Precision, recall & F1: macro-averaged (equally weighted avg. of {n} classes)",
            "", self.table(), "", _banner("Confusion Matrix"), matrix[0], *legend, "",
            "Confusion matrix format: Actual (rowClass) predicted as (columnClass) N times",
            _BAR,
        ])


def classification_report(y_true: Any, y_pred_or_scores: Any, labels: Sequence[Any] | None = None,
                          threshold: float = 0.5) -> ClassificationReport:
    """Evaluate predicted labels (or scores) against the true labels.

    Args:
        y_true: Integer class labels (N,), or one-hot targets (N, C).
        y_pred_or_scores: Integer labels (N,), class scores (N, C) (argmax is
            taken), or binary scores (N,) / (N, 1) cut at ``threshold``.
        labels: Class names (their number sets the number of classes);
            default ``"0"``, ``"1"``, ... up to the largest label seen.
        threshold: Decision threshold for binary scores.

    Returns:
        A :class:`ClassificationReport`; ``print(report)`` shows the summary.
    """
    true = np.asarray(_array(y_true))
    scores = np.asarray(_array(y_pred_or_scores))
    if true.ndim == 2 and true.shape[1] > 1:
        true = true.argmax(axis=1)
    true = true.astype(np.int64).ravel()
    pred = predicted_labels(scores, threshold)
    if true.size != pred.size:
        raise ValueError(f"classification_report: {true.size} labels but {pred.size} predictions")
    seen = max(int(true.max(initial=0)), int(pred.max(initial=0))) + 1
    wide = scores.shape[-1] if scores.ndim == 2 and scores.dtype.kind == "f" and scores.shape[-1] > 1 else 0
    n = max(seen, wide) if labels is None else len(labels)
    if seen > n:
        raise ValueError(f"classification_report: {len(labels or [])} label names given but a class "
                         f"label reaches {seen - 1}; pass one name per class")
    matrix = confusion_matrix(true, pred, n)
    precision, recall, f1, support = per_class_scores(matrix)
    names = [str(i) for i in range(n)] if labels is None else [str(v) for v in labels]
    keys = ("precision", "recall", "f1")
    return ClassificationReport(
        names, precision, recall, f1, support.astype(np.int64),
        float(np.trace(matrix) / max(matrix.sum(), 1)),
        dict(zip(keys, averaged_scores(matrix, "macro"), strict=True)),
        dict(zip(keys, averaged_scores(matrix, "weighted"), strict=True)), matrix)


def evaluate_report(model: Any, x: Any, y: Any, labels: Sequence[Any] | None = None,
                    batch_size: int = 256, threshold: float = 0.5) -> ClassificationReport:
    """``classification_report`` of a trained :class:`~nurinet.training.Model` on ``(x, y)``.

    The threshold of a binary output applies to its probabilities (``predict_proba``), also
    when the network ends in logits.

    Example:
        >>> print(evaluate_report(model, x_test, y_test, labels=iris.target_names))
    """
    if not hasattr(model, "predict"):
        raise TypeError(f"evaluate_report needs a nurinet.training.Model (with predict), got "
                        f"{type(model).__name__}; wrap a module as Model(module)")
    return classification_report(y, _scores(model, x, batch_size), labels, threshold)


def _scores(model: Any, x: Any, batch_size: int) -> Any:
    """Probabilities where the model's output stands for them (so the threshold applies to
    probabilities, never to logits), else the model's outputs."""
    proba = getattr(model, "predict_proba", None)
    if proba is None:
        return model.predict(x, batch_size=batch_size)
    from nurinet.training.outputs import PlainValuesError

    try:
        return proba(x, batch_size=batch_size)
    except PlainValuesError:
        return model.predict(x, batch_size=batch_size)
