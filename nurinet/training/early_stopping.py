"""EarlyStopping, and the "is this value better?" rule shared by the monitoring callbacks."""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any

from nurinet.training.callbacks import Callback

# Metrics where larger is better; any other monitored value is minimized in mode "auto".
_MAXIMIZED = ("acc", "auc", "precision", "recall", "f1", "r2")


class Monitor:
    """Which direction of a monitored log value counts as an improvement.

    Args:
        monitor: The log key (``"val_loss"``, ``"val_accuracy"``...).
        mode: ``"min"``, ``"max"``, or ``"auto"`` (max for accuracy-like names, else min).
        min_delta: How much a value must beat the reference by to count (>= 0).
        owner: The callback's name, for error messages.
    """

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0, owner: str = "") -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got mode={mode!r}")
        if not min_delta >= 0:
            raise ValueError(f"{owner}: min_delta must be >= 0, got min_delta={min_delta!r}")
        if mode == "auto":
            name = monitor.removeprefix("val_").lower()
            mode = "max" if any(key in name for key in _MAXIMIZED) else "min"
        self.monitor, self.mode, self.min_delta, self.owner = monitor, mode, float(min_delta), owner

    @property
    def worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def improved(self, value: float, reference: float) -> bool:
        """Whether ``value`` beats ``reference`` by more than ``min_delta``."""
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def value(self, logs: dict | None) -> float | None:
        """The monitored value from ``logs``, or None (with a warning naming the keys there are)."""
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"{self.owner}: the monitored value {self.monitor!r} is not in the logs; "
                          f"available keys: {sorted(logs or {})}", RuntimeWarning, stacklevel=3)
            return None
        return float(value)


class EarlyStopping(Callback):
    """Stop training when a monitored value has stopped improving (Keras's semantics).

    Each epoch without an improvement (by more than ``min_delta``) adds one to
    a counter; an improvement resets it, unless the value still fails to beat
    ``baseline``. Training stops when the counter reaches ``patience``.

    Args:
        monitor: The log key to watch.
        min_delta: Smallest change that counts as an improvement.
        patience: Epochs without improvement before stopping.
        verbose: Print a line when stopping and restoring.
        mode: ``"auto"``, ``"min"`` or ``"max"``.
        baseline: A value the monitored quantity must beat; epochs that do
            not reach it count as bad even when they improve on the best.
        restore_best_weights: At the end of training, load the weights
            (a ``state_dict`` copy) of the best epoch seen.
        start_from_epoch: Epochs of warm-up during which nothing is monitored.

    Attributes:
        stopped_epoch: The epoch at which training was stopped (0 if it was not).
        best_epoch: The epoch of the best value.
        best: The best value.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__()
        self.rule = Monitor(monitor, mode, min_delta, "EarlyStopping")
        if patience < 0 or start_from_epoch < 0:
            raise ValueError(f"EarlyStopping: patience and start_from_epoch must be >= 0, got "
                             f"patience={patience!r}, start_from_epoch={start_from_epoch!r}")
        self.monitor, self.patience, self.verbose = monitor, patience, verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.on_train_begin()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self.rule.worst
        self.best_epoch = 0
        self.best_weights: dict[str, Any] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = self.rule.value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.state_dict()  # so something is restored even if nothing improves
        self.wait += 1
        if self.rule.improved(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
            if self.baseline is None or self.rule.improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", file=sys.stderr)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}",
                      file=sys.stderr)
            self.model.load_state_dict(self.best_weights)
