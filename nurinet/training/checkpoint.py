"""The checkpoint callbacks of ``Model.fit``, one name each.

- :class:`ModelCheckpoint` is Keras's callback (``filepath``): the model every epoch or
  only on improvement, its weights alone or a full checkpoint.
- :class:`CheckpointCallback` (``"checkpoint"`` in a configuration) writes the full
  training state every ``every`` epochs (``path``: model, optimizer, scheduler, epoch and
  random generators), so that a run resumes bit for bit.

Files are written atomically by :mod:`nurinet.io` (a temporary file in the same
directory, flushed and fsynced, then ``os.replace``), so a crash during a save
leaves the previous checkpoint intact. With ``save_weights_only`` the file holds
the ``state_dict`` as safetensors (read it back with
``model.load_state_dict(nurinet.load(path))`` or ``model.load_weights(path)``); otherwise
it is a full :func:`nurinet.io.save_checkpoint` (weights, architecture when describable,
optimizer state, compile settings and epoch): ``nurinet.load(path)`` returns the model,
:func:`nurinet.training.load_model` the model compiled with its optimizer state, and
:func:`nurinet.io.load_checkpoint` everything.

A diverging run must not destroy its last good checkpoint: a save whose parameters (or,
for a full checkpoint, optimizer state) hold NaN or inf is refused with a
``RuntimeWarning`` naming the file and the first non-finite parameter, and the file
already there is kept. ``save_non_finite=True`` (nurinet's option) writes it anyway.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from nurinet.io.checkpoint import refuse_non_finite, save_checkpoint
from nurinet.io.safetensors import save_file
from nurinet.training.callbacks import Callback
from nurinet.training.early_stopping import Monitor
from nurinet.training.saving import compile_extra


class ModelCheckpoint(Callback):
    """Save the model at the end of epochs.

    Args:
        filepath: Destination; may contain ``{epoch}`` (1-based, as Keras) and
            log keys (``"ckpt-{epoch:02d}-{val_loss:.3f}.safetensors"``).
        monitor: Log key compared when ``save_best_only``.
        verbose: Print a line for each save.
        save_best_only: Save only when ``monitor`` improves on the best so far.
        save_weights_only: Save the weights alone (else weights and optimizer state).
        mode: ``"auto"``, ``"min"`` or ``"max"``.
        initial_value_threshold: A value the first saved epoch must beat.
        save_non_finite: Also write a checkpoint whose weights (or optimizer state) hold NaN
            or inf; by default such a save is refused with a warning and the previous file
            is kept (nurinet's option; Keras has none).

    Attributes:
        best: The best monitored value among the checkpoints written.
        saved: The paths written during the last ``fit``, in order.
        skipped: The paths not written during the last ``fit`` because the state was not finite.
    """

    def __init__(self, filepath: str | os.PathLike, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False, mode: str = "auto",
                 initial_value_threshold: float | None = None, save_non_finite: bool = False) -> None:
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.rule = Monitor(monitor, mode, 0.0, "ModelCheckpoint")
        self.monitor, self.verbose = monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.initial_value_threshold = initial_value_threshold
        self.save_non_finite = bool(save_non_finite)
        self.on_train_begin()

    def on_train_begin(self, logs: dict | None = None) -> None:
        threshold = self.initial_value_threshold
        self.best = self.rule.worst if threshold is None else float(threshold)
        self.saved: list[str] = []
        self.skipped: list[str] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        current = None
        if self.save_best_only:
            current = self.rule.value(logs)
            if current is None or not self.rule.improved(current, self.best):
                return
        if self._save(self._path(epoch, logs), epoch) and current is not None:
            self.best = current  # a refused save must not raise the bar for the next good one

    def _path(self, epoch: int, logs: dict[str, Any]) -> str:
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as error:
            raise KeyError(f"ModelCheckpoint: cannot format filepath {self.filepath!r} with epoch and "
                           f"the logs {sorted(logs)}: {error}") from None

    def _save(self, path: str, epoch: int) -> bool:
        """Write the checkpoint; False when it was refused for NaN or inf."""
        optimizer = None if self.save_weights_only else getattr(self.model, "optimizer", None)
        if not self.save_non_finite and refuse_non_finite("ModelCheckpoint", path, self.model, optimizer):
            self.skipped.append(path)
            if self.verbose:
                print(f"Epoch {epoch + 1}: not saving {path}: the weights are not finite", file=sys.stderr)
            return False
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        if self.save_weights_only:
            save_file(self.model.state_dict(), path)
        else:  # with the compile settings, so that load_model returns it compiled
            save_checkpoint(path, self.model, optimizer, epoch=epoch + 1,
                            extra=compile_extra(self.model, include_optimizer=optimizer is not None))
        self.saved.append(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved the model to {path}", file=sys.stderr)
        return True


class CheckpointCallback(Callback):
    """Save a full training checkpoint after every ``every`` epochs of ``Model.fit``.

    What :func:`nurinet.io.save_checkpoint` writes: the model, its optimizer, a scheduler,
    the epoch and the random generators, so that :func:`nurinet.io.load_checkpoint` resumes
    the run exactly. A checkpoint whose parameters or optimizer state hold NaN or inf (a
    diverging run) is not written: a ``RuntimeWarning`` names the file and the first
    non-finite parameter, and the previous file stays as it was.

    Args:
        path: File to write; ``{epoch}`` in it is replaced by the epoch number
            (otherwise the file is overwritten, atomically, each time).
        every: Save every this many epochs (the last epoch is always saved).
        generators: Generators to save besides the default one (e.g. fit's shuffling one).
        scheduler: A scheduler whose state is saved too.
        extra: Extra JSON-able values saved each time (the epoch's logs are added as ``"logs"``).
        save_non_finite: Write checkpoints with NaN or inf too (nurinet's option; off by default).

    Attributes:
        saved: The paths written, in order.
        skipped: The paths not written because the state was not finite.
    """

    def __init__(self, path: str | os.PathLike, every: int = 1, generators: Any = None,
                 scheduler: Any = None, extra: Mapping[str, Any] | None = None,
                 save_non_finite: bool = False) -> None:
        super().__init__()
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"CheckpointCallback: every must be a positive integer, got {every!r}")
        self.path, self.every = os.fspath(path), every
        self.generators, self.scheduler, self.extra = generators, scheduler, dict(extra or {})
        self.save_non_finite = bool(save_non_finite)
        self.saved: list[str] = []
        self.skipped: list[str] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        done = epoch + 1
        if done % self.every and done != self.params.get("epochs"):
            return
        path = self.path.replace("{epoch}", str(done))
        optimizer = getattr(self.model, "optimizer", None)
        if not self.save_non_finite and refuse_non_finite("CheckpointCallback", path, self.model, optimizer):
            self.skipped.append(path)
            return
        save_checkpoint(path, self.model, optimizer, epoch=done,
                        scheduler=self.scheduler, generators=self.generators,
                        extra={**compile_extra(self.model), **self.extra, "logs": dict(logs or {})})
        self.saved.append(path)
