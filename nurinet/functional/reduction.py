"""Reductions: sum, mean, var, std, max, min, logsumexp, prod, cumsum.

Every reduction takes NumPy's ``axis=`` (an int, a tuple or None for all) and
``keepdims=``, or PyTorch's ``dim=`` and ``keepdim=`` (not both spellings at once). These
functions keep NumPy's meanings (``max`` returns values, ``var`` is biased); the Tensor
methods follow PyTorch (see ``_tensor_methods.py``).
"""

from __future__ import annotations

import builtins
from typing import Any

from nurinet.autograd.broadcast import broadcast_to
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor
from nurinet.functional._util import (
    keepdims_shape,
    normalize_axis,
    pick_axis,
    pick_keepdims,
    xp_of,
)


def _expand(gy: Tensor, x_shape: tuple[int, ...], axis: tuple[int, ...] | None) -> Tensor:
    """Broadcast a reduction's output gradient back over the reduced axes."""
    from nurinet.functional.shape import reshape

    gy = reshape(gy, keepdims_shape(x_shape, axis))
    return broadcast_to(gy, x_shape)


def _expand_array(gy: Any, x_shape: tuple[int, ...], axis: tuple[int, ...] | None) -> Any:
    """The array form of :func:`_expand`.

    Filling a new array is several times faster than ``broadcast_to`` (whose
    Python-level checks dominate on small arrays), and the result is writable.
    """
    out = xp_of(gy).empty(x_shape, gy.dtype)
    out[...] = gy.reshape(keepdims_shape(x_shape, axis))
    return out


class _Reduction(Function):
    def __init__(self, axis: tuple[int, ...] | None, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims


class Sum(_Reduction):
    """The sum over ``axis``.

    backward_arrays: bench_overhead's chains and wide graph.
    """

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy: Tensor) -> Tensor:
        return _expand(gy, self.x_shape, self.axis)

    def backward_arrays(self, gy: Any) -> Any:
        return _expand_array(gy, self.x_shape, self.axis)


class Mean(_Reduction):
    """The mean over ``axis``.

    backward_arrays: the Transformer benchmark.
    """

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        # sum / count is what ndarray.mean computes, without its Python-level overhead.
        y = x.sum(axis=self.axis, keepdims=self.keepdims)
        self.count = x.size // builtins.max(y.size, 1) if x.size else 0
        return y / self.count if self.count else y * float("nan")

    def _scale(self) -> float:
        # An empty input (count 0) has an empty gradient: any finite scale will do.
        return 1.0 / self.count if self.count else 0.0

    def backward(self, gy: Tensor) -> Tensor:
        return _expand(gy, self.x_shape, self.axis) * self._scale()

    def backward_arrays(self, gy: Any) -> Any:
        return _expand_array(gy * self._scale(), self.x_shape, self.axis)


class _Extreme(_Reduction):
    """Max or min. The gradient is split evenly among tied extremes."""

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        y = self.output().array
        if not self.keepdims:
            y = y.reshape(keepdims_shape(x.shape, self.axis))
        hit = (x.array == y).astype(x.dtype)
        hit /= hit.sum(axis=self.axis, keepdims=True)
        return _expand(gy, x.shape, self.axis) * Tensor._wrap(hit, False)


class Max(_Extreme):
    def forward(self, x: Any) -> Any:
        return x.max(axis=self.axis, keepdims=self.keepdims)


class Min(_Extreme):
    def forward(self, x: Any) -> Any:
        return x.min(axis=self.axis, keepdims=self.keepdims)


class LogSumExp(_Reduction):
    """log(sum(exp(x))) computed stably by shifting by the maximum."""

    def forward(self, x: Any) -> Any:
        xp = xp_of(x)
        m = x.max(axis=self.axis, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        y = xp.log(xp.exp(x - m).sum(axis=self.axis, keepdims=True)) + m
        return y if self.keepdims else y.reshape(_reduced_shape(x.shape, self.axis))

    def backward(self, gy: Tensor) -> Tensor:
        from nurinet.functional.elementwise import exp

        x = self.inputs[0]
        y = _expand(self.output(), x.shape, self.axis)
        return _expand(gy, x.shape, self.axis) * exp(x - y)


class Prod(_Reduction):
    """Product of elements. The first-order gradient is exact at zeros too."""

    def forward(self, x: Any) -> Any:
        return x.prod(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        if (x.array != 0).all():
            y = _expand(self.output(), x.shape, self.axis)
            return _expand(gy, x.shape, self.axis) * y / x
        # With zeros, y / x is 0/0: use the product of the other elements
        # (first order only; a second derivative through zeros is not recorded).
        others = Tensor._wrap(_product_of_others(x.array, self.axis), False)
        return _expand(gy, x.shape, self.axis) * others


def _product_of_others(x: Any, axis: tuple[int, ...] | None) -> Any:
    """For each element, the product of all other elements on its reduced axes."""
    xp = xp_of(x)
    if axis is None:
        axis = tuple(range(x.ndim))
    moved = xp.moveaxis(x, axis, tuple(range(len(axis))))
    flat = moved.reshape((-1,) + moved.shape[len(axis):])
    ones = xp.ones((1,) + flat.shape[1:], x.dtype)
    left = xp.concatenate([ones, xp.cumprod(flat, axis=0)[:-1]], axis=0)
    right = xp.flip(xp.cumprod(xp.flip(flat, 0), axis=0), 0)
    right = xp.concatenate([right[1:], ones], axis=0)
    out = (left * right).reshape(moved.shape)
    return xp.moveaxis(out, tuple(range(len(axis))), axis)


class Cumsum(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        return xp_of(x).cumsum(x, axis=self.axis)

    def backward(self, gy: Tensor) -> Tensor:
        from nurinet.functional.shape import flip

        return flip(cumsum(flip(gy, self.axis), self.axis), self.axis)


def _reduced_shape(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> tuple[int, ...]:
    if axis is None:
        return ()
    return tuple(s for i, s in enumerate(shape) if i not in axis)


def _reduction(op: type, x: Tensor, axis: Any, keepdims: bool | None, dim: Any, keepdim: bool | None,
               name: str) -> Tensor:
    """``op(axes, keepdims)(x)``, the axis given as NumPy's ``axis``/``keepdims`` or PyTorch's ``dim``/``keepdim``."""
    axis, keep = pick_axis(axis, dim, name), pick_keepdims(keepdims, keepdim, name)
    return op(normalize_axis(axis, x.ndim), keep)(x)


def sum(x: Tensor, axis: Any = None, keepdims: bool | None = None, *, dim: Any = None,
        keepdim: bool | None = None) -> Tensor:
    """Sum over ``axis`` (all axes when None); ``dim``/``keepdim`` are PyTorch's spellings."""
    return _reduction(Sum, x, axis, keepdims, dim, keepdim, "sum")


def mean(x: Tensor, axis: Any = None, keepdims: bool | None = None, *, dim: Any = None,
         keepdim: bool | None = None) -> Tensor:
    """Arithmetic mean over ``axis``."""
    return _reduction(Mean, x, axis, keepdims, dim, keepdim, "mean")


def var(x: Tensor, axis: Any = None, keepdims: bool | None = None, ddof: int = 0, *, dim: Any = None,
        keepdim: bool | None = None) -> Tensor:
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom (NumPy's default 0: biased).

    This is NumPy's ``var``; the Tensor method ``x.var()`` is PyTorch's, unbiased by default
    (see :func:`var_torch`).
    """
    axis, keep = pick_axis(axis, dim, "var"), pick_keepdims(keepdims, keepdim, "var")
    ax = normalize_axis(axis, x.ndim)
    centered = x - mean(x, ax, keepdims=True)
    count = x.array.size if ax is None else _prod(x.shape[i] for i in ax)
    if count - ddof <= 0:
        raise ValueError(f"var: {count} element(s) along the axis is too few for ddof={ddof}")
    return sum(centered * centered, ax, keep) * (1.0 / (count - ddof))


def std(x: Tensor, axis: Any = None, keepdims: bool | None = None, ddof: int = 0, *, dim: Any = None,
        keepdim: bool | None = None) -> Tensor:
    """Standard deviation over ``axis`` (square root of :func:`var`; NumPy's ``ddof``, default 0)."""
    from nurinet.functional.elementwise import sqrt

    return sqrt(var(x, axis, keepdims, ddof, dim=dim, keepdim=keepdim))


def _correction(unbiased: bool | None, correction: int | None, op: str) -> int:
    """PyTorch's degrees-of-freedom correction: 1 (unbiased) unless told otherwise."""
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}: give unbiased= or correction=, not both")
    if correction is not None:
        return int(correction)
    return 0 if unbiased is False else 1


def var_torch(x: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
              correction: int | None = None, axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """PyTorch's ``var``: unbiased (``correction=1``) by default, unlike NumPy's ``var``.

    ``x.var(dim)`` is this function. ``unbiased=False`` or ``correction=0`` gives NumPy's value.
    """
    dim = pick_axis(axis, dim, "var")
    keep = pick_keepdims(keepdims, keepdim or None, "var")
    return var(x, dim, keep, _correction(unbiased, correction, "var"))


def std_torch(x: Tensor, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *,
              correction: int | None = None, axis: Any = None, keepdims: bool | None = None) -> Tensor:
    """PyTorch's ``std``: unbiased by default (the square root of :func:`var_torch`)."""
    from nurinet.functional.elementwise import sqrt

    return sqrt(var_torch(x, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims))


def max(x: Tensor, axis: Any = None, keepdims: bool | None = None, *, dim: Any = None,
        keepdim: bool | None = None) -> Tensor:
    """Maximum values over ``axis`` (NumPy's ``amax``); tied maxima share the gradient equally.

    The Tensor method ``x.max(dim)`` is PyTorch's and also returns the indices.
    """
    return _reduction(Max, x, axis, keepdims, dim, keepdim, "max")


def min(x: Tensor, axis: Any = None, keepdims: bool | None = None, *, dim: Any = None,
        keepdim: bool | None = None) -> Tensor:
    """Minimum values over ``axis`` (NumPy's ``amin``); tied minima share the gradient equally."""
    return _reduction(Min, x, axis, keepdims, dim, keepdim, "min")


def logsumexp(x: Tensor, axis: Any = None, keepdims: bool | None = None, *, dim: Any = None,
              keepdim: bool | None = None) -> Tensor:
    """log(sum(exp(x))) over ``axis``, without overflow."""
    return _reduction(LogSumExp, x, axis, keepdims, dim, keepdim, "logsumexp")


def prod(x: Tensor, axis: Any = None, keepdims: bool | None = None, *, dim: Any = None,
         keepdim: bool | None = None) -> Tensor:
    """Product over ``axis``."""
    return _reduction(Prod, x, axis, keepdims, dim, keepdim, "prod")


def cumsum(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Cumulative sum along one axis (the first when none is given, as before)."""
    (ax,) = normalize_axis(pick_axis(axis, dim, "cumsum", default=0), x.ndim)
    return Cumsum(ax)(x)


def _prod(values: Any) -> int:
    result = 1
    for v in values:
        result *= v
    return result
