"""Broadcasting and its inverse, the two autograd primitives the engine itself needs.

``sum_to`` undoes broadcasting: the engine calls it on every gradient whose
shape is a broadcast of its input's shape. ``broadcast_to`` is its adjoint.
"""

from __future__ import annotations

from typing import Any

from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor


def broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """True when an array of ``shape`` broadcasts to exactly ``target``."""
    if len(shape) > len(target):
        return False
    for small, big in zip(reversed(shape), reversed(target)):
        if small != big and small != 1:
            return False
    return True


def sum_axes(shape: tuple[int, ...], target: tuple[int, ...]) -> tuple[tuple[int, ...], bool]:
    """Axes of an array of ``target``-broadcast shape ``shape`` to sum to get ``target``.

    Returns the axes, and whether the summed result still needs a reshape
    (leading axes removed).
    """
    lead = len(shape) - len(target)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(target) if size == 1 and shape[lead + i] != 1
    )
    return axes, lead > 0


def sum_to_array(x: Any, shape: tuple[int, ...]) -> Any:
    """Sum an array over the axes it was broadcast along, down to ``shape`` (no graph)."""
    axes, drop_lead = sum_axes(x.shape, shape)
    y = x.sum(axis=axes, keepdims=True) if axes else x
    return y.reshape(shape) if drop_lead else y


class SumTo(Function):
    """Sum an array over broadcast axes down to ``shape``."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return sum_to_array(x, self.shape)

    def backward(self, gy: Tensor) -> Tensor:
        return broadcast_to(gy, self.x_shape)


class BroadcastTo(Function):
    """Broadcast an array to ``shape`` (a read-only view)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = tuple(shape)

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        xp = _xp(x)
        return xp.broadcast_to(x, self.shape)

    def backward(self, gy: Tensor) -> Tensor:
        return sum_to(gy, self.x_shape)


def _xp(x: Any) -> Any:
    from nurinet.backend import get_array_module

    return get_array_module(x)


def sum_to(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum ``x`` over its broadcast axes so that it has ``shape``."""
    if x.shape == tuple(shape):
        return x
    return SumTo(shape)(x)


def broadcast_to(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Broadcast ``x`` to ``shape`` as NumPy does."""
    if x.shape == tuple(shape):
        return x
    if not broadcasts_to(x.shape, tuple(shape)):
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {tuple(shape)}")
    return BroadcastTo(shape)(x)
