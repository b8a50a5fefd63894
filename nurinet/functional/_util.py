"""Helpers shared by the op modules: operand coercion, axis handling, array module."""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.backend import get_array_module


def xp_of(x: Any) -> Any:
    """The array module (numpy or cupy) of an array."""
    return get_array_module(x)


def operands(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Turn the two operands of a binary op into Tensors of one dtype.

    A Python or NumPy scalar takes the tensor's dtype (``x * 2.0`` stays
    float32), and an integer tensor meeting a float scalar becomes float32, as
    in PyTorch. Two tensors of different dtypes are cast to their common type
    (an integer tensor takes the float tensor's dtype) by a differentiable
    cast, so each binary op sees one dtype and never promotes float32 to
    float64 by accident.
    """
    if not isinstance(a, Tensor) and (isinstance(b, Tensor) or _is_scalar(a)):
        b = as_tensor(b)
        weak, a = _is_scalar(a), as_tensor(a, b)
        scalar = a
    else:
        a = as_tensor(a)
        weak, b = _is_scalar(b), as_tensor(b, a)
        scalar = b
    if a.data.dtype != b.data.dtype:
        from nurinet.functional.elementwise import astype

        # A scalar already took the dtype the result should have (see as_tensor).
        common = scalar.data.dtype if weak else _common_dtype(a.data.dtype, b.data.dtype)
        a, b = astype(a, common), astype(b, common)
    return a, b


def _common_dtype(x: np.dtype, y: np.dtype) -> np.dtype:
    """NumPy's common type, except that integers meeting floats take the float's dtype.

    NumPy turns int64 with float32 into float64; PyTorch keeps float32, and so do
    we: ``arange(n) * w`` must not silently make a float32 model float64.
    """
    if x.kind in "iub" and y.kind in "fc":
        return y
    if y.kind in "iub" and x.kind in "fc":
        return x
    return np.result_type(x, y)


def _is_scalar(x: Any) -> bool:
    return isinstance(x, (int, float, bool, np.number, np.bool_))


def normalize_axis(axis: Any, ndim: int) -> tuple[int, ...] | None:
    """``axis`` as a sorted tuple of non-negative ints (``None`` stays ``None``)."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    result = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimension(s)")
        result.append(int(a) % max(ndim, 1))
    return tuple(sorted(result))


def keepdims_shape(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape a reduction over ``axis`` has with ``keepdims=True``."""
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else s for i, s in enumerate(shape))
