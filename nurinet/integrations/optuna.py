"""Hyperparameter search with Optuna: a pruning callback and an objective helper.

Needs the optional ``optuna`` package (``pip install 'nurinet[optuna]'``); it is imported when
a callback is created or an objective is called, never when this module is imported.

:class:`OptunaPruningCallback` is the counterpart of optuna-integration's
``KerasPruningCallback`` and ``PyTorchLightningPruningCallback``: it reports the monitored
value to the trial at the end of every epoch and raises ``optuna.TrialPruned`` out of
``fit`` when the trial's pruner says so. :func:`objective` builds the whole objective
function from a function that builds a compiled model from a trial.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from nurinet.training.callbacks import Callback

if TYPE_CHECKING:
    import optuna

    from nurinet.training.model import Model

__all__ = ["OptunaPruningCallback", "objective"]

_DIRECTIONS = ("minimize", "maximize")


def _optuna() -> Any:
    """The ``optuna`` module, or an ImportError naming the extra to install."""
    try:
        import optuna
    except ImportError as error:
        raise ImportError("nurinet.integrations.optuna needs Optuna: pip install 'nurinet[optuna]' "
                          "(or pip install optuna)") from error
    return optuna


class OptunaPruningCallback(Callback):
    """Report an epoch-end value to an Optuna trial and stop a trial its pruner prunes.

    At the end of every epoch, ``trial.report(logs[monitor], step=epoch)``; when
    ``trial.should_prune()`` is then true, ``optuna.TrialPruned`` is raised and propagates
    out of ``fit`` (Optuna's ``study.optimize`` records the trial as pruned), as in
    optuna-integration's Keras and PyTorch Lightning callbacks.

    An epoch without validation (``fit(validation_freq=k)``) is skipped when ``monitor`` is a
    validation value (``val_*``) and the epoch's logs hold none; a ``fit`` in which no epoch
    had it raises the error below at its end.

    Args:
        trial: The ``optuna.Trial`` being evaluated.
        monitor: The log name to report (``"val_loss"``, ``"val_accuracy"``, ``"loss"``...).

    Raises:
        ImportError: Optuna is not installed.
        ValueError: ``monitor`` is not in the logs (the message lists the names that are),
            at an epoch end or, for a ``val_*`` name, at the end of a ``fit`` without
            validation; or its value is not a number.

    Example:
        ``model.fit(x, y, validation_split=0.2, epochs=20,
        callbacks=[OptunaPruningCallback(trial, monitor="val_loss")])``
    """

    def __init__(self, trial: optuna.Trial, monitor: str = "val_loss") -> None:
        super().__init__()
        self._pruned = _optuna().TrialPruned
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"OptunaPruningCallback: monitor must be a log name, got {monitor!r}")
        self.trial, self.monitor = trial, monitor

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._reported = False
        self._names: list[str] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.monitor not in logs:
            self._names = sorted(logs)
            if self.monitor.startswith("val_") and not any(key.startswith("val_") for key in logs):
                return  # an epoch without validation (validation_freq > 1): checked at the end
            raise self._missing()
        value = _number(logs[self.monitor], self.monitor)
        self._reported = True
        self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            raise self._pruned(f"trial pruned at epoch {epoch} ({self.monitor} = {value})")

    def on_train_end(self, logs: dict | None = None) -> None:
        if not self._reported and self._names:  # no epoch validated: fit had no validation data
            raise self._missing()

    def _missing(self) -> ValueError:
        available = ", ".join(self._names) or "none"
        hint = (" (fit without validation data logs no val_* values: pass validation_data "
                "or validation_split)" if self.monitor.startswith("val_") else "")
        return ValueError(f"OptunaPruningCallback: monitor {self.monitor!r} is not in the epoch logs; "
                          f"available: {available}{hint}")


def _number(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"OptunaPruningCallback: {name} is {value!r}, not a number") from None


def objective(build: Callable[[optuna.Trial], Model], x: Any, y: Any = None, *, epochs: int,
              validation_data: Any = None, validation_split: float = 0.0, monitor: str = "val_loss",
              direction: str = "minimize", callbacks: Sequence[Callback] = (),
              **fit_kwargs: Any) -> Callable[[optuna.Trial], float]:
    """An Optuna objective: build a compiled model from the trial, fit it, score it.

    The returned function calls ``build(trial)`` (which suggests the hyperparameters and
    returns a compiled :class:`~nurinet.training.Model`), fits it on ``x, y`` for ``epochs``
    with an :class:`OptunaPruningCallback` on ``monitor``, and returns the best value of
    ``monitor`` over the epochs: the smallest for ``direction="minimize"``, the largest for
    ``"maximize"`` (give the study the same direction). The epoch of that value is stored
    as the trial's user attribute ``"best_epoch"``. A pruned trial raises
    ``optuna.TrialPruned``, which ``study.optimize`` records.

    Example::

        import optuna
        import nurinet as nt
        from nurinet import nn
        from nurinet.data import datasets
        from nurinet.integrations.optuna import objective
        from nurinet.training import Model

        x, y = datasets.make_blobs(300, centers=3, generator=nt.Generator(0))

        def build(trial):
            hidden = trial.suggest_int("hidden", 4, 32)
            model = Model(nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 3)))
            model.compile("adam", "cross_entropy", lr=trial.suggest_float("lr", 1e-3, 1e-1, log=True))
            return model

        study = optuna.create_study(direction="minimize",
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
        study.optimize(objective(build, x, y, validation_split=0.2, epochs=10, batch_size=32),
                       n_trials=20)
        print(study.best_params, study.best_value)

    Args:
        build: ``build(trial) -> Model``: a compiled model whose hyperparameters the trial suggests.
        x: The training inputs (or a DataLoader), as for ``Model.fit``.
        y: The training targets, as for ``Model.fit``.
        epochs: Epochs per trial.
        validation_data: Passed to ``fit``.
        validation_split: Passed to ``fit``.
        monitor: The log name scored and reported for pruning (a ``val_*`` name needs
            validation data or a validation split).
        direction: ``"minimize"`` or ``"maximize"``: which value of ``monitor`` is best.
        callbacks: More callbacks for every ``fit`` (created once and shared by the trials).
        **fit_kwargs: Any other ``fit`` argument (``batch_size``, ``verbose``...); ``verbose``
            defaults to 0.

    Returns:
        ``objective(trial) -> float`` for ``study.optimize``.

    Raises:
        ValueError: ``direction`` is not ``"minimize"`` or ``"maximize"``, or ``monitor`` is a
            validation value and no validation data is given.
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"objective: direction must be 'minimize' or 'maximize', got {direction!r}")
    if monitor.startswith("val_") and validation_data is None and not validation_split:
        raise ValueError(f"objective: monitor {monitor!r} is a validation value: pass validation_data "
                         "or validation_split (or monitor a training value such as 'loss')")
    fit_kwargs.setdefault("verbose", 0)

    def run_trial(trial: optuna.Trial) -> float:
        model = build(trial)
        if getattr(model, "loss_fn", None) is None:
            raise ValueError("objective: build(trial) must return a compiled nurinet Model "
                             f"(call model.compile(...)), got {type(model).__name__}")
        history = model.fit(x, y, epochs=epochs, validation_data=validation_data,
                            validation_split=validation_split,
                            callbacks=[*callbacks, OptunaPruningCallback(trial, monitor)], **fit_kwargs)
        epoch, best = _best(history.epoch, history.history.get(monitor, []), direction)
        if epoch is not None:
            trial.set_user_attr("best_epoch", epoch)
        return best

    return run_trial


def _best(epochs: list[int], values: list[Any], direction: str) -> tuple[int | None, float]:
    """The epoch and value of the best finite value (NaN when there is none).

    With ``validation_freq > 1`` a validation value is not logged at every epoch; its epoch
    is then unknown (None).
    """
    numbers = [float(v) for v in values]
    logged_at: list[int | None] = list(epochs) if len(epochs) == len(numbers) else [None] * len(numbers)
    finite = [(value, epoch) for value, epoch in zip(numbers, logged_at) if math.isfinite(value)]
    if not finite:
        return None, math.nan
    pick = min if direction == "minimize" else max
    value, epoch = pick(finite, key=lambda pair: pair[0])
    return epoch, value
