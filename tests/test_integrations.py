"""nurinet.integrations: the Optuna pruning callback and objective, the MLflow logger.

Optuna and MLflow are optional extras: their tests skip without them. MLflow runs against a
local file store in a temporary folder.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet.data import datasets
from nurinet.training import Callback, Model


def blobs(n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    return datasets.make_blobs(n, centers=3, cluster_std=2.0, generator=nt.Generator(0))


def classifier(lr: float = 0.05, hidden: int = 8, seed: int = 0) -> Model:
    nt.manual_seed(seed)
    model = Model(nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 3)))
    model.compile("sgd", "cross_entropy", metrics=["accuracy"], lr=lr)
    return model


class Boom(Callback):
    """Raises at the end of the given epoch."""

    def __init__(self, epoch: int = 1) -> None:
        super().__init__()
        self.at = epoch

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if epoch == self.at:
            raise RuntimeError("boom")


def test_importing_nurinet_imports_neither_extra() -> None:
    code = ("import sys, nurinet, nurinet.training, nurinet.integrations, nurinet.integrations.optuna, "
            "nurinet.integrations.mlflow; "
            "assert 'optuna' not in sys.modules and 'mlflow' not in sys.modules, "
            "[m for m in sys.modules if m.split('.')[0] in ('optuna', 'mlflow')]")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_missing_extras_name_the_extra(monkeypatch) -> None:
    from nurinet.integrations import mlflow as nt_mlflow
    from nurinet.integrations import optuna as nt_optuna

    monkeypatch.setitem(sys.modules, "optuna", None)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(ImportError, match=r"pip install 'nurinet\[optuna\]'"):
        nt_optuna.OptunaPruningCallback(object())
    with pytest.raises(ImportError, match=r"pip install 'nurinet\[mlflow\]'"):
        classifier().fit(*blobs(), epochs=1, verbose=0, callbacks=[nt_mlflow.MLflowLogger()])


def test_integration_callbacks_are_not_configuration_names() -> None:
    import nurinet.training

    assert not hasattr(nurinet.training, "OptunaPruningCallback")
    assert not hasattr(nurinet.training, "MLflowLogger")


# ----- Optuna ------------------------------------------------------------------------------------
class FakeTrial:
    def __init__(self, prune: bool) -> None:
        self.prune, self.reports = prune, []

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return self.prune


def test_pruning_callback_reports_and_raises_trial_pruned() -> None:
    optuna = pytest.importorskip("optuna")
    from nurinet.integrations.optuna import OptunaPruningCallback

    x, y = blobs()
    kept = FakeTrial(prune=False)
    history = classifier().fit(x, y, epochs=3, validation_split=0.25, verbose=0,
                               callbacks=[OptunaPruningCallback(kept)])
    assert kept.reports == list(enumerate(history.history["val_loss"]))

    pruned = FakeTrial(prune=True)
    with pytest.raises(optuna.TrialPruned, match="epoch 0"):
        classifier().fit(x, y, epochs=3, validation_split=0.25, verbose=0,
                         callbacks=[OptunaPruningCallback(pruned, monitor="loss")])
    assert [step for step, _ in pruned.reports] == [0]


def test_pruning_callback_names_the_available_logs() -> None:
    pytest.importorskip("optuna")
    from nurinet.integrations.optuna import OptunaPruningCallback

    with pytest.raises(ValueError, match=r"'val_acc' is not in the epoch logs; available: accuracy, loss, "
                                         r"val_accuracy, val_loss"):
        classifier().fit(*blobs(), epochs=1, validation_split=0.25, verbose=0,
                         callbacks=[OptunaPruningCallback(FakeTrial(False), monitor="val_acc")])
    with pytest.raises(ValueError, match=r"'val_loss' is not in the epoch logs; available: accuracy, loss "
                                         r"\(fit without validation data"):
        classifier().fit(*blobs(), epochs=1, verbose=0, callbacks=[OptunaPruningCallback(FakeTrial(False))])


def test_pruning_callback_skips_epochs_without_validation() -> None:
    pytest.importorskip("optuna")
    from nurinet.integrations.optuna import OptunaPruningCallback

    trial = FakeTrial(prune=False)
    classifier().fit(*blobs(), epochs=4, validation_split=0.25, validation_freq=2, verbose=0,
                     callbacks=[OptunaPruningCallback(trial)])
    assert [step for step, _ in trial.reports] == [1, 3]


def test_objective_runs_a_study_with_pruning() -> None:
    optuna = pytest.importorskip("optuna")
    from nurinet.integrations.optuna import objective

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def build(trial):
        return classifier(lr=trial.suggest_float("lr", 1e-4, 0.5, log=True), hidden=trial.suggest_int("hidden", 4, 16))

    x, y = blobs(200)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=3),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    study.optimize(objective(build, x, y, validation_split=0.25, epochs=3, batch_size=32), n_trials=4)

    states = [trial.state for trial in study.trials]
    assert len(states) == 4 and set(states) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert states[0] == optuna.trial.TrialState.COMPLETE
    assert optuna.trial.TrialState.PRUNED in states[1:]  # with this seed: complete, pruned, complete, pruned
    for trial in study.trials:
        reported = trial.intermediate_values  # {epoch: val_loss}
        assert reported and sorted(reported) == list(range(len(reported)))
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert len(reported) == 3
            assert trial.value == min(reported.values())
            assert reported[trial.user_attrs["best_epoch"]] == trial.value
        else:
            assert len(reported) < 3
    best = study.best_trial
    assert study.best_value == min(best.intermediate_values.values())
    # Refitting the best trial's model reproduces the value (same seed, same data split).
    again = objective(lambda t: build(t), x, y, validation_split=0.25, epochs=3, batch_size=32)
    assert again(optuna.trial.FixedTrial(best.params)) == pytest.approx(study.best_value)


def test_objective_maximizes_and_checks_its_arguments() -> None:
    optuna = pytest.importorskip("optuna")
    from nurinet.integrations.optuna import objective

    x, y = blobs()
    score = objective(lambda trial: classifier(), x, y, validation_split=0.25, epochs=3,
                      monitor="val_accuracy", direction="maximize")
    history = classifier().fit(x, y, validation_split=0.25, epochs=3, verbose=0)
    assert score(optuna.trial.FixedTrial({})) == max(history.history["val_accuracy"])
    with pytest.raises(ValueError, match="direction must be 'minimize' or 'maximize'"):
        objective(lambda trial: classifier(), x, y, validation_split=0.25, epochs=1, direction="min")
    with pytest.raises(ValueError, match="pass validation_data or validation_split"):
        objective(lambda trial: classifier(), x, y, epochs=1)
    with pytest.raises(ValueError, match="must return a compiled nurinet Model"):
        objective(lambda trial: Model(nn.Linear(2, 3)), x, y, epochs=1, monitor="loss")(
            optuna.trial.FixedTrial({}))


# ----- MLflow ------------------------------------------------------------------------------------
@pytest.fixture
def mlflow(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses a file store without it
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tmp_path.joinpath("mlruns").as_uri())
    yield mlflow
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)


def test_mlflow_logger_records_params_and_metrics(mlflow, tmp_path) -> None:
    from nurinet.integrations.mlflow import MLflowLogger

    logger = MLflowLogger(experiment_name="blobs", run_name="sgd", log_model=True, params={"batch_size": 16})
    model = classifier()
    history = model.fit(*blobs(), epochs=3, batch_size=16, validation_split=0.25, verbose=0, callbacks=[logger])

    assert mlflow.active_run() is None  # the logger ended the run it started
    client = mlflow.MlflowClient()
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "sgd"
    assert client.get_experiment(run.info.experiment_id).name == "blobs"
    assert run.data.params == {"optimizer": "SGD", "lr": "0.05", "loss": "cross_entropy", "metrics": "accuracy",
                               "epochs": "3", "steps_per_epoch": "6", "batch_size": "16",
                               **{k: v for k, v in run.data.params.items() if k.startswith("optimizer.")}}
    assert set(run.data.metrics) == set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for name, values in history.history.items():
        logged = client.get_metric_history(logger.run_id, name)
        assert [m.step for m in logged] == [0, 1, 2]
        assert [m.value for m in logged] == pytest.approx(values, rel=1e-12)
    artifacts = [a.path for a in client.list_artifacts(logger.run_id, "model")]
    assert artifacts == ["model/model.safetensors"]
    path = client.download_artifacts(logger.run_id, "model/model.safetensors", str(tmp_path))
    from nurinet.training import load_model

    np.testing.assert_allclose(load_model(path).predict(blobs()[0]), model.predict(blobs()[0]))


def test_mlflow_logger_uses_the_active_run_and_leaves_it_open(mlflow) -> None:
    from nurinet.integrations.mlflow import MLflowLogger

    with mlflow.start_run() as run:
        logger = MLflowLogger(log_params=False)
        classifier().fit(*blobs(), epochs=2, verbose=0, callbacks=[logger])
        assert logger.run_id == run.info.run_id
        assert mlflow.active_run().info.run_id == run.info.run_id
    logged = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in logged] == [0, 1]


def test_mlflow_logger_ends_its_run_when_fit_raises(mlflow) -> None:
    from nurinet.integrations.mlflow import MLflowLogger

    client = mlflow.MlflowClient()
    with pytest.raises(RuntimeError, match="boom"), MLflowLogger() as logger:
        classifier().fit(*blobs(), epochs=3, verbose=0, callbacks=[logger, Boom(1)])
    assert mlflow.active_run() is None
    assert client.get_run(logger.run_id).info.status == "FAILED"
    assert [m.step for m in client.get_metric_history(logger.run_id, "loss")] == [0, 1]

    # Without the context manager the failed fit leaves its run open; the next logger ends it.
    stale = MLflowLogger()
    with pytest.raises(RuntimeError, match="boom"):
        classifier().fit(*blobs(), epochs=3, verbose=0, callbacks=[stale, Boom(0)])
    assert mlflow.active_run().info.run_id == stale.run_id
    fresh = MLflowLogger()
    classifier().fit(*blobs(), epochs=1, verbose=0, callbacks=[fresh])
    assert fresh.run_id != stale.run_id and mlflow.active_run() is None
    assert client.get_run(stale.run_id).info.status == "FAILED"
    assert client.get_run(fresh.run_id).info.status == "FINISHED"


def test_mlflow_logger_marks_a_pruned_trial_killed(mlflow) -> None:
    optuna = pytest.importorskip("optuna")
    from nurinet.integrations.mlflow import MLflowLogger
    from nurinet.integrations.optuna import OptunaPruningCallback

    with pytest.raises(optuna.TrialPruned), MLflowLogger() as logger:
        classifier().fit(*blobs(), epochs=3, verbose=0,
                         callbacks=[logger, OptunaPruningCallback(FakeTrial(prune=True), monitor="loss")])
    assert mlflow.MlflowClient().get_run(logger.run_id).info.status == "KILLED"
