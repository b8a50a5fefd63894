"""Stochastic gradient descent with optional (Nesterov) momentum."""

from __future__ import annotations

from typing import Any

from nurinet import backend
from nurinet._runtime import blas
from nurinet._runtime.fast import optim as fast_optim
from nurinet.optim.optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum and Nesterov momentum (PyTorch's formulation).

    For each parameter ``p`` with gradient ``g``, at step ``t``::

        g = -g                                  if maximize
        g = g + weight_decay * p                (L2 penalty)
        if momentum != 0:
            b = g                               at t = 1 (no dampening on the first step)
            b = momentum * b + (1 - dampening) * g   afterwards
            g = g + momentum * b                if nesterov
            g = b                               otherwise
        p = p - lr * g

    Args:
        params: Tensors to optimize, or dicts defining parameter groups.
        lr: Learning rate.
        momentum: Momentum factor (0 turns momentum off).
        dampening: Fraction of the new gradient left out of the momentum buffer.
        weight_decay: L2 penalty coefficient added to the gradient.
        nesterov: Use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: Maximize the objective instead of minimizing it.
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 *, maximize: bool = False) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        self._check_non_negative(group, "lr", "momentum", "weight_decay")
        self._check_fraction(group, "dampening")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"SGD: nesterov=True needs momentum > 0 and dampening == 0, got "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )

    def _update(self, p: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        xp = backend.get_array_module(p)
        lr, momentum = float(group["lr"]), float(group["momentum"])
        grad = self._grad(p, g, float(group["weight_decay"]), group["maximize"])
        tmp = self._scratch(p, "tmp")
        direction = grad
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            elif fast_optim.sgd_momentum_update(p, grad, buf, lr, momentum, float(group["dampening"]),
                                                group["nesterov"]):
                return  # buf and p updated in one pass by the native kernel
            else:
                dampening = float(group["dampening"])
                if not blas.axpby(1.0 - dampening, grad, momentum, buf):  # one pass where the BLAS can
                    buf *= momentum
                    buf += xp.multiply(grad, 1.0 - dampening, out=tmp) if dampening else grad
            if group["nesterov"]:
                direction = xp.multiply(buf, momentum, out=tmp)
                direction += grad
            else:
                direction = buf
        if not blas.axpy(-lr, direction, p):  # one pass instead of two where the BLAS can
            p -= xp.multiply(direction, lr, out=tmp)
