"""Sorting and PyTorch's reductions with indices: sort, argsort, topk, and max/min along a dim.

The indices carry no gradient; the values are gathered with ``take_along_axis``, so the
gradient goes to the elements picked, as in PyTorch (``torch.max(x, dim)`` gives a tie's
gradient to the index it returns, unlike ``amax``, which shares it).
"""

from __future__ import annotations

from collections import namedtuple
from types import SimpleNamespace
from typing import Any

from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional._util import normalize_axis, pick_axis, pick_keepdims, xp_of
from nurinet.functional.indexing import take_along_axis

# PyTorch's torch.return_types: tuples that unpack as (values, indices) and name their fields.
return_types = SimpleNamespace(**{
    name: namedtuple(name, ["values", "indices"])
    for name in ("max", "min", "sort", "topk")
})


def _one_axis(x: Tensor, axis: Any) -> int:
    (ax,) = normalize_axis(axis, max(x.ndim, 1))
    return ax


def _argsort_array(data: Any, axis: int, descending: bool) -> Any:
    """Stable argsort along ``axis``; descending keeps equal elements in their original order."""
    xp = xp_of(data)
    if not descending:
        return xp.argsort(data, axis=axis, kind="stable")
    # Sort the reversed array ascending, reverse the order again and map the positions back.
    reversed_order = xp.argsort(xp.flip(data, axis), axis=axis, kind="stable")
    return data.shape[axis] - 1 - xp.flip(reversed_order, axis)


def argsort(x: Any, dim: int = -1, descending: bool = False, stable: bool = False, *,
            axis: int | None = None) -> Tensor:
    """The indices that sort ``x`` along ``dim`` (ascending unless ``descending``; always stable)."""
    x = as_tensor(x)
    ax = _one_axis(x, pick_axis(axis, None if dim == -1 else dim, "argsort", default=-1))
    data = x.array if x.ndim else x.array.reshape(1)
    return Tensor._wrap(_argsort_array(data, ax, descending).reshape(x.shape), False)


def sort(x: Any, dim: int = -1, descending: bool = False, stable: bool = False, *,
         axis: int | None = None) -> Any:
    """Sorted values and their indices along ``dim``, as ``torch.sort`` (a ``(values, indices)`` tuple)."""
    x = as_tensor(x)
    ax = _one_axis(x, pick_axis(axis, None if dim == -1 else dim, "sort", default=-1))
    indices = argsort(x, ax, descending)
    return return_types.sort(_gather(x, indices, ax), indices)


def topk(x: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
    """The ``k`` largest (or smallest) values along ``dim`` and their indices, as ``torch.topk``."""
    x = as_tensor(x)
    ax = _one_axis(x, dim)
    if not 0 <= k <= (x.shape[ax] if x.ndim else 1):
        raise ValueError(f"topk: k={k} is out of range for dimension {ax} of shape {x.shape}")
    order = _argsort_array(x.array if x.ndim else x.array.reshape(1), ax, descending=largest)
    index = [slice(None)] * max(x.ndim, 1)
    index[ax] = slice(0, k)
    picked = order[tuple(index)]
    indices = Tensor._wrap(picked if x.ndim else picked.reshape(()), False)
    return return_types.topk(_gather(x, indices, ax), indices)


def _gather(x: Tensor, indices: Tensor, axis: int) -> Tensor:
    if x.ndim == 0:
        return x
    return take_along_axis(x, indices, axis)


def extreme_with_indices(x: Any, dim: int, keepdim: bool, which: str) -> Any:
    """``torch.max(x, dim)`` / ``torch.min(x, dim)``: a ``(values, indices)`` named tuple."""
    from nurinet.functional.shape import squeeze

    x = as_tensor(x)
    ax = _one_axis(x, dim)
    data = x.array if x.ndim else x.array.reshape(1)
    pick = xp_of(data).argmax if which == "max" else xp_of(data).argmin
    index = pick(data, axis=ax, keepdims=True)
    values = _gather(x, Tensor._wrap(index.reshape(index.shape if x.ndim else ()), False), ax)
    if x.ndim == 0:
        index = index.reshape(())
    elif not keepdim:
        values, index = squeeze(values, ax), index.squeeze(ax)
    return getattr(return_types, which)(values, Tensor._wrap(index, False))


def max_torch(x: Any, dim: Any = None, keepdim: bool | None = None, *, axis: Any = None,
              keepdims: bool | None = None) -> Any:
    """PyTorch's ``max``: the largest value, ``(values, indices)`` along a dim, or the elementwise
    maximum of two tensors (``torch.max(a, b)``)."""
    return _extreme(x, dim, keepdim, axis, keepdims, "max")


def min_torch(x: Any, dim: Any = None, keepdim: bool | None = None, *, axis: Any = None,
              keepdims: bool | None = None) -> Any:
    """PyTorch's ``min``: the smallest value, ``(values, indices)`` along a dim, or ``torch.min(a, b)``."""
    return _extreme(x, dim, keepdim, axis, keepdims, "min")


def _extreme(x: Any, dim: Any, keepdim: Any, axis: Any, keepdims: Any, which: str) -> Any:
    from nurinet.functional import elementwise, reduction

    if isinstance(dim, Tensor):  # torch.max(a, b): the elementwise maximum
        return (elementwise.maximum if which == "max" else elementwise.minimum)(x, dim)
    dim = pick_axis(axis, dim, which)
    keep = pick_keepdims(keepdims, keepdim, which)
    if dim is None:
        return getattr(reduction, which)(as_tensor(x), None, keep)
    return extreme_with_indices(x, dim, keep, which)
