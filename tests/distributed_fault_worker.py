"""Run by tests/test_distributed.py under ``mpiexec -n 2``: faults on one rank in the middle of ``Model.fit``.

Usage: mpiexec -n 2 python tests/distributed_fault_worker.py SCENARIO OUT_DIR

Scenarios:
    raise: rank 1 raises in the middle of an epoch; the job must end (non-zero) instead of hanging.
    exit: rank 1 exits without an exception (``sys.exit(3)``) while rank 0 waits in a collective;
        ``init(timeout=...)`` must end the job.
    agree: decisions to stop taken on one rank only (a NaN loss under TerminateOnNaN, a stop set in
        ``train_step``, a callback sharing its wish through ``any_process``, EarlyStopping on
        different validation data): both ranks must stop at the same step with the same weights.
        Each rank writes what it saw to OUT_DIR/rank<r>.json.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

import nurinet as nt
import nurinet.distributed as dist
from nurinet import nn
from nurinet.data import DataLoader, TensorDataset
from nurinet.training import Model
from nurinet.training.callbacks import Callback
from nurinet.training.early_stopping import EarlyStopping
from nurinet.training.logging_callbacks import TerminateOnNaN

BATCH = 4
FAULT_AT = (0, 3)  # (epoch, batch) where rank 1 fails in the raise and exit scenarios
EXIT_TIMEOUT_S = 3.0


def data(n: int = 48, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def build(seed: int, model_class: type[Model] = Model) -> Model:
    nt.manual_seed(seed)
    model = model_class(nn.Sequential(nn.Linear(6, 8, activation="tanh"), nn.Linear(8, 2)))
    model.compile(optimizer="sgd", loss="cross_entropy", metrics=["accuracy"], lr=0.1)
    return model


def weights_digest(model: Model) -> str:
    """A digest of the weights' bytes: equal on two ranks only when the weights are bit for bit equal."""
    digest = hashlib.sha256()
    for p in model.parameters():
        digest.update(np.ascontiguousarray(p.array).tobytes())
    return digest.hexdigest()


class BatchLog(Callback):
    """Records the (epoch, batch) of every batch that ran."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.seen: list[list[int]] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.seen.append([self.epoch, batch])


class FailOnRankOne(BatchLog):
    """At FAULT_AT, rank 1 raises or exits while rank 0 goes on to its next collective."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        super().on_train_batch_end(batch, logs)
        if dist.rank() == 1 and (self.epoch, batch) == FAULT_AT:
            if self.how == "raise":
                raise ValueError("injected failure on rank 1")
            sys.exit(3)


def fit(model: Model, x: np.ndarray, y: np.ndarray, callbacks: list[Callback], epochs: int = 3,
        validation: Any = None) -> tuple[dict, BatchLog]:
    """Train data-parallel with a shuffling sampler; DistributedCallback first, as the docs say."""
    sampler = dist.DistributedSampler(len(x), shuffle=True, seed=1)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, sampler=sampler)
    log = BatchLog()
    history = model.fit(loader, epochs=epochs, verbose=0, validation_data=validation,
                        callbacks=[dist.DistributedCallback(sampler), *callbacks, log])
    return history.history, log


def outcome(model: Model, history: dict, log: BatchLog) -> dict:
    return {"seen": log.seen, "history": history, "weights": weights_digest(model),
            "stop_training": bool(model.stop_training)}


def nan_on_rank_one() -> dict:
    """Rank 1's batch 2 of epoch 1 holds a NaN sample: TerminateOnNaN fires there, on both ranks."""
    x, y = data()
    sampler = dist.DistributedSampler(len(x), shuffle=True, seed=1)
    sampler.set_epoch(1)
    if dist.rank() == 1:
        x[sampler.indices()[2 * BATCH]] = np.nan  # only rank 1 draws this sample
    terminate = TerminateOnNaN()
    model = build(seed=0)
    history, log = fit(model, x, y, [terminate])
    return {**outcome(model, history, log), "stopped": list(terminate.stopped or [])}


class StopInTrainStep(Model):
    """Rank 1 asks to stop from inside its 5th train_step, before any callback runs."""

    def train_step(self, batch: Any) -> dict:
        logs = super().train_step(batch)
        self.steps_run = getattr(self, "steps_run", 0) + 1
        if dist.rank() == 1 and self.steps_run == 5:
            self.stop_training = True
        return logs


def stop_in_train_step() -> dict:
    x, y = data()
    model = build(seed=0, model_class=StopInTrainStep)
    history, log = fit(model, x, y, [])
    return outcome(model, history, log)


class SharedWish(Callback):
    """Stops from per-process state (rank 1's 7th batch), shared first with any_process."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.batches += 1
        if dist.any_process(dist.rank() == 1 and self.batches == 7):
            self.model.stop_training = True


def stop_through_any_process() -> dict:
    x, y = data()
    model = build(seed=0)
    history, log = fit(model, x, y, [SharedWish()])
    return outcome(model, history, log)


class LocalWish(Callback):
    """Stops from per-process state (rank 1's 6th batch) without sharing it: fit's should_stop()
    shares it."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.batches += 1
        if dist.rank() == 1 and self.batches == 6:
            self.model.stop_training = True


def stop_from_local_state() -> dict:
    x, y = data()
    model = build(seed=0)
    history, log = fit(model, x, y, [LocalWish()])
    return outcome(model, history, log)


def early_stopping_on_different_validation_data() -> dict:
    """Each rank validates on its own data: the averaged val_loss makes them stop at the same epoch."""
    x, y = data()
    x_val, y_val = data(16, seed=20 + dist.rank())
    if dist.rank() == 1:
        y_val = 1 - y_val  # rank 1's validation loss rises while rank 0's falls
    stopper = EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    model = build(seed=0)
    history, log = fit(model, x, y, [stopper], epochs=8, validation=(x_val, y_val))
    return {**outcome(model, history, log), "stopped_epoch": stopper.stopped_epoch}


def main() -> None:
    scenario, out = sys.argv[1], Path(sys.argv[2])
    comm = dist.init(timeout=EXIT_TIMEOUT_S if scenario == "exit" else None)
    if scenario in ("raise", "exit"):
        x, y = data()
        fit(build(seed=0), x, y, [FailOnRankOne(scenario)])
        return
    result = {
        "rank": comm.rank,
        "nan": nan_on_rank_one(),
        "train_step": stop_in_train_step(),
        "any_process": stop_through_any_process(),
        "local_state": stop_from_local_state(),
        "early_stopping": early_stopping_on_different_validation_data(),
    }
    (out / f"rank{comm.rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
