"""Indexing: basic and advanced ``x[index]`` and ``take_along_axis``, with the
scatter-add backward that accumulates gradients of repeated indices."""

from __future__ import annotations

from typing import Any

from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor
from nurinet.functional._util import xp_of


def _raw_index(index: Any) -> Any:
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, Tensor):
        return index.array
    if isinstance(index, tuple):
        return tuple(_raw_index(i) for i in index)
    if isinstance(index, list) and any(isinstance(i, Tensor) for i in index):
        return [_raw_index(i) for i in index]
    return index


class GetItem(Function):
    """``x[index]``.

    backward_arrays: the LSTM benchmark.
    """

    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return x[self.index]

    def backward(self, gy: Tensor) -> Tensor:
        return ScatterAdd(self.index, self.x_shape)(gy)

    def backward_arrays(self, gy: Any) -> Any:
        return ScatterAdd(self.index, self.x_shape).forward(gy)


class ScatterAdd(Function):
    """Add ``y`` into zeros of ``shape`` at ``index`` (repeated indices accumulate).

    The backward of indexing, and indexing is its backward.
    """

    def __init__(self, index: Any, shape: tuple[int, ...]) -> None:
        self.index, self.shape = index, shape

    def forward(self, gy: Any) -> Any:
        xp = xp_of(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if _is_basic(self.index):
            gx[self.index] = gy  # Basic indices never repeat an element: plain assignment.
        else:
            _add_at(xp, gx, self.index, gy)
        return gx

    def backward(self, ggx: Tensor) -> Tensor:
        return getitem(ggx, self.index)


def _is_basic(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)


def _add_at(xp: Any, target: Any, index: Any, values: Any) -> None:
    """``target[index] += values`` with repeated indices accumulating."""
    if xp.__name__ == "numpy":
        xp.add.at(target, index, values)
    else:
        import cupyx

        cupyx.scatter_add(target, index, values)


class TakeAlongAxis(Function):
    def __init__(self, indices: Any, axis: int) -> None:
        self.indices, self.axis = indices, axis

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return xp_of(x).take_along_axis(x, self.indices, axis=self.axis)

    def backward(self, gy: Tensor) -> Tensor:
        return PutAlongAxis(self.indices, self.axis, self.x_shape)(gy)


class PutAlongAxis(Function):
    """Scatter-add ``y`` into zeros of ``shape`` along ``axis`` (backward of take_along_axis)."""

    def __init__(self, indices: Any, axis: int, shape: tuple[int, ...]) -> None:
        self.indices, self.axis, self.shape = indices, axis, shape

    def forward(self, y: Any) -> Any:
        xp = xp_of(y)
        gx = xp.zeros(self.shape, dtype=y.dtype)
        full = list(xp.ix_(*[xp.arange(n) for n in self.indices.shape]))
        full[self.axis] = self.indices
        _add_at(xp, gx, tuple(full), y)
        return gx

    def backward(self, ggx: Tensor) -> Tensor:
        return take_along_axis(ggx, self.indices, self.axis)


def getitem(x: Tensor, index: Any) -> Tensor:
    """``x[index]`` with NumPy semantics (basic slicing, integer and boolean arrays)."""
    index = _raw_index(index)
    try:
        return GetItem(index)(x)
    except IndexError as err:
        raise IndexError(f"indexing a tensor of shape {x.shape}: {err}") from None


def take_along_axis(x: Tensor, indices: Any, axis: int) -> Tensor:
    """Pick values along ``axis`` at ``indices`` (same rank as ``x``), as NumPy does."""
    idx = indices.array if isinstance(indices, Tensor) else xp_of(x.array).asarray(indices)
    if idx.ndim != x.ndim:
        raise ValueError(
            f"take_along_axis: indices have {idx.ndim} dims but the tensor has {x.ndim} "
            f"(shape {x.shape}); add axes of length one to the indices"
        )
    if idx.dtype.kind not in "iu":
        raise TypeError(f"take_along_axis: indices must be integers, got {idx.dtype}")
    return TakeAlongAxis(idx, axis % x.ndim)(x)


def gather(x: Tensor, dim: int, index: Any) -> Tensor:
    """Values of ``x`` along ``dim`` at ``index``, as ``torch.gather`` (``x.gather(1, actions)``).

    ``index`` has ``x``'s number of dims; the result has its shape. Differentiable in ``x``.
    Only ``index`` shapes that match ``x`` outside ``dim`` (or broadcast to it) are accepted, as
    NumPy's ``take_along_axis``; PyTorch also accepts smaller ones.
    """
    return take_along_axis(x, index, dim)
