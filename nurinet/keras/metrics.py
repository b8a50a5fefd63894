"""Keras's ``keras.metrics``: nurinet.training's metrics under Keras's class names.

``compile(metrics=["accuracy"])`` and names work as in ``nurinet.training.Model``; these are the
same classes, so ``keras.metrics.SparseCategoricalAccuracy()`` is
``nurinet.training.SparseCategoricalAccuracy()`` (and ``Model.save`` stores it).
"""

from nurinet.training import (
    AUC,
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    F1Score,
    Mean,
    Metric,
    Precision,
    R2Score,
    Recall,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    get_metric,
)
from nurinet.training import MAE as MeanAbsoluteError
from nurinet.training import MSE as MeanSquaredError
from nurinet.training import RMSE as RootMeanSquaredError

get = get_metric  # keras.metrics.get(name)

__all__ = ["AUC", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "F1Score", "Mean", "MeanAbsoluteError",
           "MeanSquaredError", "Metric", "Precision", "R2Score", "Recall", "RootMeanSquaredError",
           "SparseCategoricalAccuracy", "TopKCategoricalAccuracy", "get"]
