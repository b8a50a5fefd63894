"""Shape ops: reshape, permute, transpose (swap two axes), swapaxes, squeeze, unsqueeze, flatten,
broadcast_to, expand, concatenate, stack, split, chunk, pad, repeat, tile, flip.

Names follow PyTorch where PyTorch has them: ``transpose(x, d0, d1)`` swaps two axes and
``permute(x, *dims)`` is NumPy's ``transpose(x, axes)``. Every axis argument may be given as
NumPy's ``axis=`` or PyTorch's ``dim=``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nurinet.autograd.broadcast import broadcast_to
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional._util import normalize_axis, pick_axis, xp_of


class Reshape(Function):
    """``x`` in a new shape.

    backward_arrays: the CNN and Transformer benchmarks.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy: Tensor) -> Tensor:
        return reshape(gy, self.x_shape)

    def backward_arrays(self, gy: Any) -> Any:
        return gy.reshape(self.x_shape)


class Transpose(Function):
    """``x`` with its axes permuted.

    backward_arrays: the LSTM benchmark.
    """

    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, x: Any) -> Any:
        return x.transpose(self.axes)

    def backward(self, gy: Tensor) -> Tensor:
        return permute(gy, tuple(np.argsort(self.axes)))

    def backward_arrays(self, gy: Any) -> Any:
        return gy.transpose(tuple(np.argsort(self.axes)))


class Concatenate(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs: Any) -> Any:
        self.sizes = [x.shape[self.axis] for x in xs]
        return xp_of(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy: Tensor) -> tuple[Tensor, ...]:
        bounds = np.cumsum(self.sizes)[:-1].tolist()
        return split(gy, bounds, axis=self.axis)


class Split(Function):
    """Split along ``axis`` at the given indices (several outputs)."""

    def __init__(self, indices: list[int], axis: int) -> None:
        self.indices, self.axis = indices, axis

    def forward(self, x: Any) -> Any:
        return tuple(xp_of(x).split(x, self.indices, axis=self.axis))

    def backward(self, *gys: Tensor) -> Tensor:
        return concatenate(list(gys), axis=self.axis)


class Pad(Function):
    """Constant padding; ``pad_width`` as NumPy's ((before, after), ...) per axis."""

    def __init__(self, pad_width: tuple[tuple[int, int], ...], value: float) -> None:
        self.pad_width, self.value = pad_width, value

    def forward(self, x: Any) -> Any:
        return xp_of(x).pad(x, self.pad_width, mode="constant", constant_values=self.value)

    def backward(self, gy: Tensor) -> Tensor:
        index = tuple(slice(b, gy.shape[i] - a) for i, (b, a) in enumerate(self.pad_width))
        from nurinet.functional.indexing import getitem

        return getitem(gy, index)


class Repeat(Function):
    """Repeat each element ``repeats`` times along ``axis`` (NumPy's ``repeat``)."""

    def __init__(self, repeats: int, axis: int) -> None:
        self.repeats, self.axis = repeats, axis

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return xp_of(x).repeat(x, self.repeats, axis=self.axis)

    def backward(self, gy: Tensor) -> Tensor:
        from nurinet.functional.reduction import sum as sum_

        ax, n = self.axis, self.x_shape[self.axis]
        grouped = reshape(gy, gy.shape[:ax] + (n, self.repeats) + gy.shape[ax + 1 :])
        return sum_(grouped, axis=ax + 1)


class Tile(Function):
    """Tile the whole array ``reps`` times per axis (NumPy's ``tile``)."""

    def __init__(self, reps: tuple[int, ...]) -> None:
        self.reps = reps

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        return xp_of(x).tile(x, self.reps)

    def backward(self, gy: Tensor) -> Tensor:
        from nurinet.functional.reduction import sum as sum_

        shape = (1,) * (len(self.reps) - len(self.x_shape)) + tuple(self.x_shape)
        split_shape = []
        for rep, size in zip(self.reps, shape):
            split_shape += [rep, size]
        summed = sum_(reshape(gy, tuple(split_shape)), axis=tuple(range(0, 2 * len(shape), 2)))
        return reshape(summed, self.x_shape)


class Flip(Function):
    def __init__(self, axis: tuple[int, ...]) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        return xp_of(x).flip(x, self.axis)

    def backward(self, gy: Tensor) -> Tensor:
        return flip(gy, self.axis)


def _shape_arg(shape: Any) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(x: Tensor, *shape: Any) -> Tensor:
    """``x`` with a new shape of the same size (one dimension may be -1)."""
    shape = _shape_arg(shape)
    if x.shape == shape:
        return x
    try:
        target = np.empty(x.shape, dtype=bool).reshape(shape).shape
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {x.shape} ({x.array.size} elements) into {shape}"
        ) from None
    return Reshape(target)(x)


def permute(x: Tensor, *dims: Any) -> Tensor:
    """Reorder the axes: axis ``i`` of the result is axis ``dims[i]`` of ``x``.

    PyTorch's ``permute`` and NumPy's ``transpose(x, axes)``; with no ``dims`` the axes are
    reversed, as ``numpy.transpose(x)`` and ``x.T``.
    """
    axes = _shape_arg(dims) if dims and dims[0] is not None else tuple(reversed(range(x.ndim)))
    axes = tuple(int(a) % max(x.ndim, 1) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {axes} are not a permutation of a {x.ndim}-d tensor's axes")
    return Transpose(axes)(x)


def transpose(x: Tensor, dim0: int, dim1: int | None = None) -> Tensor:
    """Swap axes ``dim0`` and ``dim1``, as ``torch.transpose`` (NumPy's ``swapaxes``).

    NumPy's ``transpose(x, axes)`` (a full permutation) is :func:`permute`.

    Raises:
        TypeError: ``dim0`` is a sequence of axes (NumPy's meaning), naming :func:`permute`.
    """
    if not isinstance(dim0, (int, np.integer)) or not isinstance(dim1, (int, np.integer)):
        raise TypeError(f"transpose(x, dim0, dim1) swaps two axes, as PyTorch's; got dims {dim0!r}, {dim1!r}. "
                        "For a full permutation of the axes (NumPy's transpose) use permute(x, *dims)")
    return swapaxes(x, dim0, dim1)


def swapaxes(x: Tensor, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes (``transpose`` in PyTorch)."""
    ndim = max(x.ndim, 1)
    for a in (axis1, axis2):
        if not -ndim <= a < ndim:
            raise ValueError(f"swapaxes: axis {a} is out of range for a tensor with {x.ndim} dimension(s)")
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return Transpose(tuple(axes))(x)


def t(x: Tensor) -> Tensor:
    """The transpose of a matrix (a tensor of at most 2 dims is returned as is, as ``torch.t``)."""
    if x.ndim > 2:
        raise ValueError(f"t() expects a tensor with at most 2 dims, got shape {x.shape}; "
                         "use transpose(x, d0, d1) or permute")
    return x if x.ndim < 2 else swapaxes(x, 0, 1)


def squeeze(x: Tensor, axis: Any = None, *, dim: Any = None) -> Tensor:
    """Remove axes of length one (all of them when no axis is given)."""
    axes = normalize_axis(pick_axis(axis, dim, "squeeze"), x.ndim)
    if axes is None:
        axes = tuple(i for i, s in enumerate(x.shape) if s == 1)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has length {x.shape[a]}, not 1 (shape {x.shape})")
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in axes))


def unsqueeze(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Insert an axis of length one at ``axis`` (PyTorch: ``dim``)."""
    axis = pick_axis(axis, dim, "unsqueeze")
    if axis is None:
        raise TypeError("unsqueeze needs the position of the new axis (dim=)")
    ndim = x.ndim + 1
    if not -ndim <= axis < ndim:
        raise ValueError(f"unsqueeze: axis {axis} is out of range for a result with {ndim} dims")
    axis %= ndim
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def flatten(x: Tensor, start_axis: int | None = None, end_axis: int | None = None, *,
            start_dim: int | None = None, end_dim: int | None = None) -> Tensor:
    """Merge axes ``start_axis`` .. ``end_axis`` (inclusive; PyTorch: ``start_dim``/``end_dim``) into one."""
    start = pick_axis(start_axis, start_dim, "flatten", default=0)
    end = pick_axis(end_axis, end_dim, "flatten", default=-1)
    if x.ndim == 0:
        return reshape(x, (1,))
    start, end = start % x.ndim, end % x.ndim
    merged = int(np.prod(x.shape[start : end + 1], dtype=np.int64))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1 :])


def expand(x: Tensor, *sizes: Any) -> Tensor:
    """Broadcast ``x`` to ``sizes`` (-1 keeps a dimension), as ``torch.Tensor.expand``.

    As PyTorch's, the result is a view that shares ``x``'s memory; unlike PyTorch's it is
    read-only (NumPy's ``broadcast_to``), so writing into it raises instead of aliasing elements.
    """
    sizes = _shape_arg(sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes given for a tensor with {x.ndim} dims")
    target = tuple(x.shape[i - lead] if s == -1 and i >= lead else int(s) for i, s in enumerate(sizes))
    return broadcast_to(x, target)


def concatenate(xs: Sequence[Any], axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Join tensors along an existing axis (the first by default; PyTorch's ``cat``)."""
    axis = pick_axis(axis, dim, "concatenate", default=0)
    xs = [as_tensor(x) for x in xs]
    if not xs:
        raise ValueError("concatenate needs at least one tensor")
    ndim = xs[0].ndim
    axis = normalize_axis(axis, ndim)[0]
    for i, x in enumerate(xs):
        rest = x.shape[:axis] + x.shape[axis + 1 :]
        if x.ndim != ndim or rest != xs[0].shape[:axis] + xs[0].shape[axis + 1 :]:
            raise ValueError(
                f"concatenate along axis {axis}: tensor {i} has shape {x.shape}, which does not "
                f"match tensor 0's shape {xs[0].shape} outside that axis"
            )
    return Concatenate(axis)(*xs)


def stack(xs: Sequence[Any], axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Join tensors of one shape along a new axis (the first by default)."""
    axis = pick_axis(axis, dim, "stack", default=0)
    xs = [as_tensor(x) for x in xs]
    if not xs:
        raise ValueError("stack needs at least one tensor")
    shapes = {x.shape for x in xs}
    if len(shapes) != 1:
        raise ValueError(f"stack needs tensors of one shape, got {sorted(shapes)}")
    return concatenate([unsqueeze(x, axis) for x in xs], axis=axis)


def split(x: Tensor, indices_or_sections: Any, axis: int | None = None, *,
          dim: int | None = None) -> tuple[Tensor, ...]:
    """Split into parts along ``axis``: a number of equal sections, or split indices (NumPy's split).

    PyTorch's ``split`` (a part size, or a list of part sizes) is :func:`split_sizes`.
    """
    axis = normalize_axis(pick_axis(axis, dim, "split", default=0), x.ndim)[0]
    if isinstance(indices_or_sections, (int, np.integer)):
        n = int(indices_or_sections)
        if n <= 0 or x.shape[axis] % n:
            raise ValueError(
                f"split: axis {axis} of length {x.shape[axis]} cannot be split into {n} equal parts"
            )
        step = x.shape[axis] // n
        indices = [step * i for i in range(1, n)]
    else:
        indices = [int(i) for i in indices_or_sections]
    result = Split(indices, axis)(x)
    return result if isinstance(result, tuple) else (result,)


def split_sizes(x: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """PyTorch's ``split``: parts of ``split_size`` along ``dim`` (the last may be shorter), or of the
    listed sizes."""
    axis = normalize_axis(dim, x.ndim)[0]
    length = x.shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (length // size) + ([length % size] if length % size else [])
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != length:
            raise ValueError(f"split: sizes {sizes} do not add up to dimension {axis}'s length {length}")
    bounds = np.cumsum(sizes)[:-1].tolist()
    return split(x, bounds, axis) if len(sizes) > 1 else (x,)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """Split into ``chunks`` parts along ``dim`` (the last may be smaller), as ``torch.chunk``."""
    length = x.shape[normalize_axis(dim, x.ndim)[0]]
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    return split_sizes(x, max(-(-length // chunks), 1), dim)


def pad_widths(pad_width: Any, ndim: int, op: str = "pad") -> tuple[tuple[int, int], ...]:
    """``pad_width`` as in ``numpy.pad`` (int, pair, or pair per axis) as one pair per axis.

    Raises:
        ValueError: a negative width (the message names ``op``).
    """
    width = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (ndim, 2))
    if (width < 0).any():
        raise ValueError(f"{op}: widths must be non-negative, got {pad_width}")
    return tuple((int(before), int(after)) for before, after in width)


def pad(x: Tensor, pad_width: Any, value: float = 0.0) -> Tensor:
    """Pad with a constant; ``pad_width`` as in ``numpy.pad`` (int, pair, or pair per axis)."""
    return Pad(pad_widths(pad_width, x.ndim), value)(x)


def repeat(x: Tensor, repeats: int, axis: int | None = None) -> Tensor:
    """Repeat each element ``repeats`` times along ``axis`` (flattened when None)."""
    if axis is None:
        x, axis = flatten(x), 0
    axis = normalize_axis(axis, x.ndim)[0]
    return Repeat(int(repeats), axis)(x)


def repeat_interleave(x: Tensor, repeats: int, dim: int | None = None) -> Tensor:
    """PyTorch's name of NumPy's ``repeat``: each element ``repeats`` times along ``dim`` (flattened
    when None)."""
    return repeat(x, repeats, dim)


def tile(x: Tensor, reps: Any) -> Tensor:
    """Repeat the whole tensor ``reps`` times along each axis."""
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    reps = (1,) * (x.ndim - len(reps)) + reps
    return Tile(reps)(x)


def flip(x: Tensor, axis: Any = None, *, dims: Any = None) -> Tensor:
    """Reverse the order of elements along ``axis`` (PyTorch: ``dims``; all axes when neither)."""
    axes = normalize_axis(pick_axis(axis, dims, "flip"), x.ndim)
    return Flip(tuple(range(x.ndim)) if axes is None else axes)(x)
