"""The Keras-like training layer: Model (compile/fit/evaluate/predict), callbacks, metrics.

The core (autograd, functional, nn, optim, data) and ``io`` never import this package, and
``import nurinet`` does not load it. Training configurations (``nurinet train CONFIG``) are
:mod:`nurinet.training.config`, imported on their own.
"""

from nurinet.training.callback_names import callback_names, get_callback
from nurinet.training.callbacks import Callback, CallbackList, History, ProgressBar
from nurinet.training.checkpoint import CheckpointCallback, ModelCheckpoint
from nurinet.training.early_stopping import EarlyStopping
from nurinet.training.ema import ExponentialMovingAverage
from nurinet.training.ensemble import Ensemble, train_ensemble
from nurinet.training.evaluation import (
    AUC,
    MAE,
    MSE,
    RMSE,
    ClassificationReport,
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
from nurinet.training.gradient_monitor import GradientMonitor
from nurinet.training.logging_callbacks import CSVLogger, TensorBoard, TerminateOnNaN
from nurinet.training.lr_callbacks import LearningRateScheduler, ReduceLROnPlateau
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
from nurinet.training.saving import load_model, save_model
from nurinet.training.selection import (
    GridSearch,
    KFold,
    RandomSearch,
    StratifiedKFold,
    cross_validate,
)
from nurinet.training.transfer import (
    freeze,
    param_groups_with_lr,
    replace_head,
    unfreeze,
)

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
    "callback_names",
    "get_callback",
    "get_metric",
    "load_model",
    "save_model",
]

__all__ += [
    "AUC", "MAE", "MSE", "RMSE", "ClassificationReport", "ConfusionMatrix", "Ensemble", "F1Score",
    "GridSearch", "KFold", "Precision", "R2Score", "RandomSearch", "Recall", "StratifiedKFold",
    "average_precision", "choose_threshold", "classification_report", "cross_validate",
    "evaluate_report", "freeze", "param_groups_with_lr", "precision_recall_curve", "replace_head",
    "roc_auc_score", "roc_curve", "threshold_sweep", "train_ensemble", "unfreeze",
]

__all__ += [
    "CSVLogger", "CheckpointCallback", "EarlyStopping", "ExponentialMovingAverage", "GradientMonitor",
    "LearningRateScheduler", "ModelCheckpoint", "ReduceLROnPlateau", "TensorBoard", "TerminateOnNaN",
]
