"""How ``Model.fit`` turns batch losses into optimizer steps: gradient accumulation, a learning
rate evaluated per step, and the count of steps taken.

Keras 3 puts both on its optimizer (``gradient_accumulation_steps=k``, and a
``learning_rate`` that is a ``LearningRateSchedule`` called with ``optimizer.iterations``);
nurinet's optimizers are PyTorch's, so ``Model.compile`` takes them and an
:class:`OptimizerSteps` applies them:

* **Gradient accumulation** (``compile(gradient_accumulation_steps=k)``): each batch's loss is
  divided by ``k`` and back-propagated without clearing the gradients; every ``k``-th batch the
  optimizer steps once on their sum, so the update is the one of the mean loss over the ``k``
  batches (one batch ``k`` times as large, for a model without batch-dependent layers). A group
  left unfinished at the end of an epoch is applied then, as the mean of its ``r < k`` batches
  (its gradients are multiplied by ``k / r``). Keras instead carries a partial group over into
  the next epoch and drops one left at the end of training; nurinet's epochs end with every
  batch applied, so that validation, checkpoints and callbacks see all the data of the epoch.
* **A per-step learning rate** (``compile(optimizer=..., lr=schedule)`` or
  ``learning_rate=schedule``, where ``schedule(step) -> float``, Keras's
  ``LearningRateSchedule``): before each optimizer step, every parameter group's ``lr`` is
  set to ``schedule(iterations)``, ``iterations`` being the number of optimizer steps taken
  since ``compile`` (0 for the first; a step of an accumulation group counts once, as in Keras).
  The count continues from one ``fit`` to the next, as Keras's ``optimizer.iterations``, and
  is not saved in checkpoints.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from nurinet.autograd.tensor import Tensor
from nurinet.nn.regularizers import apply_constraints
from nurinet.training.batch_methods import needs_closure

Schedule = Callable[[int], float]
_RATE_NAMES = ("lr", "learning_rate")


def split_schedule(optimizer: Any, kwargs: dict[str, Any]) -> tuple[Schedule | None, dict[str, Any]]:
    """Take a learning-rate schedule out of ``compile``'s optimizer keyword arguments.

    Args:
        optimizer: What ``compile`` was given (a name, an Optimizer or a factory).
        kwargs: The keyword arguments for the optimizer; ``lr`` or ``learning_rate`` may be a
            callable ``schedule(step) -> float``.

    Returns:
        The schedule (or None) and the keyword arguments to build the optimizer with, where a
        schedule is replaced by its first rate ``schedule(0)`` under ``lr``.

    Raises:
        TypeError: both ``lr`` and ``learning_rate`` are given as schedules.
    """
    found = [name for name in _RATE_NAMES if name in kwargs and _is_schedule(kwargs[name])]
    if not found:
        return None, kwargs
    if len(found) > 1:
        raise TypeError("compile: give the learning-rate schedule once, as lr= or learning_rate=, not both")
    rest = dict(kwargs)
    schedule = rest.pop(found[0])
    if isinstance(optimizer, str):
        rest["lr"] = rate_at(schedule, 0)
    return schedule, rest


def _is_schedule(value: Any) -> bool:
    return callable(value) and not isinstance(value, (numbers.Number, np.ndarray, Tensor))


def rate_at(schedule: Schedule, step: int) -> float:
    """``schedule(step)`` checked to be a number >= 0.

    Raises:
        ValueError: the schedule returned something else.
    """
    rate = schedule(step)
    if isinstance(rate, Tensor):
        rate = rate.item()
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not rate >= 0 or not np.isfinite(rate):
        raise ValueError(f"the learning-rate schedule returned {rate!r} for step {step}; it must return "
                         "a finite number >= 0")
    return float(rate)


def check_accumulation(steps: Any, optimizer: Any) -> int:
    """``gradient_accumulation_steps`` as an int >= 1 (None means 1).

    Raises:
        ValueError: not a whole number >= 1, or more than 1 with a batch optimizer (L-BFGS...),
            which evaluates the loss several times per step.
    """
    if steps is None:
        return 1
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"compile: gradient_accumulation_steps must be a whole number >= 1 (or None), "
                         f"got {steps!r}")
    if steps > 1 and needs_closure(optimizer):
        raise ValueError(f"compile: gradient_accumulation_steps={steps} needs a first-order optimizer; "
                         f"{type(optimizer).__name__} evaluates the loss several times per step (pass a "
                         "larger batch_size instead)")
    return int(steps)


class OptimizerSteps:
    """The optimizer steps of one compiled model: accumulation, schedule and step count.

    The steps are the ones of ``model.optimizer`` at the time of each call.

    Args:
        optimizer: The model's optimizer at compile time (its rates are set to ``schedule(0)``),
            or None.
        accumulation_steps: Batches whose gradients are summed into one step (1: none).
        schedule: ``schedule(step) -> float``, the learning rate of each step, or None.

    Attributes:
        iterations: Optimizer steps taken so far (Keras's ``optimizer.iterations``).
        pending: Batches back-propagated since the last step.
    """

    def __init__(self, optimizer: Any, accumulation_steps: int = 1, schedule: Schedule | None = None) -> None:
        self.accumulation_steps = accumulation_steps
        self.schedule = schedule
        self.iterations = 0
        self.pending = 0
        if schedule is not None and optimizer is not None:
            self._set_rate(optimizer)

    def minimize(self, model: Any, loss: Tensor) -> None:
        """Back-propagate ``loss`` and step the optimizer (every ``accumulation_steps`` batches)."""
        k = self.accumulation_steps
        if k == 1:
            model.optimizer.zero_grad()
            loss.backward()
            self.step(model)
            return
        if self.pending == 0:
            model.optimizer.zero_grad()
        (loss / k).backward()
        self.pending += 1
        if self.pending == k:
            self.step(model)

    def flush(self, model: Any) -> None:
        """Apply an unfinished accumulation group as the mean of its batches (at an epoch's end)."""
        if not self.pending:
            return
        scale = self.accumulation_steps / self.pending
        for group in model.optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.array *= scale
        self.step(model)

    def step(self, model: Any) -> None:
        """One optimizer step at the scheduled rate, then the constraints (MaxNorm...)."""
        self.before_step(model.optimizer)
        model.optimizer.step()
        apply_constraints(model._attachments()[1])
        self.after_step()

    def before_step(self, optimizer: Any) -> None:
        """Set ``optimizer``'s scheduled learning rate for the step about to be taken."""
        if self.schedule is not None:
            self._set_rate(optimizer)

    def after_step(self) -> None:
        """Count a step that was taken."""
        self.pending = 0
        self.iterations += 1

    def _set_rate(self, optimizer: Any) -> None:
        rate = rate_at(self.schedule, self.iterations)  # type: ignore[arg-type]
        for group in optimizer.param_groups:
            group["lr"] = rate
