"""An exponential moving average of the weights: Keras 3's ``use_ema`` as a callback.

Keras 3 keeps the average in the optimizer (``optimizer=Adam(use_ema=True, ema_momentum=0.99)``)
and copies it into the model at the end of ``fit`` (``finalize_variable_values``). nurinet's
optimizers are PyTorch's, so the average is the callback :class:`ExponentialMovingAverage`, and
``Model.compile(..., use_ema=True, ema_momentum=0.99)`` adds one to every ``fit``.
"""

from __future__ import annotations

import numbers
from typing import Any

from nurinet.autograd.versions import increment_version
from nurinet.training.callbacks import Callback


class ExponentialMovingAverage(Callback):
    """Keep an exponential moving average of the trainable weights; put it in the model at the end.

    After each optimizer step, each trainable parameter ``w`` updates its shadow copy
    ``shadow = decay * shadow + (1 - decay) * w``; the first step of a ``fit`` sets
    ``shadow = w`` (Keras uses momentum 0 at its first iteration). At the end of training the
    shadows are copied into the parameters, as Keras's ``finalize_variable_values``. As in
    Keras, evaluation during training (``val_loss``, callbacks) sees the raw weights, not the
    averages; buffers (batch-norm statistics) are not averaged.

    A step is counted as ``Model.fit``'s steps (once per accumulation group with
    ``gradient_accumulation_steps``). A model whose own ``train_step`` calls
    ``optimizer.step()`` itself is averaged after every batch.

    Args:
        decay: The weight of the old average, in [0, 1) (Keras's ``ema_momentum``).

    Attributes:
        shadows: The averages, one array per trainable parameter (during and after training).
        updates: How many times the averages were updated in the last ``fit``.
    """

    def __init__(self, decay: float = 0.999) -> None:
        super().__init__()
        if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not 0.0 <= decay < 1.0:
            raise ValueError(f"ExponentialMovingAverage: decay must be a number in [0, 1) (the weight "
                             f"of the old average, e.g. 0.999), got {decay!r}")
        self.decay = float(decay)
        self.shadows: list[Any] = []
        self.updates = 0
        self._params: list[Any] = []
        self._seen = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._params = [p for p in self.model.parameters() if p.requires_grad]
        self.shadows = [p.array.copy() for p in self._params]
        self.updates = 0
        self._seen = self._iterations()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._catch_up(per_batch=True)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._catch_up(per_batch=False)  # the step of an accumulation group closed at the epoch's end

    def on_train_end(self, logs: dict | None = None) -> None:
        self._catch_up(per_batch=False)
        if not self.updates:
            return
        for p, shadow in zip(self._params, self.shadows):
            p.array[...] = shadow
        increment_version(self._params)

    def _iterations(self) -> int:
        steps = getattr(self.model, "optimizer_steps", None)
        return getattr(steps, "iterations", 0)

    def _catch_up(self, per_batch: bool) -> None:
        now = self._iterations()
        stepped = now != self._seen
        self._seen = now
        if not stepped:
            steps = getattr(self.model, "optimizer_steps", None)
            # fit's own steps did not move: a train_step of one's own stepped the optimizer itself
            # (unless gradients are waiting for the rest of an accumulation group).
            if not per_batch or getattr(steps, "pending", 0):
                return
        self._update()

    def _update(self) -> None:
        m = 0.0 if self.updates == 0 else self.decay
        for p, shadow in zip(self._params, self.shadows):
            shadow *= m
            shadow += (1.0 - m) * p.array
        self.updates += 1
