"""Adadelta: step sizes from running averages of squared gradients and squared updates."""

from __future__ import annotations

from typing import Any

from nurinet import backend
from nurinet.optim.optimizer import Optimizer, ParamsT, add_square_


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), as PyTorch writes it.

    For each parameter ``p`` with gradient ``g`` (``v`` and ``u`` start at zero)::

        g = -g                                  if maximize
        g = g + weight_decay * p                (L2 penalty)
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta

    Args:
        params: Tensors to optimize, or dicts defining parameter groups.
        lr: Scale applied to ``delta`` (1.0 in the paper).
        rho: Decay rate of the running averages, in [0, 1].
        eps: Added inside the square roots for numerical stability.
        weight_decay: L2 penalty coefficient added to the gradient.
        maximize: Maximize the objective instead of minimizing it.
    """

    def __init__(self, params: ParamsT, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, *, maximize: bool = False) -> None:
        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        self._check_non_negative(group, "lr", "eps", "weight_decay")
        self._check_fraction(group, "rho")

    def _update(self, p: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = backend.get_array_module(p)
        state["step"] = state.get("step", 0) + 1
        rho, eps = float(group["rho"]), float(group["eps"])
        grad = self._grad(p, g, float(group["weight_decay"]), group["maximize"])
        square_avg = self._buffer(state, "square_avg", p)
        acc_delta = self._buffer(state, "acc_delta", p)
        tmp, delta = self._scratch(p, "tmp"), self._scratch(p, "delta")
        square_avg *= rho
        add_square_(square_avg, grad, 1.0 - rho, tmp)
        std = xp.sqrt(xp.add(square_avg, eps, out=tmp), out=tmp)
        xp.sqrt(xp.add(acc_delta, eps, out=delta), out=delta)
        delta /= std
        delta *= grad
        acc_delta *= rho
        add_square_(acc_delta, delta, 1.0 - rho, tmp)
        delta *= float(group["lr"])
        p -= delta

