"""Adam: bias-corrected running averages of the gradient and its square (optionally AMSGrad)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from nurinet import backend
from nurinet._runtime.fast import optim as fast_optim
from nurinet.optim.optimizer import Optimizer, ParamsT, add_square_, lerp_


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with optional AMSGrad (Reddi et al., 2018), as PyTorch writes it.

    For each parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``
    (``m``, ``v``, ``v_max`` start at zero)::

        g = -g                                  if maximize
        g = g + weight_decay * p                (L2 penalty, coupled with the gradient)
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
        weight_decay: L2 penalty coefficient added to the gradient (see AdamW for
            the decoupled form).
        amsgrad: Divide by the largest second moment seen so far (AMSGrad).
        maximize: Maximize the objective instead of minimizing it.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
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
        t = state["step"] = state.get("step", 0) + 1
        beta1, beta2 = (float(b) for b in group["betas"])
        grad = self._grad(p, g, float(group["weight_decay"]), group["maximize"])
        arrays = [p, grad, self._buffer(state, "exp_avg", p), self._buffer(state, "exp_avg_sq", p),
                  self._scratch(p, "tmp")]
        if group["amsgrad"]:
            arrays.append(self._buffer(state, "max_exp_avg_sq", p))
        coefficients = _Coefficients(beta1, beta2, math.sqrt(1.0 - beta2**t), float(group["eps"]),
                                     float(group["lr"]) / (1.0 - beta1**t))
        if not fast_optim.adam_update(_adam_arithmetic, coefficients, *arrays):
            _adam_arithmetic(coefficients, *arrays)


class _Coefficients(NamedTuple):
    """The step's scalars, in the order the native kernel takes them (see :func:`fast_optim.adam_update`)."""

    beta1: float
    beta2: float
    sqrt_correction2: float  # sqrt(1 - beta2^t)
    eps: float
    step_size: float  # lr / (1 - beta1^t)


def _adam_arithmetic(c: _Coefficients, p: Any, grad: Any, exp_avg: Any, exp_avg_sq: Any, tmp: Any,
                     max_exp_avg_sq: Any = None) -> None:
    """One Adam update of ``p`` in place (``tmp`` is work space); the arrays may be matching slices."""
    xp = backend.get_array_module(p)
    lerp_(exp_avg, grad, 1.0 - c.beta1, tmp)
    exp_avg_sq *= c.beta2
    add_square_(exp_avg_sq, grad, 1.0 - c.beta2, tmp)
    second = exp_avg_sq
    if max_exp_avg_sq is not None:
        second = xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
    denom = xp.sqrt(second, out=tmp)
    denom /= c.sqrt_correction2
    denom += c.eps
    step = xp.divide(exp_avg, denom, out=tmp)
    step *= c.step_size
    p -= step

