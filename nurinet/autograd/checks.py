"""Checks on the gradients that ops and hooks return, with errors that name the op.

Each check has a Tensor form (used while recording the backward pass for
higher-order gradients) and an array form (the fast path of a plain backward).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet.autograd.broadcast import broadcasts_to, sum_to, sum_to_array
from nurinet.autograd.tensor import Tensor


class GradientError(RuntimeError):
    """A backward or a hook returned a gradient that does not fit its input."""


def check_gradient(fn: Any, index: int, x: Tensor, gx: Any) -> Tensor:
    """Check the Tensor gradient an op returned for its input ``index``; undo broadcasting."""
    if not isinstance(gx, Tensor):
        gx = Tensor._wrap(gx, False) if hasattr(gx, "shape") else _bad_type(fn, index, gx)
    if gx.array.shape != x.array.shape:
        _check_broadcast(fn, index, x.array, gx.array)
        gx = sum_to(gx, x.array.shape)
    if gx.array.dtype != x.array.dtype:
        _wrong_dtype(fn, index, x.array, gx.array)
    return gx


def check_gradient_array(fn: Any, index: int, x: Tensor, gx: Any) -> Any:
    """The array form of :func:`check_gradient`: returns an array of ``x``'s shape."""
    if isinstance(gx, Tensor):
        gx = gx.array
    elif isinstance(gx, np.generic):  # 0-d array arithmetic gives NumPy scalars: keep arrays.
        gx = np.asarray(gx)
    elif not hasattr(gx, "shape"):
        _bad_type(fn, index, gx)
    data = x.array
    if gx.shape != data.shape:
        _check_broadcast(fn, index, data, gx)
        gx = sum_to_array(gx, data.shape)
    if gx.dtype != data.dtype:
        _wrong_dtype(fn, index, data, gx)
    return gx


def check_gradient_like(tensor: Tensor, grad: Any, where: str) -> Tensor:
    """Check a gradient returned by a hook: same shape and dtype as its tensor."""
    if not isinstance(grad, Tensor):
        grad = Tensor._wrap(grad, False)
    if grad.array.shape != tensor.array.shape or grad.array.dtype != tensor.array.dtype:
        raise GradientError(
            f"{where} returned a gradient of shape {grad.array.shape} and dtype {grad.array.dtype} "
            f"for a tensor of shape {tensor.array.shape} and dtype {tensor.array.dtype}"
        )
    return grad


def check_count(fn: Any, result: tuple) -> None:
    if len(result) != len(fn.inputs):
        raise GradientError(
            f"op '{fn.name}' returned {len(result)} gradient(s) from backward, but it has "
            f"{len(fn.inputs)} input(s): return one gradient (or None) per input"
        )


def _check_broadcast(fn: Any, index: int, x: Any, gx: Any) -> None:
    if not broadcasts_to(x.shape, gx.shape):
        raise GradientError(
            f"op '{fn.name}' returned a gradient of shape {gx.shape} for its input {index} "
            f"of shape {x.shape}: the shapes must match (or the gradient's shape must be "
            "one the input broadcasts to)"
        )


def _wrong_dtype(fn: Any, index: int, x: Any, gx: Any) -> None:
    raise GradientError(
        f"op '{fn.name}' returned a gradient of dtype {gx.dtype} for its input {index} "
        f"of dtype {x.dtype}: a gradient must have its input's dtype "
        "(cast it with .astype in backward)"
    )


def _bad_type(fn: Any, index: int, gx: Any) -> Tensor:
    raise GradientError(
        f"op '{fn.name}' returned {type(gx).__name__} as the gradient of its input {index}: "
        "backward must return Tensors (or None)"
    )
