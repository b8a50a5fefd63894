"""RMSprop: gradients divided by a running root-mean-square of recent gradients."""

from __future__ import annotations

from typing import Any

from nurinet import backend
from nurinet.optim.optimizer import Optimizer, ParamsT, add_square_, lerp_


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e; the centered form of Graves, 2013), as PyTorch writes it.

    For each parameter ``p`` with gradient ``g`` (``v``, ``m``, ``b`` start at zero)::

        g = -g                                  if maximize
        g = g + weight_decay * p                (L2 penalty)
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            m = alpha * m + (1 - alpha) * g     (running mean of the gradient)
            avg = sqrt(v - m * m) + eps
        else:
            avg = sqrt(v) + eps
        if momentum > 0:
            b = momentum * b + g / avg
            p = p - lr * b
        else:
            p = p - lr * g / avg

    Args:
        params: Tensors to optimize, or dicts defining parameter groups.
        lr: Learning rate.
        alpha: Smoothing constant of the running averages, in [0, 1].
        eps: Added to the denominator for numerical stability.
        weight_decay: L2 penalty coefficient added to the gradient.
        momentum: Momentum factor (0 turns momentum off).
        centered: Normalize by an estimate of the gradient's variance instead of
            its raw second moment.
        maximize: Maximize the objective instead of minimizing it.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 *, maximize: bool = False) -> None:
        defaults = {
            "lr": lr,
            "alpha": alpha,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "centered": centered,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        self._check_non_negative(group, "lr", "eps", "weight_decay", "momentum")
        self._check_fraction(group, "alpha")

    def _update(self, p: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = backend.get_array_module(p)
        state["step"] = state.get("step", 0) + 1
        alpha, lr, momentum = float(group["alpha"]), float(group["lr"]), float(group["momentum"])
        grad = self._grad(p, g, float(group["weight_decay"]), group["maximize"])
        square_avg = self._buffer(state, "square_avg", p)
        tmp = self._scratch(p, "tmp")
        square_avg *= alpha
        add_square_(square_avg, grad, 1.0 - alpha, tmp)
        if group["centered"]:
            grad_avg = lerp_(self._buffer(state, "grad_avg", p), grad, 1.0 - alpha, tmp)
            avg = xp.multiply(grad_avg, grad_avg, out=tmp)
            xp.sqrt(xp.subtract(square_avg, avg, out=avg), out=avg)
        else:
            avg = xp.sqrt(square_avg, out=tmp)
        avg += float(group["eps"])
        if momentum > 0:
            buf = self._buffer(state, "momentum_buffer", p)
            buf *= momentum
            buf += xp.divide(grad, avg, out=tmp)
            p -= xp.multiply(buf, lr, out=tmp)
        else:
            step = xp.divide(grad, avg, out=tmp)
            step *= lr
            p -= step

