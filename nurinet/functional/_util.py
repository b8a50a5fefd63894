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

    A Python number takes the tensor's dtype (``x * 2.0`` stays float32); two
    tensors of different dtypes are cast to their common type by a
    differentiable cast, so each binary op sees one dtype and never promotes
    float32 to float64 by accident.
    """
    if isinstance(a, Tensor):
        b = as_tensor(b, a)
    else:
        b = as_tensor(b)
        a = as_tensor(a, b)
    if a.data.dtype != b.data.dtype:
        from nurinet.functional.elementwise import astype

        common = np.result_type(a.data.dtype, b.data.dtype)
        a, b = astype(a, common), astype(b, common)
    return a, b


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
