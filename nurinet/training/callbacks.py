"""Callbacks with Keras's hook names, and the two that ``fit`` always uses.

A callback overrides any of ``on_train_begin(logs)``, ``on_train_end(logs)``,
``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``,
``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``,
``on_test_begin/end(logs)``, ``on_test_batch_begin/end(batch, logs)`` and
``on_predict_begin/end(logs)``. ``self.model`` is the model being trained; a
callback stops training by setting ``self.model.stop_training = True``.
"""

from __future__ import annotations

import sys
from typing import Any

HOOKS = (
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
    "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
)


class Callback:
    """Base class: every hook does nothing."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_begin(self, logs: dict | None = None) -> None: ...
    def on_test_end(self, logs: dict | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_begin(self, logs: dict | None = None) -> None: ...
    def on_predict_end(self, logs: dict | None = None) -> None: ...


class CallbackList:
    """Calls a hook on every callback in order; only callbacks that override a hook are called."""

    def __init__(self, callbacks: list[Callback], model: Any, params: dict[str, Any]) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {type(cb).__name__}")
            cb.set_model(model)
            cb.set_params(params)
        # Per-batch hooks run thousands of times: call only the overriding callbacks.
        self.active = {
            hook: [getattr(cb, hook) for cb in self.callbacks
                   if getattr(type(cb), hook) is not getattr(Callback, hook)]
            for hook in HOOKS
        }

    def call(self, hook: str, *args: Any) -> None:
        for method in self.active[hook]:
            method(*args)


class History(Callback):
    """Records the logs of every epoch: ``history.history["loss"]`` is a list per epoch."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch: list[int] = []
        self.history: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class ProgressBar(Callback):
    """A tqdm progress bar per epoch (verbose=1) or one line per epoch (verbose=2).

    The bar is drawn only when the output is a terminal; otherwise (logs, CI)
    verbose=1 behaves like verbose=2 so no control characters are written.
    """

    def __init__(self, verbose: int = 1, stream: Any = None) -> None:
        super().__init__()
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self.bar: Any = None

    def _interactive(self) -> bool:
        return self.verbose == 1 and hasattr(self.stream, "isatty") and self.stream.isatty()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_number = epoch
        if self._interactive():
            from tqdm import tqdm

            total = self.params.get("steps")
            epochs = self.params.get("epochs")
            self.bar = tqdm(total=total, desc=f"Epoch {epoch + 1}/{epochs}", file=self.stream,
                            leave=True, dynamic_ncols=True)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if batch % 10 == 0 and logs:
                self.bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        text = " - ".join(f"{k}: {v:.4f}" for k, v in (logs or {}).items())
        if self.bar is not None:
            self.bar.set_postfix_str(text)
            self.bar.close()
            self.bar = None
        elif self.verbose >= 1:
            print(f"Epoch {epoch + 1}/{self.params.get('epochs')} - {text}", file=self.stream)
