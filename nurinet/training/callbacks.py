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
    """A progress bar per epoch (verbose=1) or one line per epoch (verbose=2), on stdout as in Keras.

    The bar comes from ``tqdm.auto``: in a Jupyter notebook it is tqdm's widget
    when ipywidgets is installed, and tqdm's text bar otherwise (notebooks
    render its carriage returns); in a terminal it is the text bar. Anywhere
    else (a log file, CI, a pipe) verbose=1 behaves like verbose=2, so no
    control characters are written. The output goes to stdout, not stderr:
    a notebook shows stderr on a red background, as if training had failed.

    Args:
        verbose: 0 nothing, 1 a bar (or one line per epoch, see above), 2 one line per epoch.
        stream: Where to write; ``sys.stdout`` at the time of writing by default
            (so a stream redirected later, by a notebook kernel or pytest, is used).
    """

    def __init__(self, verbose: int = 1, stream: Any = None) -> None:
        super().__init__()
        self.verbose = verbose
        self._stream = stream
        self.bar: Any = None

    @property
    def stream(self) -> Any:
        """The stream written to: the one given, else the current ``sys.stdout``."""
        return self._stream if self._stream is not None else sys.stdout

    def _interactive(self) -> bool:
        if self.verbose != 1:
            return False
        if in_notebook():
            return True
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_number = epoch
        if self._interactive():
            tqdm = _auto_tqdm()
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
            print(f"Epoch {epoch + 1}/{self.params.get('epochs')} - {text}", file=self.stream, flush=True)


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (notebook, JupyterLab, VS Code, Colab).

    The test is tqdm's own (``tqdm.autonotebook``): ipykernel's shell is loaded and
    the frontend is not a Qt console. IPython is not imported here: a process that
    has not imported it is no kernel.
    """
    if "ipykernel.zmqshell" not in sys.modules or "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return shell is not None and "qt" not in type(shell).__name__.lower()


def _auto_tqdm() -> Any:
    """``tqdm.auto.tqdm``: the notebook widget in a kernel with ipywidgets, the text bar otherwise.

    Without ipywidgets, ``tqdm.auto`` warns (on stderr, red in a notebook) that it
    falls back to the text bar; that text bar on stdout is what we want there, so
    the warning is silenced.
    """
    import warnings

    from tqdm import TqdmWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmWarning)  # also TqdmExperimentalWarning, a subclass
        from tqdm.auto import tqdm
    return tqdm
