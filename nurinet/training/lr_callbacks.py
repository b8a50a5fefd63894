"""Callbacks that change the learning rate: a per-epoch schedule, and a reduction on plateaus."""

from __future__ import annotations

import sys
from collections.abc import Callable

from nurinet.training.callbacks import Callback
from nurinet.training.early_stopping import Monitor


def _groups(model: object, owner: str) -> list[dict]:
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "param_groups"):
        raise RuntimeError(f"{owner} needs a compiled model with an optimizer: call model.compile first")
    return optimizer.param_groups


class LearningRateScheduler(Callback):
    """At the start of each epoch, set each group's rate to ``schedule(epoch, lr)``.

    ``logs["learning_rate"]`` reports the rate of the first group.

    Args:
        schedule: ``schedule(epoch, current_lr) -> new_lr`` (epochs count from 0).
        verbose: Print the new rate each epoch.
    """

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0) -> None:
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler expects a function schedule(epoch, lr), got {schedule!r}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        for group in _groups(self.model, "LearningRateScheduler"):
            lr = self.schedule(epoch, group["lr"])
            if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr >= 0:
                raise ValueError(f"LearningRateScheduler: schedule({epoch}, {group['lr']}) returned {lr!r}; "
                                 "it must return a number >= 0")
            group["lr"] = float(lr)
        if self.verbose:
            print(f"Epoch {epoch + 1}: learning rate {self.model.optimizer.param_groups[0]['lr']:.4g}",
                  file=sys.stderr)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.param_groups[0]["lr"]


class ReduceLROnPlateau(Callback):
    """Multiply the learning rates by ``factor`` after ``patience`` epochs without improvement.

    Keras's callback, driving :class:`nurinet.optim.ReduceLROnPlateau` with an
    absolute threshold ``min_delta``. Counting follows Keras: the rate drops at
    the end of the ``patience``-th epoch in a row without improvement.

    Args:
        monitor: The log key to watch.
        factor: Multiplier of the rate, in (0, 1).
        patience: Epochs without improvement before reducing (>= 1).
        verbose: Print a line for each reduction.
        mode: ``"auto"``, ``"min"`` or ``"max"``.
        min_delta: Smallest change that counts as an improvement.
        cooldown: Epochs to wait after a reduction before counting again.
        min_lr: Lower bound on the rate.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0) -> None:
        super().__init__()
        self.rule = Monitor(monitor, mode, min_delta, "ReduceLROnPlateau")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"ReduceLROnPlateau: patience must be an integer >= 1, got patience={patience!r}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must lie in (0, 1), got factor={factor!r}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self.scheduler = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        from nurinet.optim.lr_scheduler import ReduceLROnPlateau as Scheduler

        _groups(self.model, "ReduceLROnPlateau")
        # The scheduler reduces after more than `patience` bad epochs; Keras after `patience`.
        self.scheduler = Scheduler(self.model.optimizer, mode=self.rule.mode, factor=self.factor,
                                   patience=self.patience - 1, threshold=self.min_delta,
                                   threshold_mode="abs", cooldown=self.cooldown, min_lr=self.min_lr)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = self.rule.value(logs)
        if current is not None and self.scheduler is not None:
            before = self.scheduler.get_last_lr()
            self.scheduler.step(current)
            after = self.scheduler.get_last_lr()
            if self.verbose and after != before:
                print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {after[0]:.4g}",
                      file=sys.stderr)
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.param_groups[0]["lr"]
