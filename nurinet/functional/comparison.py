"""Non-differentiable ops: comparisons, argmax/argmin, one_hot.

Their results carry no gradient (they are boolean or integer tensors).
"""

from __future__ import annotations

from typing import Any

from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional._util import operands, pick_axis, pick_keepdims, xp_of


def _constant(array: Any) -> Tensor:
    return Tensor._wrap(array, False)


def equal(a: Any, b: Any) -> Tensor:
    """Elementwise ``a == b`` (bool)."""
    a, b = operands(a, b)
    return _constant(a.array == b.array)


def not_equal(a: Any, b: Any) -> Tensor:
    """Elementwise ``a != b`` (bool)."""
    a, b = operands(a, b)
    return _constant(a.array != b.array)


def less(a: Any, b: Any) -> Tensor:
    """Elementwise ``a < b`` (bool)."""
    a, b = operands(a, b)
    return _constant(a.array < b.array)


def less_equal(a: Any, b: Any) -> Tensor:
    """Elementwise ``a <= b`` (bool)."""
    a, b = operands(a, b)
    return _constant(a.array <= b.array)


def greater(a: Any, b: Any) -> Tensor:
    """Elementwise ``a > b`` (bool)."""
    a, b = operands(a, b)
    return _constant(a.array > b.array)


def greater_equal(a: Any, b: Any) -> Tensor:
    """Elementwise ``a >= b`` (bool)."""
    a, b = operands(a, b)
    return _constant(a.array >= b.array)


def argmax(x: Any, axis: int | None = None, keepdims: bool | None = None, *, dim: int | None = None,
           keepdim: bool | None = None) -> Tensor:
    """Index of the largest value (of the flattened tensor when no axis is given)."""
    x = as_tensor(x)
    axis, keep = pick_axis(axis, dim, "argmax"), pick_keepdims(keepdims, keepdim, "argmax")
    return _constant(xp_of(x.array).argmax(x.array, axis=axis, keepdims=keep))


def argmin(x: Any, axis: int | None = None, keepdims: bool | None = None, *, dim: int | None = None,
           keepdim: bool | None = None) -> Tensor:
    """Index of the smallest value (of the flattened tensor when no axis is given)."""
    x = as_tensor(x)
    axis, keep = pick_axis(axis, dim, "argmin"), pick_keepdims(keepdims, keepdim, "argmin")
    return _constant(xp_of(x.array).argmin(x.array, axis=axis, keepdims=keep))


# PyTorch's short names of the comparisons.
eq, ne, lt, le, gt, ge = equal, not_equal, less, less_equal, greater, greater_equal


def one_hot(indices: Any, num_classes: int, dtype: Any = "float32") -> Tensor:
    """One-hot rows: ``(*shape)`` integer class indices -> ``(*shape, num_classes)``.

    Raises:
        ValueError: an index is negative or not below ``num_classes``.
    """
    idx = as_tensor(indices).array
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {idx.dtype}")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
        bad = int(idx.min()) if int(idx.min()) < 0 else int(idx.max())
        raise ValueError(f"one_hot: index {bad} is out of range for {num_classes} classes")
    xp = xp_of(idx)
    return _constant(xp.eye(num_classes, dtype=dtype)[idx])
