"""Adagrad: per-coordinate learning rates from the sum of squared gradients."""

from __future__ import annotations

from typing import Any

from nurinet import backend
from nurinet.optim.optimizer import Optimizer, ParamsT


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), as PyTorch writes it.

    For each parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``::

        g = -g                                  if maximize
        g = g + weight_decay * p                (L2 penalty)
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g                           (s starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(s) + eps)

    Args:
        params: Tensors to optimize, or dicts defining parameter groups.
        lr: Learning rate.
        lr_decay: Learning-rate decay per step.
        weight_decay: L2 penalty coefficient added to the gradient.
        initial_accumulator_value: Starting value of the sum of squares.
        eps: Added to the denominator for numerical stability.
        maximize: Maximize the objective instead of minimizing it.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "eps": eps,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        self._check_non_negative(group, "lr", "lr_decay", "weight_decay",
                                 "initial_accumulator_value", "eps")

    def _update(self, p: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = backend.get_array_module(p)
        t = state["step"] = state.get("step", 0) + 1
        grad = self._grad(p, g, float(group["weight_decay"]), group["maximize"])
        clr = float(group["lr"]) / (1.0 + (t - 1) * float(group["lr_decay"]))
        total = self._buffer(state, "sum", p, float(group["initial_accumulator_value"]))
        tmp = self._scratch(p, "tmp")
        total += xp.multiply(grad, grad, out=tmp)
        std = xp.sqrt(total, out=tmp)
        std += float(group["eps"])
        step = xp.divide(grad, std, out=tmp)
        step *= clr
        p -= step
