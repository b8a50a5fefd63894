"""PyTorch's in-place Tensor methods: ``add_``, ``sub_``, ``mul_``, ``div_``, ``zero_``, ``fill_``, ``copy_``, ``clamp_``.

Each changes the tensor's array in place, raises its version (an op that used the old values then
refuses to back-propagate through them, as in PyTorch) and returns the tensor. The rules are those of
``tensor[...] = value``: a tensor that requires a gradient is changed only under ``nurinet.no_grad()``
(as an optimizer step written by hand does), since nurinet does not rewrite a recorded graph, and the
result must keep the tensor's shape and dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nurinet.autograd.grad_mode import is_grad_enabled
from nurinet.autograd.tensor import Tensor
from nurinet.autograd.versions import increment_version
from nurinet.functional._util import xp_of


def _check(self: Tensor, name: str, operands: tuple[Any, ...]) -> None:
    if not is_grad_enabled():
        return
    if self.requires_grad:
        raise RuntimeError(
            f"{name}: the tensor requires a gradient, and nurinet does not record in-place changes in the graph; "
            f"call it under nurinet.no_grad() (as in a hand-written update: with nurinet.no_grad(): "
            f"p.{name}(...)), or build a new tensor with the out-of-place op")
    if any(isinstance(v, Tensor) and v.requires_grad for v in operands):
        raise RuntimeError(f"{name}: an operand requires a gradient, which an in-place change would drop; "
                           "pass operand.detach(), or use the out-of-place op")


def _raw(value: Any) -> Any:
    return value.array if isinstance(value, Tensor) else value


def _apply(self: Tensor, name: str, operands: tuple[Any, ...], write: Callable[..., Any]) -> Tensor:
    _check(self, name, operands)
    try:
        write(self.array, *(_raw(v) for v in operands))
    except (TypeError, ValueError) as error:  # NumPy's casting and broadcasting refusals, named
        shapes = ", ".join(str(np.shape(_raw(v))) for v in operands)
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(f"{name} on a tensor of shape {tuple(self.shape)} and dtype {self.dtype} with "
                          f"operands of shape {shapes}: the result must keep the tensor's shape and dtype "
                          f"({error})") from None
    increment_version(self)
    return self


def add_(self: Tensor, other: Any, *, alpha: float = 1) -> Tensor:
    """``self += alpha * other`` in place; returns ``self``."""
    return _apply(self, "add_", (other,), lambda a, b: xp_of(a).add(a, b if alpha == 1 else alpha * b, out=a))


def sub_(self: Tensor, other: Any, *, alpha: float = 1) -> Tensor:
    """``self -= alpha * other`` in place; returns ``self``."""
    return _apply(self, "sub_", (other,), lambda a, b: xp_of(a).subtract(a, b if alpha == 1 else alpha * b, out=a))


def mul_(self: Tensor, other: Any) -> Tensor:
    """``self *= other`` in place; returns ``self``."""
    return _apply(self, "mul_", (other,), lambda a, b: xp_of(a).multiply(a, b, out=a))


def div_(self: Tensor, other: Any) -> Tensor:
    """``self /= other`` in place; returns ``self``."""
    return _apply(self, "div_", (other,), lambda a, b: xp_of(a).true_divide(a, b, out=a))


def zero_(self: Tensor) -> Tensor:
    """Every element set to 0; returns ``self``."""
    return _apply(self, "zero_", (), lambda a: a.fill(0))


def fill_(self: Tensor, value: Any) -> Tensor:
    """Every element set to ``value`` (a number or a one-element tensor); returns ``self``."""
    return _apply(self, "fill_", (value,), lambda a, v: a.fill(v.item() if hasattr(v, "item") else v))


def copy_(self: Tensor, src: Any) -> Tensor:
    """The values of ``src`` (broadcast to this shape, cast to this dtype) copied in; returns ``self``."""
    return _apply(self, "copy_", (src,), lambda a, s: xp_of(a).copyto(a, s, casting="unsafe"))


def clamp_(self: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """Values below ``min`` set to ``min`` and above ``max`` to ``max``, in place; returns ``self``."""
    if min is None and max is None:
        raise ValueError("clamp_: give min, max or both")
    return _apply(self, "clamp_", (), lambda a: xp_of(a).clip(a, min, max, out=a))


METHODS = {"add_": add_, "sub_": sub_, "mul_": mul_, "div_": div_, "zero_": zero_, "fill_": fill_,
           "copy_": copy_, "clamp_": clamp_, "clip_": clamp_}
