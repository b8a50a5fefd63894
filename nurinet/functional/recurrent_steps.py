"""Cutting a ``(T, ...)`` tensor into its T steps and putting T steps back together, one node each.

:class:`StepSplit` and :class:`StepStack` are each other's backward, so both directions have an
array-cheap, differentiable gradient.
"""

from __future__ import annotations

from typing import Any

from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional._util import xp_of


class StepSplit(Function):
    """Cut ``x`` of shape ``(T, ...)`` into T tensors ``x[t]`` (views), one node."""

    def forward(self, x: Any) -> Any:
        return tuple(x[t] for t in range(x.shape[0]))

    def backward(self, *gys: Tensor) -> Tensor:
        return StepStack()(*gys)


class StepStack(Function):
    """Stack T tensors of one shape into ``(T, ...)`` along a new axis 0, one node."""

    def forward(self, *xs: Any) -> Any:
        return xp_of(xs[0]).stack(xs)

    def backward(self, gy: Tensor) -> tuple[Tensor, ...]:
        return StepSplit()(gy)


def unstack(x: Tensor) -> tuple[Tensor, ...]:
    """The T slices ``x[0], ..., x[T-1]`` of a tensor of shape ``(T, ...)``, T >= 1."""
    x = as_tensor(x)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"unstack needs a tensor with a non-empty first dim, got shape {x.shape}")
    result = StepSplit()(x)
    return result if isinstance(result, tuple) else (result,)


def stack_steps(xs: list[Tensor]) -> Tensor:
    """Stack tensors of one shape along a new first axis (one graph node for all of them)."""
    xs = [as_tensor(x) for x in xs]
    if not xs or len({x.shape for x in xs}) != 1:
        raise ValueError(f"stack_steps needs at least one tensor, all of one shape; got "
                         f"{sorted({x.shape for x in xs})}")
    return StepStack()(*xs)
