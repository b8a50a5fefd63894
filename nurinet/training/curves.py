"""Score-based evaluation of binary classifiers: ROC and precision-recall curves, threshold choice.

A binary classifier outputs a score per sample; a decision threshold turns it
into a label (``score >= threshold`` is positive). These functions sweep the
threshold over every distinct score at once (one sort, cumulative sums), so
they cost O(N log N) whatever the number of thresholds.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from nurinet.training.metrics import _array


class RocCurve(NamedTuple):
    """Points of a ROC curve, by decreasing threshold (the first threshold is ``inf``: nothing positive)."""

    thresholds: np.ndarray
    fpr: np.ndarray
    tpr: np.ndarray


class PrecisionRecallCurve(NamedTuple):
    """Points of a precision-recall curve, by increasing threshold, ending at (recall 0, precision 1)."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


def _binary_inputs(y_true: Any, scores: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(_array(y_true)).ravel()
    score = np.asarray(_array(scores), dtype=np.float64)
    if score.ndim == 2 and score.shape[1] in (1, 2):
        score = score[:, -1]  # (N, 2) probabilities: column 1 scores the positive class
    score = score.ravel()
    if true.size != score.size:
        raise ValueError(f"{where}: {true.size} labels but {score.size} scores; pass one score per "
                         "sample (for (N, C) scores with C > 2 use roc_auc_score, which averages "
                         "one-vs-rest)")
    if not np.isin(true, (0, 1)).all():
        raise ValueError(f"{where}: labels must be 0 or 1 (binary), got values {np.unique(true)[:5]}")
    if not np.isfinite(score).all():
        raise ValueError(f"{where}: scores contain NaN or infinity")
    return true.astype(np.int64), score


def _cumulative_counts(true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, ...]:
    """False/true positive counts at each distinct score taken as threshold, by decreasing score."""
    order = np.argsort(score, kind="mergesort")[::-1]
    score, true = score[order], true[order]
    last = np.r_[np.nonzero(np.diff(score))[0], true.size - 1]  # the last sample of each tie group
    tps = np.cumsum(true)[last]
    fps = (last + 1) - tps
    return fps, tps, score[last]


def roc_curve(y_true: Any, scores: Any) -> RocCurve:
    """The ROC curve: false and true positive rates at every distinct threshold.

    Args:
        y_true: Binary labels (0/1).
        scores: A score per sample (higher means more likely positive), or
            (N, 2) probabilities whose column 1 is used.

    Returns:
        ``RocCurve(thresholds, fpr, tpr)``; ``thresholds[0]`` is ``inf`` (the point (0, 0)).
    """
    true, score = _binary_inputs(y_true, scores, "roc_curve")
    fps, tps, thresholds = _cumulative_counts(true, score)
    positives, negatives = tps[-1], fps[-1]
    if positives == 0 or negatives == 0:
        raise ValueError("roc_curve: y_true holds only one class, so one of the rates is undefined")
    fpr = np.r_[0.0, fps / negatives]
    tpr = np.r_[0.0, tps / positives]
    return RocCurve(np.r_[np.inf, thresholds], fpr, tpr)


def roc_auc_score(y_true: Any, scores: Any) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative.

    Args:
        y_true: Binary labels (0/1), or class labels 0..C-1 with (N, C) scores.
        scores: (N,) binary scores, or (N, C) class scores; with C > 2 the
            one-vs-rest AUCs are macro-averaged over the classes.
    """
    score = np.asarray(_array(scores), dtype=np.float64)
    if score.ndim == 2 and score.shape[1] > 2:
        labels = np.asarray(_array(y_true)).ravel()
        return float(np.mean([roc_auc_score(labels == c, score[:, c]) for c in range(score.shape[1])]))
    _, fpr, tpr = roc_curve(y_true, score)
    return float(np.trapezoid(tpr, fpr)) if hasattr(np, "trapezoid") else float(np.trapz(tpr, fpr))


def precision_recall_curve(y_true: Any, scores: Any) -> PrecisionRecallCurve:
    """Precision and recall at every distinct threshold (the same points as scikit-learn).

    Returns:
        ``PrecisionRecallCurve(thresholds, precision, recall)`` with thresholds
        increasing; ``precision``/``recall`` have one more point, the final
        (precision 1, recall 0).
    """
    true, score = _binary_inputs(y_true, scores, "precision_recall_curve")
    fps, tps, thresholds = _cumulative_counts(true, score)
    if tps[-1] == 0:
        raise ValueError("precision_recall_curve: y_true has no positive sample, so recall is undefined")
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return PrecisionRecallCurve(thresholds[::-1], np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0])


def average_precision(y_true: Any, scores: Any) -> float:
    """Average precision: the sum over thresholds of precision times the gain in recall.

    ``AP = sum_n (R_n - R_{n-1}) P_n``, without interpolation (scikit-learn's definition).
    """
    _, precision, recall = precision_recall_curve(y_true, scores)
    return float(-np.sum(np.diff(recall) * precision[:-1]))


class ThresholdSweep(NamedTuple):
    """Counts and rates of a binary classifier at each threshold (``score >= threshold`` is positive)."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    tn: np.ndarray
    fn: np.ndarray
    precision: np.ndarray
    recall: np.ndarray

    def rows(self) -> list[dict[str, float]]:
        """One dict per threshold."""
        return [dict(zip(self._fields, values, strict=True)) for values in zip(*self, strict=True)]

    def __str__(self) -> str:
        head = f"{'threshold':>10} {'TP':>6} {'FP':>6} {'TN':>6} {'FN':>6} {'precision':>9} {'recall':>7}"
        lines = [f"{t:>10.4g} {tp:>6d} {fp:>6d} {tn:>6d} {fn:>6d} {p:>9.4f} {r:>7.4f}"
                 for t, tp, fp, tn, fn, p, r in zip(*self, strict=True)]
        return "\n".join([head, *lines])


def threshold_sweep(y_true: Any, scores: Any, thresholds: Any) -> ThresholdSweep:
    """Confusion counts, precision and recall of ``score >= t`` for each threshold ``t``.

    Precision is 0 where nothing is predicted positive (and so is recall
    when there is no positive sample).
    """
    true, score = _binary_inputs(y_true, scores, "threshold_sweep")
    t = np.asarray(thresholds, dtype=np.float64).ravel()
    pos_scores = np.sort(score[true == 1])
    neg_scores = np.sort(score[true == 0])
    tp = pos_scores.size - np.searchsorted(pos_scores, t, side="left")
    fp = neg_scores.size - np.searchsorted(neg_scores, t, side="left")
    fn, tn = pos_scores.size - tp, neg_scores.size - fp
    precision = np.divide(tp, tp + fp, out=np.zeros(t.shape), where=(tp + fp) > 0)
    recall = np.divide(tp, pos_scores.size, out=np.zeros(t.shape), where=pos_scores.size > 0)
    return ThresholdSweep(t, tp, fp, tn, fn, precision, recall)


class ThresholdChoice(NamedTuple):
    """The threshold of least expected cost, that cost per sample, and its FP/FN counts."""

    threshold: float
    cost: float
    fp: int
    fn: int


def choose_threshold(y_true: Any, scores: Any, cost_fp: float = 1.0, cost_fn: float = 1.0,
                     thresholds: Any = None) -> ThresholdChoice:
    """The decision threshold that minimizes ``(cost_fp * FP + cost_fn * FN) / N``.

    Args:
        y_true: Binary labels (0/1).
        scores: A score per sample.
        cost_fp: Cost of one false positive (e.g. an unnecessary alarm).
        cost_fn: Cost of one false negative (e.g. a missed case).
        thresholds: Candidates; by default every distinct score and ``inf``
            (predict nothing positive), which covers every possible decision.

    Returns:
        ``ThresholdChoice(threshold, cost, fp, fn)``; ties go to the later candidate
        (the highest threshold for the default candidates).
    """
    if cost_fp < 0 or cost_fn < 0:
        raise ValueError(f"choose_threshold: costs must be >= 0, got cost_fp={cost_fp}, cost_fn={cost_fn}")
    true, score = _binary_inputs(y_true, scores, "choose_threshold")
    candidates = np.r_[np.unique(score), np.inf] if thresholds is None else thresholds
    sweep = threshold_sweep(true, score, candidates)
    cost = (cost_fp * sweep.fp + cost_fn * sweep.fn) / true.size
    best = int(np.flatnonzero(cost == cost.min())[-1])
    return ThresholdChoice(float(sweep.thresholds[best]), float(cost[best]),
                           int(sweep.fp[best]), int(sweep.fn[best]))
