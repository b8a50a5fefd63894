"""Stateful metrics, score curves, threshold choice and the classification report."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet.training import Model
from nurinet.training.evaluation import (
    AUC,
    MAE,
    MSE,
    RMSE,
    ConfusionMatrix,
    F1Score,
    Precision,
    R2Score,
    Recall,
    average_precision,
    choose_threshold,
    classification_report,
    evaluate_report,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
    threshold_sweep,
)


def binary_data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    scores = np.round(rng.random(n) + 0.6 * y, 2)  # rounded: many tied scores
    return y, scores


def multi_data(n: int = 400, c: int = 4, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    scores = rng.random((n, c)) + 0.4 * np.eye(c)[y]
    return y, (scores / scores.sum(axis=1, keepdims=True)).astype(np.float32)


def batched(metric, y_pred, y_true, size: int = 64):
    for i in range(0, len(y_true), size):
        metric.update_state(y_pred[i:i + size], y_true[i:i + size])
    return metric.result()


# ----- closed forms ---------------------------------------------------------------------------
def test_binary_precision_recall_f1_closed_form() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1, 0.6, 0.4])
    # threshold 0.5: predicted 1 1 0 1 0 0 1 0 -> tp=3, fp=1, fn=1
    assert batched(Precision(), scores, y, 3) == pytest.approx(3 / 4)
    assert batched(Recall(), scores, y, 3) == pytest.approx(3 / 4)
    assert batched(F1Score(), scores, y, 3) == pytest.approx(3 / 4)
    # threshold 0.35: 1 1 0 1 0 0 1 1 -> tp=3, fp=2
    assert batched(Precision(threshold=0.35), scores, y) == pytest.approx(3 / 5)
    logits = np.log(scores / (1 - scores))
    assert batched(Precision(from_logits=True), logits, y) == pytest.approx(3 / 4)


def test_metric_reset_and_compile_use() -> None:
    m = Recall()
    m.update_state(np.array([0.9, 0.1]), np.array([1, 1]))
    assert m.result() == pytest.approx(0.5)
    m.reset_state()
    assert m.result() == 0.0
    x, y = nt.data.load_iris()
    nt.manual_seed(0)
    model = Model(nn.Sequential(nn.Linear(4, 16, activation="tanh"), nn.Linear(16, 3)))
    model.compile("adam", "cross_entropy", metrics=[F1Score(average="macro"), AUC()], lr=0.05)
    history = model.fit(x / 8, y, epochs=3, verbose=0, batch_size=32)
    assert {"f1", "auc"} <= set(history.history)
    logs = model.evaluate(x / 8, y)
    f1 = classification_report(y, model.predict(x / 8)).macro["f1"]
    assert logs["f1"] == pytest.approx(f1)


def test_confusion_matrix_metric_grows_and_counts() -> None:
    m = ConfusionMatrix()
    m.update_state(np.array([0, 1]), np.array([0, 0]))
    m.update_state(np.eye(3)[[2, 2]].astype(np.float32), np.array([2, 1]))
    np.testing.assert_array_equal(m.result(), [[1, 1, 0], [0, 0, 1], [0, 0, 1]])
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionMatrix(num_classes=2).update_state(np.array([3]), np.array([0]))


def test_average_binary_rejects_many_classes() -> None:
    y, scores = multi_data()
    with pytest.raises(ValueError, match="average='binary' needs two classes"):
        batched(Precision(), scores, y)
    with pytest.raises(ValueError, match="average must be one of"):
        F1Score(average="samples")


def test_regression_metrics_closed_form() -> None:
    pred = np.array([[1.0], [2.0], [4.0]], dtype=np.float32)
    true = np.array([1.0, 3.0, 2.0])
    assert batched(MAE(), pred, true, 2) == pytest.approx(1.0)
    assert batched(MSE(), pred, true, 2) == pytest.approx(5 / 3)
    assert batched(RMSE(), pred, true, 2) == pytest.approx(np.sqrt(5 / 3))
    # SS_tot = 2, SS_res = 5 -> R2 = -1.5
    assert batched(R2Score(), pred, true, 2) == pytest.approx(-1.5)
    assert batched(R2Score(), np.ones(3), np.ones(3)) == 1.0
    with pytest.raises(ValueError, match="do not match"):
        MAE().update_state(np.ones(4), np.ones(3))


def test_roc_closed_form() -> None:
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    thresholds, fpr, tpr = roc_curve(y, scores)
    np.testing.assert_allclose(thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    assert roc_auc_score(y, scores) == pytest.approx(0.75)
    # AP: thresholds 0.8 (P=1, R=.5), 0.4 (P=.5), 0.35 (P=2/3, R=1) -> .5*1 + .5*2/3
    assert average_precision(y, scores) == pytest.approx(0.5 + 1 / 3)


def test_auc_is_the_pairwise_win_rate() -> None:
    y, scores = binary_data()
    pos, neg = scores[y == 1], scores[y == 0]
    wins = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert roc_auc_score(y, scores) == pytest.approx(wins)
    assert batched(AUC(), scores[:, None], y) == pytest.approx(wins)


def test_auc_metric_waits_for_both_classes() -> None:
    m = AUC()
    m.update_state(np.array([0.2, 0.3]), np.array([1, 1]))
    assert m.result() == 0.0  # undefined yet: no error in the middle of an epoch
    m.update_state(np.array([0.1, 0.25]), np.array([0, 0]))
    assert m.result() == pytest.approx(roc_auc_score([1, 1, 0, 0], [0.2, 0.3, 0.1, 0.25]))
    with pytest.raises(ValueError, match="score columns"):
        m.update_state(np.ones((2, 3)), np.array([0, 1]))


def test_curve_errors() -> None:
    with pytest.raises(ValueError, match="only one class"):
        roc_curve(np.ones(4), np.arange(4.0))
    with pytest.raises(ValueError, match="must be 0 or 1"):
        roc_curve(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="2 labels but 3 scores"):
        precision_recall_curve(np.array([0, 1]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="NaN"):
        roc_curve(np.array([0, 1]), np.array([0.1, np.nan]))


# ----- thresholds -----------------------------------------------------------------------------
def test_threshold_sweep_counts() -> None:
    y, scores = binary_data(50)
    sweep = threshold_sweep(y, scores, [0.0, 0.5, 0.9, 2.0])
    for i, t in enumerate(sweep.thresholds):
        pred = scores >= t
        assert sweep.tp[i] == np.sum(pred & (y == 1)) and sweep.fp[i] == np.sum(pred & (y == 0))
        assert sweep.tn[i] == np.sum(~pred & (y == 0)) and sweep.fn[i] == np.sum(~pred & (y == 1))
    assert sweep.recall[0] == 1.0 and sweep.precision[-1] == 0.0
    assert len(sweep.rows()) == 4 and "precision" in str(sweep)


def test_choose_threshold_minimizes_cost_by_brute_force() -> None:
    y, scores = binary_data(120, seed=3)
    for cost_fp, cost_fn in [(1, 1), (1, 10), (10, 1)]:
        choice = choose_threshold(y, scores, cost_fp, cost_fn)
        costs = [(cost_fp * np.sum((scores >= t) & (y == 0)) + cost_fn * np.sum((scores < t) & (y == 1)))
                 / len(y) for t in np.r_[np.unique(scores), np.inf]]
        assert choice.cost == pytest.approx(min(costs))
    cautious = choose_threshold(y, scores, 1, 10).threshold
    assert cautious <= choose_threshold(y, scores, 10, 1).threshold  # missing cases costs more
    with pytest.raises(ValueError, match="costs must be >= 0"):
        choose_threshold(y, scores, -1, 1)


# ----- report ---------------------------------------------------------------------------------
def test_classification_report_contents_and_text() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    report = classification_report(y, pred, labels=["a", "b", "c"])
    np.testing.assert_allclose(report.precision, [1 / 2, 2 / 3, 1])
    np.testing.assert_allclose(report.recall, [1 / 2, 1, 1 / 2])
    assert report.accuracy == pytest.approx(4 / 6)
    np.testing.assert_array_equal(report.confusion, [[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    text = str(report)
    assert "========================Evaluation Metrics========================" in text
    assert " # of classes:    3" in text and "Accuracy:        0.6667" in text
    assert "Confusion Matrix" in text and "2 = c" in text
    assert report.to_dict()["b"]["support"] == 2
    with pytest.raises(ValueError, match="one name per class"):
        classification_report(y, pred, labels=["a", "b"])


def test_report_of_binary_scores_and_one_hot_targets() -> None:
    y = np.array([0, 1, 1, 0])
    report = classification_report(np.eye(2)[y], np.array([[0.2], [0.7], [0.4], [0.1]]), threshold=0.3)
    np.testing.assert_array_equal(report.confusion, [[2, 0], [0, 2]])
    assert classification_report(y, np.array([0.2, 0.7, 0.4, 0.1])).accuracy == pytest.approx(0.75)


def test_evaluate_report_of_a_model() -> None:
    x, y = nt.data.load_iris()
    nt.manual_seed(0)
    model = Model(nn.Sequential(nn.Linear(4, 16, activation="tanh"), nn.Linear(16, 3)))
    model.compile("adam", "cross_entropy", metrics=["accuracy"], lr=0.05)
    model.fit(x / 8, y, epochs=10, verbose=0)
    report = evaluate_report(model, x / 8, y, labels=["setosa", "versicolor", "virginica"])
    assert report.accuracy == pytest.approx(model.evaluate(x / 8, y)["accuracy"])
    assert report.support.tolist() == [50, 50, 50]
    with pytest.raises(TypeError, match="predict"):
        evaluate_report(nn.Linear(4, 3), x, y)


# ----- scikit-learn parity --------------------------------------------------------------------
def test_curves_match_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    y, scores = binary_data()
    thresholds, fpr, tpr = roc_curve(y, scores)
    ref_fpr, ref_tpr, ref_thr = metrics.roc_curve(y, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    np.testing.assert_allclose(thresholds[1:], ref_thr[1:])
    thr, precision, recall = precision_recall_curve(y, scores)
    ref_p, ref_r, ref_t = metrics.precision_recall_curve(y, scores)
    np.testing.assert_allclose(precision, ref_p)
    np.testing.assert_allclose(recall, ref_r)
    np.testing.assert_allclose(thr, ref_t)
    assert roc_auc_score(y, scores) == pytest.approx(metrics.roc_auc_score(y, scores))
    assert average_precision(y, scores) == pytest.approx(metrics.average_precision_score(y, scores))
    yc, sc = multi_data()
    assert roc_auc_score(yc, sc) == pytest.approx(metrics.roc_auc_score(yc, sc, multi_class="ovr"))
    assert batched(AUC(), sc, yc, 50) == pytest.approx(metrics.roc_auc_score(yc, sc, multi_class="ovr"))


@pytest.mark.parametrize("average", ["micro", "macro", "weighted"])
def test_multiclass_scores_match_sklearn(average: str) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    y, scores = multi_data()
    pred = scores.argmax(axis=1)
    for ours, ref in [(Precision, metrics.precision_score), (Recall, metrics.recall_score),
                      (F1Score, metrics.f1_score)]:
        assert batched(ours(average=average), scores, y) == pytest.approx(ref(y, pred, average=average))


def test_binary_and_regression_match_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    y, scores = binary_data()
    pred = (scores > 0.7).astype(int)
    assert batched(F1Score(threshold=0.7), scores, y) == pytest.approx(metrics.f1_score(y, pred))
    assert batched(Precision(threshold=0.7, pos_label=0), scores, y) == pytest.approx(
        metrics.precision_score(y, pred, pos_label=0))
    rng = np.random.default_rng(0)
    true = rng.standard_normal((90, 3))
    guess = true + 0.5 * rng.standard_normal((90, 3))
    assert batched(R2Score(), guess, true, 32) == pytest.approx(metrics.r2_score(true, guess))
    assert batched(MAE(), guess, true, 32) == pytest.approx(metrics.mean_absolute_error(true, guess))
    assert batched(MSE(), guess, true, 32) == pytest.approx(metrics.mean_squared_error(true, guess))


def test_report_matches_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    y, scores = multi_data()
    pred = scores.argmax(axis=1)
    ref = metrics.classification_report(y, pred, output_dict=True)
    ours = classification_report(y, scores).to_dict()
    for key in ("0", "1", "2", "3", "macro avg", "weighted avg"):
        assert ours[key]["precision"] == pytest.approx(ref[key]["precision"])
        assert ours[key]["f1"] == pytest.approx(ref[key]["f1-score"])
    assert ours["accuracy"] == pytest.approx(ref["accuracy"])
    np.testing.assert_array_equal(classification_report(y, scores).confusion,
                                  metrics.confusion_matrix(y, pred))
