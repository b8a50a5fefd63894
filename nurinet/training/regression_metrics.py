"""Stateful regression metrics: MAE, MSE, RMSE and R2Score.

They accumulate sums in float64 over batches, so the epoch value equals the
value computed on all samples at once. Predictions of shape (N, 1) are matched
to targets of shape (N,). With several outputs (N, K) the value is the mean
over outputs (scikit-learn's ``multioutput="uniform_average"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet.training.metrics import Metric, _array


def _pair(y_pred: Any, y_true: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(_array(y_pred), dtype=np.float64)
    true = np.asarray(_array(y_true), dtype=np.float64)
    if pred.size != true.size:
        raise ValueError(f"{where}: predictions of shape {pred.shape} do not match targets of shape "
                         f"{true.shape}")
    pred = pred.reshape(true.shape)
    columns = true.shape[-1] if true.ndim >= 2 else 1
    return pred.reshape(-1, columns), true.reshape(-1, columns)


class MeanAbsoluteError(Metric):
    """Mean of ``|y_pred - y_true|``."""

    name = "mae"

    def update_state(self, y_pred: Any, y_true: Any) -> None:
        pred, true = _pair(y_pred, y_true, type(self).__name__)
        self.total += float(np.abs(pred - true).sum())
        self.count += pred.size


class MeanSquaredError(Metric):
    """Mean of ``(y_pred - y_true) ** 2``."""

    name = "mse"

    def update_state(self, y_pred: Any, y_true: Any) -> None:
        pred, true = _pair(y_pred, y_true, type(self).__name__)
        self.total += float(np.square(pred - true).sum())
        self.count += pred.size


class RootMeanSquaredError(MeanSquaredError):
    """Square root of the mean squared error (in the targets' units)."""

    name = "rmse"

    def result(self) -> float:
        return float(np.sqrt(super().result()))


class R2Score(Metric):
    """Coefficient of determination ``1 - SS_res / SS_tot`` (1 is perfect, 0 predicts the mean).

    A constant target (``SS_tot = 0``) gives 1.0 for a perfect prediction and
    0.0 otherwise, as scikit-learn does.
    """

    name = "r2"

    def reset_state(self) -> None:
        self.n = 0
        self.sum = self.sum_sq = self.residual = np.zeros(0)

    def update_state(self, y_pred: Any, y_true: Any) -> None:
        pred, true = _pair(y_pred, y_true, type(self).__name__)
        if self.n == 0:
            self.sum = self.sum_sq = self.residual = np.zeros(true.shape[1])
        elif true.shape[1] != self.sum.shape[0]:
            raise ValueError(f"R2Score: got {true.shape[1]} outputs after {self.sum.shape[0]}")
        self.n += len(true)
        self.sum = self.sum + true.sum(axis=0)
        self.sum_sq = self.sum_sq + np.square(true).sum(axis=0)
        self.residual = self.residual + np.square(true - pred).sum(axis=0)

    def result(self) -> float:
        if self.n == 0:
            return 0.0
        total = np.maximum(self.sum_sq - np.square(self.sum) / self.n, 0.0)
        scale = np.maximum(self.sum_sq / self.n, 1e-300)
        constant = total <= 1e-12 * scale * self.n  # the target does not vary
        safe = np.where(constant, 1.0, total)
        r2 = np.where(constant, np.where(self.residual <= 1e-12 * scale * self.n, 1.0, 0.0),
                      1.0 - self.residual / safe)
        return float(np.mean(r2))


MAE = MeanAbsoluteError
MSE = MeanSquaredError
RMSE = RootMeanSquaredError
