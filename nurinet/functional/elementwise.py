"""Elementwise math: exp, log, log1p, expm1, sqrt, abs, sign, clip, maximum, minimum,
where, sin, cos, tanh, and the differentiable cast ``astype``."""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional._util import operands, xp_of


class Exp(Function):
    """``e**x``.

    backward_arrays: bench_overhead's chain of 50 ops.
    """

    def forward(self, x: Any) -> Any:
        self.y = xp_of(x).exp(x)
        return self.y

    def backward(self, gy: Tensor) -> Tensor:
        return gy * self.output()

    def backward_arrays(self, gy: Any) -> Any:
        return gy * self.y


class Log(Function):
    def forward(self, x: Any) -> Any:
        return xp_of(x).log(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy / self.inputs[0]


class Log1p(Function):
    def forward(self, x: Any) -> Any:
        return xp_of(x).log1p(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy / (self.inputs[0] + 1.0)


class Expm1(Function):
    def forward(self, x: Any) -> Any:
        return xp_of(x).expm1(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * (self.output() + 1.0)


class Sqrt(Function):
    def forward(self, x: Any) -> Any:
        return xp_of(x).sqrt(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy / (self.output() * 2.0)


class Abs(Function):
    """``|x|``; the gradient at 0 is 0 (the sign)."""

    def forward(self, x: Any) -> Any:
        return xp_of(x).abs(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * sign(self.inputs[0])


class Sign(Function):
    """The sign of x; its gradient is zero everywhere it exists."""

    def forward(self, x: Any) -> Any:
        return xp_of(x).sign(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * 0.0


class Clip(Function):
    """Clamp to ``[low, high]``; the gradient passes where the input is inside."""

    def __init__(self, low: float | None, high: float | None) -> None:
        self.low, self.high = low, high

    def forward(self, x: Any) -> Any:
        xp = xp_of(x)
        return xp.clip(x, self.low, self.high)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0].array
        inside = xp_of(x).ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x >= self.low
        if self.high is not None:
            inside &= x <= self.high
        return gy * Tensor._wrap(inside.astype(x.dtype), False)


class Maximum(Function):
    """Elementwise maximum; at ties each input gets half the gradient (as PyTorch)."""

    def forward(self, a: Any, b: Any) -> Any:
        return xp_of(a).maximum(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        return _select_grads(gy, *self.inputs, larger=True)


class Minimum(Function):
    """Elementwise minimum; at ties each input gets half the gradient (as PyTorch)."""

    def forward(self, a: Any, b: Any) -> Any:
        return xp_of(a).minimum(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        return _select_grads(gy, *self.inputs, larger=False)


def _select_grads(gy: Tensor, a: Tensor, b: Tensor, larger: bool) -> tuple[Tensor, Tensor]:
    wins = (a.array > b.array) if larger else (a.array < b.array)
    share = wins.astype(a.dtype) + 0.5 * (a.array == b.array).astype(a.dtype)
    share = Tensor._wrap(share.astype(a.dtype), False)
    return gy * share, gy * (1.0 - share)


class Where(Function):
    """``condition ? a : b``; the condition is a constant boolean array."""

    def __init__(self, condition: Any) -> None:
        self.condition = condition

    def forward(self, a: Any, b: Any) -> Any:
        return xp_of(a).where(self.condition, a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        zero = Tensor._wrap(xp_of(gy.array).zeros((), gy.dtype), False)
        cond = self.condition
        return where(cond, gy, zero), where(cond, zero, gy)


class Sin(Function):
    def forward(self, x: Any) -> Any:
        return xp_of(x).sin(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * cos(self.inputs[0])


class Cos(Function):
    def forward(self, x: Any) -> Any:
        return xp_of(x).cos(x)

    def backward(self, gy: Tensor) -> Tensor:
        return -gy * sin(self.inputs[0])


class Tanh(Function):
    """``tanh(x)``.

    backward_arrays: the XOR benchmark and bench_overhead's chain of 50 ops.
    """

    def forward(self, x: Any) -> Any:
        self.y = xp_of(x).tanh(x)
        return self.y

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return gy * (1.0 - y * y)

    def backward_arrays(self, gy: Any) -> Any:
        y = self.y
        return gy * (1.0 - y * y)


class Cast(Function):
    """Convert to another dtype; the gradient is cast back to the input's dtype."""

    def __init__(self, dtype: Any) -> None:
        self.dtype = np.dtype(dtype)

    def forward(self, x: Any) -> Any:
        self.x_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy: Tensor) -> Tensor:
        return astype(gy, self.x_dtype)


def exp(x: Tensor) -> Tensor:
    """Elementwise e**x."""
    return Exp()(x)


def log(x: Tensor) -> Tensor:
    """Elementwise natural logarithm."""
    return Log()(x)


def log1p(x: Tensor) -> Tensor:
    """Elementwise log(1 + x), accurate for small x."""
    return Log1p()(x)


def expm1(x: Tensor) -> Tensor:
    """Elementwise e**x - 1, accurate for small x."""
    return Expm1()(x)


def sqrt(x: Tensor) -> Tensor:
    """Elementwise square root."""
    return Sqrt()(x)


def abs(x: Tensor) -> Tensor:
    """Elementwise absolute value (gradient 0 at 0)."""
    return Abs()(x)


def sign(x: Tensor) -> Tensor:
    """Elementwise sign (-1, 0 or 1); zero gradient."""
    return Sign()(x)


def clip(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:
    """Clamp ``x`` to ``[min, max]`` (either may be None)."""
    if min is None and max is None:
        raise ValueError("clip needs at least one of min and max")
    return Clip(min, max)(x)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum of two tensors (broadcasting)."""
    return Maximum()(*operands(a, b))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum of two tensors (broadcasting)."""
    return Minimum()(*operands(a, b))


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Pick ``a`` where ``condition`` is true, else ``b`` (broadcasting)."""
    cond = condition.array if isinstance(condition, Tensor) else condition
    a, b = operands(a, b)
    xp = xp_of(a.array)
    return Where(xp.asarray(cond, dtype=bool))(a, b)


def sin(x: Tensor) -> Tensor:
    """Elementwise sine."""
    return Sin()(x)


def cos(x: Tensor) -> Tensor:
    """Elementwise cosine."""
    return Cos()(x)


def tanh(x: Tensor) -> Tensor:
    """Elementwise hyperbolic tangent."""
    return Tanh()(x)


def astype(x: Any, dtype: Any) -> Tensor:
    """``x`` converted to ``dtype`` (differentiable between floating dtypes)."""
    x = as_tensor(x)
    dtype = np.dtype(dtype)
    if x.array.dtype == dtype:
        return x
    if dtype.kind not in "fc":  # Integer and bool results carry no gradient.
        return Tensor._wrap(x.array.astype(dtype), False)
    return Cast(dtype)(x)
