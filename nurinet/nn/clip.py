"""Gradient clipping: rescale gradients in place by their total norm, or clamp each value."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from nurinet import backend
from nurinet.autograd.tensor import Tensor


def _with_grads(parameters: Any, where: str) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{where}: expected Tensors (e.g. model.parameters()), got {type(p).__name__}")
    return [p for p in params if p.grad is not None]


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so their total norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of all gradients concatenated into one vector
    (``inf`` for the largest absolute value). When it exceeds ``max_norm`` every gradient is
    multiplied in place by ``max_norm / (total + 1e-6)`` (PyTorch's formula).

    Args:
        parameters: Tensors whose ``.grad`` is clipped (those without a gradient are skipped).
        max_norm: Largest allowed total norm.
        norm_type: p of the p-norm (> 0), or ``float('inf')``.
        error_if_nonfinite: Raise if the total norm is nan or inf instead of scaling by it.

    Returns:
        The total norm before clipping, as a float.
    """
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be positive or inf, got {norm_type}")
    grads = [p.grad.array for p in _with_grads(parameters, "clip_grad_norm_")]
    if not grads:
        return 0.0
    if math.isinf(norm_type):
        total = max(float(abs(g).max()) if g.size else 0.0 for g in grads)
    else:
        # Per-tensor sums in float64 so a float32 model's total does not lose precision.
        total = sum(float((abs(g).astype("float64") ** norm_type).sum()) for g in grads) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}; "
                           "pass error_if_nonfinite=False to clip anyway")
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in grads:
            g *= backend.get_array_module(g).asarray(scale, dtype=g.dtype)
    return total


def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float) -> None:
    """Clamp every gradient value in place to ``[-clip_value, clip_value]``."""
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p in _with_grads(parameters, "clip_grad_value_"):
        xp = backend.get_array_module(p.grad.array)
        xp.clip(p.grad.array, -clip_value, clip_value, out=p.grad.array)


__all__ = ["clip_grad_norm_", "clip_grad_value_"]
