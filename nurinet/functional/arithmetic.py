"""Arithmetic ops: add, sub, mul, div, neg, pow.

Binary ops may return gradients in the broadcast shape of the output; the
engine sums them back to each input's shape.
"""

from __future__ import annotations

from typing import Any

from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor
from nurinet.functional._util import operands


class Add(Function):
    def forward(self, a: Any, b: Any) -> Any:
        return a + b

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        return gy, gy


class Sub(Function):
    def forward(self, a: Any, b: Any) -> Any:
        return a - b

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor | None]:
        return gy, (-gy if self.needs_input_grad[1] else None)


class Mul(Function):
    def forward(self, a: Any, b: Any) -> Any:
        return a * b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = gy * b if self.needs_input_grad[0] else None
        gb = gy * a if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a: Any, b: Any) -> Any:
        return a / b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        b = self.inputs[1]
        ga = gy / b if self.needs_input_grad[0] else None
        gb = -gy * self.output() / b if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, x: Any) -> Any:
        return -x

    def backward(self, gy: Tensor) -> Tensor:
        return -gy


class PowScalar(Function):
    """``x ** c`` for a constant exponent ``c``."""

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def forward(self, x: Any) -> Any:
        return x ** x.dtype.type(self.exponent) if x.dtype.kind == "f" else x**self.exponent

    def backward(self, gy: Tensor) -> Tensor:
        (x,) = self.inputs
        c = self.exponent
        if c == 2:
            return gy * x * 2.0
        return gy * c * x ** (c - 1)


class Pow(Function):
    """``a ** b`` with both operands tensors (``a`` > 0 where ``b``'s gradient is needed)."""

    def forward(self, a: Any, b: Any) -> Any:
        return a**b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        from nurinet.functional.elementwise import log

        a, b = self.inputs
        ga = gy * b * a ** (b - 1.0) if self.needs_input_grad[0] else None
        gb = gy * self.output() * log(a) if self.needs_input_grad[1] else None
        return ga, gb


class RPowScalar(Function):
    """``c ** x`` for a constant positive base ``c``."""

    def __init__(self, base: float) -> None:
        self.base = base

    def forward(self, x: Any) -> Any:
        return x.dtype.type(self.base) ** x

    def backward(self, gy: Tensor) -> Tensor:
        import math

        return gy * self.output() * math.log(self.base)


def add(a: Any, b: Any) -> Tensor:
    """Elementwise ``a + b`` with broadcasting."""
    return Add()(*operands(a, b))


def sub(a: Any, b: Any) -> Tensor:
    """Elementwise ``a - b`` with broadcasting."""
    return Sub()(*operands(a, b))


def mul(a: Any, b: Any) -> Tensor:
    """Elementwise ``a * b`` with broadcasting."""
    return Mul()(*operands(a, b))


def div(a: Any, b: Any) -> Tensor:
    """Elementwise ``a / b`` with broadcasting (true division)."""
    return Div()(*operands(a, b))


def neg(x: Tensor) -> Tensor:
    """Elementwise ``-x``."""
    return Neg()(x)


def pow(a: Any, b: Any) -> Tensor:
    """Elementwise ``a ** b``; a Python number as exponent uses a constant-exponent op."""
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return PowScalar(b)(a)
    if isinstance(b, Tensor) and isinstance(a, (int, float)) and not isinstance(a, bool) and a > 0:
        return RPowScalar(a)(b)
    return Pow()(*operands(a, b))
