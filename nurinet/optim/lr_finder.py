"""The learning-rate range test (Smith 2017; fastai's ``lr_find``).

Train for a few steps while the learning rate grows exponentially from
``start_lr`` to ``end_lr``, record the loss at each rate, and suggest the rate
where the smoothed loss falls fastest. The model's weights and the optimizer's
state (moments, learning rates) are restored afterwards, so the test leaves no
trace.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import numpy as np

from nurinet.optim.optimizer import Optimizer


class LRFinderResult(NamedTuple):
    """What :func:`lr_finder` returns: unpack as ``lrs, losses, suggested_lr = lr_finder(...)``."""

    lrs: list[float]
    losses: list[float]
    suggested_lr: float


def lr_finder(model: Any, loss_fn: Callable[[Any, Any], Any], optimizer: Optimizer,
              loader: Iterable[Any], start_lr: float = 1e-7, end_lr: float = 10.0,
              num_steps: int = 100, smoothing: float = 0.98,
              diverge_factor: float = 4.0) -> LRFinderResult:
    """Run the learning-rate range test and restore the model and optimizer afterwards.

    Args:
        model: A Module (called as ``model(x)``).
        loss_fn: ``loss_fn(prediction, target)`` returning a scalar Tensor.
        optimizer: The optimizer over ``model``'s parameters.
        loader: An iterable of ``(x, y)`` batches; it is restarted when exhausted.
        start_lr: First learning rate (positive).
        end_lr: Last learning rate (greater than ``start_lr``).
        num_steps: Number of steps (rates), at least 3.
        smoothing: Weight of the exponential moving average of the loss
            (bias-corrected, as fastai does).
        diverge_factor: Stop early when the smoothed loss exceeds this many
            times the best one (the rate is far too high), or is not finite.

    Returns:
        ``(lrs, losses, suggested_lr)``: the rates tried, the smoothed losses,
        and the rate of steepest descent of the smoothed loss (per log-rate).

    Raises:
        ValueError: bad rates or step count, or fewer than 3 steps recorded
            before the loss diverged.
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr_finder needs 0 < start_lr < end_lr, got start_lr={start_lr!r}, end_lr={end_lr!r}")
    if num_steps < 3:
        raise ValueError(f"lr_finder needs num_steps >= 3 to find a slope, got num_steps={num_steps!r}")
    saved_model = model.state_dict()
    saved_optimizer = optimizer.state_dict()
    was_training = getattr(model, "training", True)
    try:
        model.train()
        lrs, losses = _sweep(model, loss_fn, optimizer, loader, start_lr, end_lr, num_steps,
                             smoothing, diverge_factor)
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        model.train(was_training)
    if len(lrs) < 3:
        raise ValueError(f"lr_finder: the loss diverged after {len(lrs)} step(s); lower start_lr")
    return LRFinderResult(lrs, losses, suggest_lr(lrs, losses))


def _sweep(model: Any, loss_fn: Callable, optimizer: Optimizer, loader: Iterable[Any], start_lr: float,
           end_lr: float, num_steps: int, smoothing: float, diverge_factor: float
           ) -> tuple[list[float], list[float]]:
    ratio = end_lr / start_lr
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    batches = _cycle(loader)
    for step in range(num_steps):
        lr = start_lr * ratio ** (step / (num_steps - 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = next(batches)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        average = smoothing * average + (1 - smoothing) * loss.item()
        smoothed = average / (1 - smoothing ** (step + 1))  # bias correction of the early average
        if not math.isfinite(smoothed) or smoothed > diverge_factor * best:
            break
        best = min(best, smoothed)
        lrs.append(lr)
        losses.append(smoothed)
    return lrs, losses


def _cycle(loader: Iterable[Any]) -> Any:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("lr_finder: the loader yielded no batches")


def suggest_lr(lrs: list[float], losses: list[float]) -> float:
    """The rate where the loss falls fastest: the most negative ``d loss / d log(lr)``.

    The first tenth of the sweep is skipped, as fastai v1 did: the running
    average is still settling there and its wobble looks like steep descent.
    """
    slopes = np.gradient(np.asarray(losses, np.float64), np.log(np.asarray(lrs, np.float64)))
    skip = len(lrs) // 10
    return float(lrs[skip + int(np.argmin(slopes[skip:]))])
