"""NAdam: Adam with Nesterov momentum and a momentum-decay schedule."""

from __future__ import annotations

from typing import Any

from nurinet import backend
from nurinet.optim.optimizer import Optimizer, ParamsT, add_square_, lerp_


class NAdam(Optimizer):
    """NAdam (Dozat, 2016), as PyTorch writes it.

    For each parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``
    (``m``, ``v`` start at zero, the product ``P`` at one)::

        g = -g                                  if maximize
        g = g + weight_decay * p                (L2 penalty)
        mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))
        mu_next = beta1 * (1 - 0.5 * 0.96^((t + 1) * momentum_decay))
        P = P * mu_t
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        denom = sqrt(v / (1 - beta2^t)) + eps
        p = p - lr * (1 - mu_t) / (1 - P) * g / denom
              - lr * mu_next / (1 - P * mu_next) * m / denom

    Args:
        params: Tensors to optimize, or dicts defining parameter groups.
        lr: Learning rate.
        betas: Decay rates ``(beta1, beta2)`` of the two running averages, each in [0, 1).
        eps: Added to the denominator for numerical stability.
        weight_decay: L2 penalty coefficient added to the gradient.
        momentum_decay: Rate of the momentum schedule ``mu_t``.
        maximize: Maximize the objective instead of minimizing it.
    """

    def __init__(self, params: ParamsT, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 *, maximize: bool = False) -> None:
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        self._check_non_negative(group, "lr", "eps", "weight_decay", "momentum_decay")
        self._check_betas(group)

    def _update(self, p: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = backend.get_array_module(p)
        t = state["step"] = state.get("step", 0) + 1
        beta1, beta2 = (float(b) for b in group["betas"])
        lr, psi = float(group["lr"]), float(group["momentum_decay"])
        grad = self._grad(p, g, float(group["weight_decay"]), group["maximize"])
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        product = state["mu_product"] = state.get("mu_product", 1.0) * mu
        exp_avg = self._buffer(state, "exp_avg", p)
        exp_avg_sq = self._buffer(state, "exp_avg_sq", p)
        tmp, denom = self._scratch(p, "tmp"), self._scratch(p, "denom")
        lerp_(exp_avg, grad, 1.0 - beta1, tmp)
        exp_avg_sq *= beta2
        add_square_(exp_avg_sq, grad, 1.0 - beta2, tmp)
        xp.sqrt(xp.divide(exp_avg_sq, 1.0 - beta2**t, out=denom), out=denom)
        denom += float(group["eps"])
        step = xp.divide(grad, denom, out=tmp)
        step *= lr * (1.0 - mu) / (1.0 - product)
        p -= step
        step = xp.divide(exp_avg, denom, out=tmp)
        step *= lr * mu_next / (1.0 - product * mu_next)
        p -= step
