"""Data-parallel training with ``Model.fit``: a callback, and a helper to keep callbacks on rank 0."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nurinet.autograd.grad_mode import enable_grad
from nurinet.distributed.collectives import (
    DEFAULT_BUCKET_CAP_MB,
    GradientReducer,
    LayoutCache,
    agree_on_stop,
    any_process,
    broadcast_buffers,
    broadcast_optimizer_state,
    broadcast_parameters,
)
from nurinet.distributed.comm import Communicator, get_communicator
from nurinet.training.callbacks import Callback


class DistributedCallback(Callback):
    """Makes ``Model.fit`` train data-parallel over the processes of :func:`init`.

    - At train begin: every process takes ``root``'s parameters, buffers and
      optimizer state, and the model's optimizer is set to average the
      gradients over the processes before each update (the optimizer's
      ``step`` is wrapped for the length of ``fit`` and restored at its end;
      so any ``train_step`` that calls ``self.optimizer.step()`` is covered).
    - At each epoch begin: ``sampler.set_epoch(epoch)``, when a
      :class:`DistributedSampler` is given.
    - Before each batch (models with buffers only): ``root``'s buffers.
    - At each batch end and epoch end, in one small message: the logs (loss,
      metrics, validation) are replaced by their mean over the processes, and
      ``model.stop_training`` by its logical OR over the processes. Callbacks
      placed *after* this one (TerminateOnNaN, EarlyStopping, the progress bar,
      History) thus see the same numbers on every process and take the same
      decisions: a NaN loss on one process stops every process at the same
      batch, with the same weights.

    - Where ``fit`` reads the decision to stop (``model.should_stop()``, after
      every callback has run): its logical OR over the processes once more, so a
      stop that a later callback decides from its own state (a counter, the
      clock, a file) is shared too.

    Put it first in ``callbacks``. A hand-written loop shares its decisions with
    ``any_process``, or the processes stop at different steps and their
    collectives no longer match.
    Let only rank 0 print and save: ``verbose=1 if dist.is_root() else 0`` and
    :func:`root_only` for checkpoints and loggers (never for a callback that can
    stop training: every process must stop together).

    Args:
        sampler: The DistributedSampler of the training DataLoader, if any.
        root: The rank whose initial state every process takes.
        average_metrics: Average the epoch logs over the processes.
        broadcast_buffers: Give every process ``root``'s buffers before each batch.
        bucket_cap_mb: The largest gradient bucket, in megabytes.
        comm: The communicator; the process group of :func:`init` by default.
    """

    def __init__(self, sampler: Any = None, root: int = 0, average_metrics: bool = True,
                 broadcast_buffers: bool = True, bucket_cap_mb: float = DEFAULT_BUCKET_CAP_MB,
                 comm: Communicator | None = None) -> None:
        super().__init__()
        if sampler is not None and not callable(getattr(sampler, "set_epoch", None)):
            raise TypeError(f"DistributedCallback: sampler must have set_epoch(epoch), got {type(sampler).__name__}")
        self.sampler = sampler
        self.comm = get_communicator() if comm is None else comm
        self.root = self.comm.check_root(root)
        self.average_metrics = bool(average_metrics)
        self.sync_buffers = bool(broadcast_buffers)
        self.reducer = GradientReducer(bucket_cap_mb, self.comm)
        self._buffer_layouts = LayoutCache(bucket_cap_mb, "the buffers to broadcast")
        self._wrapped: Any = None
        self._previous: Any = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise RuntimeError("DistributedCallback needs a compiled model: call model.compile(...) before fit")
        broadcast_parameters(self.model, self.root, self.comm)
        broadcast_optimizer_state(optimizer, self.root, self.comm)
        self._has_buffers = any(True for _ in self.model.buffers())
        self._install(optimizer)
        self._share_stop()

    def _share_stop(self) -> None:
        """Make ``model.should_stop()`` the OR over the processes, for the length of ``fit``: a stop
        that a callback after this one decides from its own state is then shared too."""
        if self.comm.size == 1 or not callable(getattr(self.model, "should_stop", None)):
            return
        model, comm = self.model, self.comm

        def should_stop() -> bool:
            model.stop_training = any_process(bool(model.stop_training), comm)
            return model.stop_training

        model.should_stop = should_stop

    def _install(self, optimizer: Any) -> None:
        """Wrap ``optimizer.step`` (on this instance only) so that it first averages the gradients."""
        self._uninstall()
        params = [p for group in optimizer.param_groups for p in group["params"]]
        previous = optimizer.__dict__.get("step")  # a step patched on the instance, restored at the end
        if getattr(previous, "averages_gradients", False):  # left by a fit that raised: do not wrap twice
            previous = previous.restores
        self._previous = previous
        original = previous if previous is not None else type(optimizer).step.__get__(optimizer)
        reducer = self.reducer

        def step(closure: Callable[[], Any] | None = None) -> Any:
            loss = None
            if closure is not None:  # the closure runs backward: average what it computed
                with enable_grad():
                    loss = closure()
            reducer.allreduce(params, average=True)
            original()
            return loss

        step.averages_gradients = True
        step.restores = previous
        step.__wrapped__ = original
        optimizer.step = step
        self._wrapped = optimizer

    def _uninstall(self) -> None:
        if self._wrapped is None:
            return
        if self._previous is None:
            self._wrapped.__dict__.pop("step", None)
        else:
            self._wrapped.step = self._previous
        self._wrapped = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self.sync_buffers and self._has_buffers:
            broadcast_buffers(self.model, self.root, self.comm, cache=self._buffer_layouts)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._agree(logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._agree(logs)

    def _agree(self, logs: dict | None) -> None:
        """Average ``logs`` in place and OR ``stop_training`` over the processes (one message)."""
        if self.comm.size == 1:
            return
        shared = logs if self.average_metrics else None
        stop, means = agree_on_stop(bool(getattr(self.model, "stop_training", False)), shared, self.comm)
        if shared:
            shared.update(means)  # in place: later callbacks, and the epoch's logs, see the means
        if stop:
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        self._uninstall()
        self.model.__dict__.pop("should_stop", None)


def root_only(*callbacks: Callback, root: int = 0) -> list[Callback]:
    """``callbacks`` on the process ``root``, nothing on the others (checkpoints, CSV and TensorBoard logs).

    Example:
        >>> model.fit(loader, callbacks=[DistributedCallback(sampler), *root_only(ModelCheckpoint(path))])
    """
    return list(callbacks) if get_communicator().rank == root else []
