"""The Keras-like training layer: Model (compile/fit/evaluate/predict), callbacks, metrics.

The core (autograd, functional, nn, optim, data) never imports this package.
"""

from nurinet.training.callbacks import Callback, CallbackList, History, ProgressBar
from nurinet.training.metrics import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    Mean,
    Metric,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    get_metric,
)
from nurinet.training.model import Model

__all__ = [
    "Accuracy",
    "BinaryAccuracy",
    "Callback",
    "CallbackList",
    "CategoricalAccuracy",
    "History",
    "Mean",
    "Metric",
    "Model",
    "ProgressBar",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "get_metric",
]
