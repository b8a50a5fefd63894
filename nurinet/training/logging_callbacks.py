"""Callbacks that record or guard training: CSVLogger, TerminateOnNaN, TensorBoard."""

from __future__ import annotations

import csv
import math
import os
import sys
from typing import Any

from nurinet.backend import to_numpy
from nurinet.training.callbacks import Callback


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` then the log values, columns sorted by name.

    The file is flushed after every row, so it can be watched during training.
    Values missing in an epoch (a validation metric when training stopped
    early) are written as ``NA``.

    Args:
        filename: The CSV file.
        separator: Column separator.
        append: Add rows to an existing file (its header is kept) instead of overwriting it.
    """

    def __init__(self, filename: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self.keys: list[str] | None = None
        self._file: Any = None
        self._writer: Any = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.keys = None
        existing = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        if existing:
            with open(self.filename, newline="") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            self.keys = header[1:] if header else None
        self._file = open(self.filename, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._file, delimiter=self.separator)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            self._writer.writerow(["epoch", *self.keys])
        self._writer.writerow([epoch, *(_csv_value(logs.get(key, "NA")) for key in self.keys)])
        self._file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = self._writer = None


def _csv_value(value: Any) -> Any:
    return repr(float(value)) if isinstance(value, float) else value


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite.

    Args:
        restore_last_finite: When it stops, load back the weights of the last batch whose
            loss was finite, as they were when that loss was computed (nurinet's option;
            Keras has none). The weights and persistent buffers are copied before every
            batch while the option is on, so it costs one copy of the model per batch;
            the optimizer's state is not restored.

    Attributes:
        stopped: ``(epoch, batch)`` where the loss became non-finite, or None.
        restored: True when the last finite weights were loaded back.
    """

    def __init__(self, restore_last_finite: bool = False) -> None:
        super().__init__()
        self.restore_last_finite = bool(restore_last_finite)
        self._candidate: dict[str, Any] | None = None  # the weights of the batch in progress
        self._finite: dict[str, Any] | None = None  # the last weights that gave a finite loss

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.stopped: tuple[int, int] | None = None
        self.restored = False
        self._epoch = 0
        self._candidate = self._finite = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.restore_last_finite:
            self._candidate = _copy_state(self.model, into=self._candidate)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            if self.restore_last_finite:  # these weights gave a finite loss: keep them, reuse the old copy
                self._finite, self._candidate = self._candidate, self._finite
            return
        print(f"Batch {batch} of epoch {self._epoch + 1}: invalid loss {loss}, terminating training",
              file=sys.stderr)
        self.stopped = (self._epoch, batch)
        self.model.stop_training = True
        if self.restore_last_finite and self._finite is not None:
            self.model.load_state_dict(self._finite)
            self.restored = True
            print("Restored the weights of the last batch with a finite loss", file=sys.stderr)


def _copy_state(model: Any, into: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of the model's parameters and persistent buffers, reusing the arrays of ``into``."""
    state = model._state_tensors()
    if into is None or into.keys() != state.keys() or any(
            into[k].shape != t.array.shape or into[k].dtype != t.array.dtype for k, t in state.items()):
        return {key: tensor.array.copy() for key, tensor in state.items()}
    for key, tensor in state.items():
        into[key][...] = tensor.array
    return into


class TensorBoard(Callback):
    """Write the epoch logs (and weight histograms) as TensorBoard event files.

    Needs the optional ``tensorboardX`` package (``pip install nurinet[tensorboard]``).
    Training values go to ``log_dir/train`` and validation values
    (``val_*``, without the prefix) to ``log_dir/validation``, both under
    the tag ``epoch_<name>``, as Keras writes them, so the two curves overlay.

    Args:
        log_dir: Directory of the event files.
        histogram_freq: Every this many epochs, write a histogram of each
            parameter and of its gradient (0 turns histograms off).
    """

    def __init__(self, log_dir: str | os.PathLike = "logs", histogram_freq: int = 0) -> None:
        super().__init__()
        if histogram_freq < 0:
            raise ValueError(f"TensorBoard: histogram_freq must be >= 0, got {histogram_freq!r}")
        self.log_dir, self.histogram_freq = os.fspath(log_dir), histogram_freq
        self._writers: dict[str, Any] = {}

    def on_train_begin(self, logs: dict | None = None) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError as error:
            raise ImportError("the TensorBoard callback needs tensorboardX: pip install tensorboardX "
                              "(or nurinet[tensorboard])") from error
        self._writers = {part: SummaryWriter(os.path.join(self.log_dir, part))
                         for part in ("train", "validation")}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        for key, value in (logs or {}).items():
            part, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            self._writers[part].add_scalar(f"epoch_{name}", float(value), epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            writer = self._writers["train"]
            for name, param in self.model.named_parameters():
                writer.add_histogram(name, to_numpy(param.array), epoch)
                if param.grad is not None:
                    writer.add_histogram(f"{name}/gradient", to_numpy(param.grad.array), epoch)
        for writer in self._writers.values():
            writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
