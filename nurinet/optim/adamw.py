"""AdamW: Adam with weight decay decoupled from the gradient."""

from __future__ import annotations

import math
from typing import Any

from nurinet import backend
from nurinet.optim.optimizer import Optimizer, ParamsT, add_square_, lerp_


class AdamW(Optimizer):
    """AdamW (Loshchilov and Hutter, 2019), as PyTorch writes it.

    Weight decay shrinks the parameter directly instead of entering the
    gradient, so it is not rescaled by the adaptive denominator. For each
    parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``
    (``m``, ``v``, ``v_max`` start at zero)::

        g = -g                                  if maximize
        p = p * (1 - lr * weight_decay)         (decoupled weight decay)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                   if amsgrad, and v_max replaces v below
        denom = sqrt(v) / sqrt(1 - beta2^t) + eps
        p = p - lr / (1 - beta1^t) * m / denom

    Args:
        params: Tensors to optimize, or dicts defining parameter groups.
        lr: Learning rate.
        betas: Decay rates ``(beta1, beta2)`` of the two running averages, each in [0, 1).
        eps: Added to the denominator for numerical stability.
        weight_decay: Decoupled weight-decay coefficient.
        amsgrad: Divide by the largest second moment seen so far (AMSGrad).
        maximize: Maximize the objective instead of minimizing it.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 *, maximize: bool = False) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        self._check_non_negative(group, "lr", "eps", "weight_decay")
        self._check_betas(group)

    def _update(self, p: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = backend.get_array_module(p)
        t = state["step"] = state.get("step", 0) + 1
        beta1, beta2 = (float(b) for b in group["betas"])
        lr, weight_decay = float(group["lr"]), float(group["weight_decay"])
        grad = self._grad(p, g, 0.0, group["maximize"])
        if weight_decay:
            p *= 1.0 - lr * weight_decay
        exp_avg = self._buffer(state, "exp_avg", p)
        exp_avg_sq = self._buffer(state, "exp_avg_sq", p)
        tmp = self._scratch(p, "tmp")
        lerp_(exp_avg, grad, 1.0 - beta1, tmp)
        exp_avg_sq *= beta2
        add_square_(exp_avg_sq, grad, 1.0 - beta2, tmp)
        second = exp_avg_sq
        if group["amsgrad"]:
            second = self._buffer(state, "max_exp_avg_sq", p)
            xp.maximum(second, exp_avg_sq, out=second)
        denom = xp.sqrt(second, out=tmp)
        denom /= math.sqrt(1.0 - beta2**t)
        denom += float(group["eps"])
        step = xp.divide(exp_avg, denom, out=tmp)
        step *= lr / (1.0 - beta1**t)
        p -= step
