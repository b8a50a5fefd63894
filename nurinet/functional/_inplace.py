"""PyTorch's in-place Tensor methods: ``add_``, ``sub_``, ``mul_``, ``div_``, ``zero_``, ``fill_``, ``copy_``, ``clamp_``.

Each changes the tensor's array in place, raises its version (an op that used the old values then
refuses to back-propagate through them, as in PyTorch) and returns the tensor. The rules are those of
``tensor[...] = value``: a tensor that requires a gradient is changed only under ``nurinet.no_grad()``
(as an optimizer step written by hand does), since nurinet does not rewrite a recorded graph, and the
result must keep the tensor's shape and dtype.
"""

from __future__ import annotations

import operator
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


def _augmented(symbol: str, out_of_place: Callable[[Any, Any], Any],
               in_place: Callable[[Tensor, Any], Tensor]) -> Callable[[Tensor, Any], Tensor]:
    """``x {symbol}= y`` as in PyTorch: in place where no gradient is recorded, else ``out_of_place``.

    Under ``no_grad`` or on tensors outside the graph it is ``in_place`` (the tensor and every name
    bound to it change, so ``for p in params: p -= lr * p.grad`` updates the parameters). A leaf that
    requires a gradient refuses, as in PyTorch. Where the graph is recorded (a computed tensor, or an
    operand that requires a gradient), nurinet builds the new tensor out of place and rebinds the name:
    it does not record in-place changes, so other names bound to the old tensor keep its values.
    """
    def augmented(self: Tensor, other: Any) -> Tensor:
        if is_grad_enabled() and (self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)):
            if self.requires_grad and self.creator is None:
                raise RuntimeError(
                    f"x {symbol}= ... on a leaf tensor that requires a gradient (as in PyTorch, an in-place change "
                    f"of a leaf is refused while gradients are recorded): write it under nurinet.no_grad() for an "
                    f"update, or x = x {symbol} ... for a new tensor")
            return out_of_place(self, other)
        return in_place(self, other)

    augmented.__name__ = f"__i{out_of_place.__name__}__"  # operator.add -> __iadd__
    return augmented


METHODS = {"add_": add_, "sub_": sub_, "mul_": mul_, "div_": div_, "zero_": zero_, "fill_": fill_,
           "copy_": copy_, "clamp_": clamp_, "clip_": clamp_,
           "__iadd__": _augmented("+", operator.add, add_), "__isub__": _augmented("-", operator.sub, sub_),
           "__imul__": _augmented("*", operator.mul, mul_),
           "__itruediv__": _augmented("/", operator.truediv, div_)}
