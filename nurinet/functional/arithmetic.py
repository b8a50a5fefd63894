"""Arithmetic ops: add, sub, mul, div, neg, pow.

Binary ops may return gradients in the broadcast shape of the output; the
engine sums them back to each input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet.autograd.function import Function
from nurinet.autograd.tensor import DEFAULT_FLOAT, Tensor
from nurinet.functional._util import operands


class Add(Function):
    """``a + b``.

    backward_arrays: the LSTM and Transformer benchmarks and bench_overhead's wide graph.
    """

    def forward(self, a: Any, b: Any) -> Any:
        return a + b

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        return gy, gy

    def backward_arrays(self, gy: Any) -> tuple[Any, Any]:
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


class AddScalar(Function):
    """``x + c`` for a Python number ``c`` (kept as a constant, not a graph input).

    backward_arrays: bench_overhead's chains.
    """

    def __init__(self, constant: float) -> None:
        self.constant = constant

    def forward(self, x: Any) -> Any:
        return x + self.constant

    def backward(self, gy: Tensor) -> Tensor:
        return gy

    def backward_arrays(self, gy: Any) -> Any:
        return gy


class MulScalar(Function):
    """``x * c`` for a Python number ``c`` (kept as a constant, not a graph input).

    backward_arrays: bench_overhead's chains and wide graph.
    """

    def __init__(self, constant: float) -> None:
        self.constant = constant

    def forward(self, x: Any) -> Any:
        return x * self.constant

    def backward(self, gy: Tensor) -> Tensor:
        return gy * self.constant

    def backward_arrays(self, gy: Any) -> Any:
        return gy * self.constant


def _float_scalar(value: Any, other: Any) -> float | None:
    """``value`` as a Python float when it is a plain number meeting a floating-point tensor.

    Python numbers are weak in NumPy 2 (``float32_array * 2.0`` stays float32),
    so such a constant needs no array and no graph input of its own.
    """
    is_number = type(value) in (float, int) or isinstance(value, np.number)
    if is_number and isinstance(other, Tensor) and other.array.dtype.kind == "f":
        return float(value)
    return None


def add(a: Any, b: Any) -> Tensor:
    """Elementwise ``a + b`` with broadcasting."""
    c = _float_scalar(b, a)
    if c is not None:
        return AddScalar(c)(a)
    c = _float_scalar(a, b)
    if c is not None:
        return AddScalar(c)(b)
    return Add()(*operands(a, b))


def sub(a: Any, b: Any) -> Tensor:
    """Elementwise ``a - b`` with broadcasting."""
    c = _float_scalar(b, a)
    if c is not None:
        return AddScalar(-c)(a)
    return Sub()(*operands(a, b))


def mul(a: Any, b: Any) -> Tensor:
    """Elementwise ``a * b`` with broadcasting."""
    c = _float_scalar(b, a)
    if c is not None:
        return MulScalar(c)(a)
    c = _float_scalar(a, b)
    if c is not None:
        return MulScalar(c)(b)
    return Mul()(*operands(a, b))


def div(a: Any, b: Any) -> Tensor:
    """Elementwise ``a / b`` with broadcasting (true division).

    Integer operands give float32 (as in PyTorch), not NumPy's float64.
    """
    a, b = operands(a, b)
    if a.dtype.kind in "iub":
        from nurinet.functional.elementwise import astype

        a, b = astype(a, DEFAULT_FLOAT), astype(b, DEFAULT_FLOAT)
    return Div()(a, b)


def neg(x: Tensor) -> Tensor:
    """Elementwise ``-x``."""
    return Neg()(x)


def pow(a: Any, b: Any) -> Tensor:
    """Elementwise ``a ** b``; a Python number as exponent uses a constant-exponent op."""
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return PowScalar(b)(_floated(a, b))
    if isinstance(b, Tensor) and isinstance(a, (int, float)) and not isinstance(a, bool) and a > 0:
        return RPowScalar(a)(_floated(b, a))
    return Pow()(*operands(a, b))


def _floated(x: Tensor, constant: float) -> Tensor:
    """An integer tensor meeting a float constant becomes float32 (as in PyTorch)."""
    if isinstance(constant, float) and x.dtype.kind in "iub":
        from nurinet.functional.elementwise import astype

        return astype(x, DEFAULT_FLOAT)
    return x
