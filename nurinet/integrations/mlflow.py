"""Experiment tracking with MLflow: :class:`MLflowLogger`, a callback recording a training run.

Needs the optional ``mlflow`` package (``pip install 'nurinet[mlflow]'``); it is imported when
training begins, never when this module is imported.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import warnings
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nurinet.training.callbacks import Callback

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["MLflowLogger"]

# Runs that an MLflowLogger started and whose fit has not reached on_train_end: a fit that
# raised left one open. The next MLflowLogger to begin training ends it (as FAILED) instead of
# logging into it as if it were the user's own active run.
_UNFINISHED_RUNS: set[str] = set()


def _mlflow() -> Any:
    """The ``mlflow`` module, or an ImportError naming the extra to install."""
    try:
        import mlflow
    except ImportError as error:
        raise ImportError("MLflowLogger needs MLflow: pip install 'nurinet[mlflow]' "
                          "(or pip install mlflow)") from error
    return mlflow


class MLflowLogger(Callback):
    """Record a ``fit`` in MLflow: its settings as params, every epoch's logs as metrics.

    At the start of training the logger starts an MLflow run, or logs into the active run
    when there is one (``with mlflow.start_run(): model.fit(...)``). It logs the settings
    as params (``optimizer``, ``lr`` and the optimizer's other numeric hyperparameters as
    ``optimizer.<name>``, ``loss``, ``metrics``, ``epochs``, ``steps_per_epoch``, and the
    ``params`` given here, such as ``batch_size``, which ``fit`` does not pass to its
    callbacks), then every epoch's logs as metrics with ``step=epoch``. At the end of
    training it logs the model (``Model.save``, as the artifact ``model/model.safetensors``)
    when ``log_model`` is set, and ends the run if it started it; a run it did not start is
    left open for its owner.

    ``fit`` calls no callback when it raises. Use the logger as a context manager to end
    its run then too, with the status ``FAILED`` (``KILLED`` for a pruned Optuna trial or
    ``KeyboardInterrupt``)::

        with MLflowLogger(experiment_name="digits") as logger:
            model.fit(x, y, epochs=10, callbacks=[logger])

    Without it, a run left open by a failed ``fit`` is ended as ``FAILED`` when an
    ``MLflowLogger`` next begins training (and by MLflow when the process exits).

    Args:
        experiment_name: The experiment of a new run (created when missing); None: MLflow's
            current experiment. Ignored when a run is already active.
        run_name: The name of a new run; None: MLflow's generated name.
        tracking_uri: Sets MLflow's tracking URI (``mlflow.set_tracking_uri``, for the whole
            process) at the start of training; None: MLflow's current one
            (``MLFLOW_TRACKING_URI``).
        log_params: Log the training settings as params.
        log_model: Log the trained model file as an artifact at the end of training.
        params: More params to log (``{"batch_size": 64}``).

    Attributes:
        run_id: The id of the run logged into (None before training).
    """

    def __init__(self, experiment_name: str | None = None, run_name: str | None = None,
                 tracking_uri: str | None = None, log_params: bool = True, log_model: bool = False,
                 params: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.experiment_name, self.run_name, self.tracking_uri = experiment_name, run_name, tracking_uri
        self.log_params, self.log_model = bool(log_params), bool(log_model)
        self.extra_params = dict(params or {})
        self.run_id: str | None = None
        self._owns_run = False
        self._client: Any = None

    # ----- the context manager: end the run when fit raises ---------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self._end_run("FINISHED")
        else:
            stopped = issubclass(kind, KeyboardInterrupt) or kind.__name__ == "TrialPruned"
            self._end_run("KILLED" if stopped else "FAILED")

    # ----- hooks ---------------------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        mlflow = _mlflow()
        if self.tracking_uri is not None:
            mlflow.set_tracking_uri(self.tracking_uri)
        active = mlflow.active_run()
        if active is not None and active.info.run_id in _UNFINISHED_RUNS:
            mlflow.end_run(status="FAILED")  # left open by a fit that raised
            _UNFINISHED_RUNS.discard(active.info.run_id)
            active = None
        if active is None:
            run = mlflow.start_run(experiment_id=self._experiment_id(mlflow), run_name=self.run_name)
            self.run_id, self._owns_run = run.info.run_id, True
            _UNFINISHED_RUNS.add(self.run_id)
        else:
            self.run_id, self._owns_run = active.info.run_id, False
        self._client = mlflow.MlflowClient()
        if self.log_params:
            self._log_params({**self._training_params(), **self.extra_params})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.run_id is None or self._client is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = []
        for key, value in (logs or {}).items():
            try:
                metrics.append(Metric(key, float(value), now, epoch))
            except (TypeError, ValueError):
                continue  # not a number: nothing MLflow can plot
        if metrics:
            self._client.log_batch(self.run_id, metrics=metrics)

    def on_train_end(self, logs: dict | None = None) -> None:
        try:
            if self.log_model and self.run_id is not None and self._client is not None:
                with tempfile.TemporaryDirectory() as folder:
                    path = os.path.join(folder, "model.safetensors")
                    self.model.save(path)
                    self._client.log_artifact(self.run_id, path, artifact_path="model")
        finally:
            self._end_run("FINISHED")

    # ----- helpers -------------------------------------------------------------------------------
    def _end_run(self, status: str) -> None:
        """End the run this logger started (once); a run it did not start stays open."""
        if not self._owns_run or self.run_id is None:
            return
        mlflow = _mlflow()
        active = mlflow.active_run()
        if active is not None and active.info.run_id == self.run_id:
            mlflow.end_run(status=status)
        else:  # no longer the active run (ended or replaced by the user): end it by id
            mlflow.MlflowClient().set_terminated(self.run_id, status=status)
        _UNFINISHED_RUNS.discard(self.run_id)
        self._owns_run = False

    def _experiment_id(self, mlflow: Any) -> str | None:
        if self.experiment_name is None:
            return None
        found = mlflow.get_experiment_by_name(self.experiment_name)
        return found.experiment_id if found is not None else mlflow.create_experiment(self.experiment_name)

    def _training_params(self) -> dict[str, Any]:
        """The settings of this fit that ``fit`` and the compiled model expose."""
        params: dict[str, Any] = {}
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            params["optimizer"] = type(optimizer).__name__
            groups = getattr(optimizer, "param_groups", None) or [{}]
            for key, value in groups[0].items():
                if key in ("params", "name", "initial_lr"):
                    continue
                if isinstance(value, tuple) and all(_is_number(v) for v in value):
                    value = list(value)
                elif not (_is_number(value) or isinstance(value, (bool, str))):
                    continue
                params["lr" if key == "lr" else f"optimizer.{key}"] = value
        loss = getattr(model, "loss_fn", None)
        if loss is not None:
            params["loss"] = _loss_name(loss)
        metrics = [getattr(metric, "name", type(metric).__name__)
                   for metric in getattr(model, "compiled_metrics", [])]
        if metrics:
            params["metrics"] = ",".join(metrics)
        for key, name in (("epochs", "epochs"), ("steps", "steps_per_epoch")):
            if self.params.get(key) is not None:
                params[name] = self.params[key]
        return params

    def _log_params(self, params: dict[str, Any]) -> None:
        """Log ``params``; MLflow refuses to change a logged param, so those already in the run
        (a second ``fit`` in the same run) are skipped, with a warning when the value differs."""
        from mlflow.entities import Param

        logged = self._client.get_run(self.run_id).data.params
        new, changed = {}, []
        for key, value in params.items():
            text = str(value)
            if key not in logged:
                new[key] = text
            elif logged[key] != text:
                changed.append(f"{key} ({logged[key]} -> {text})")
        if changed:
            warnings.warn(f"MLflowLogger: run {self.run_id} already has these params with other values, "
                          f"which MLflow cannot change: {', '.join(changed)}", UserWarning, stacklevel=2)
        if new:
            self._client.log_batch(self.run_id, params=[Param(k, v) for k, v in new.items()])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _loss_name(loss: Any) -> str:
    """A readable name of the compiled loss: its registered name, function name or class name."""
    info = getattr(loss, "info", None)
    name = getattr(info, "name", None)
    if isinstance(name, str):
        return name
    name = getattr(loss, "__name__", None)
    return name if isinstance(name, str) else type(loss).__name__
