"""Resampling along one axis by gathers and weighted sums: the core of interpolate and adaptive pooling.

Each output position along the axis reads a few input positions (nearest: one; linear: two; an
adaptive-average bin: its members) and is their weighted sum. It is computed as that, gathers and
weighted sums, so a NaN or an infinity reaches only the outputs that read it, as in PyTorch. A product
with a dense ``(out, in)`` matrix, as these ops were computed before, multiplies every input by the
zeros of every other output's row, and ``0 * nan`` and ``0 * inf`` are NaN: one non-finite pixel made
a whole channel NaN.

A map is stored as *taps*: tap ``k`` lists the outputs that read at least ``k + 1`` inputs, the
``k``-th input each reads and its weight. Two shortcuts keep the common cases fast: a map whose outputs
average equal consecutive blocks (global and other evenly divided adaptive pooling) is one reduction,
and a map with weighted reads (linear interpolation, uneven adaptive bins) runs as one GEMM with its
dense matrix when every input is finite, where a zero weight can only add a zero; with an inf or a
NaN among the inputs it takes the gathers. The op is linear, so its backward is the same op with the
transposed map, and gradients of any order follow.
"""

from __future__ import annotations

import itertools
import math
import string
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from nurinet._runtime import gemm
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor
from nurinet.functional._util import xp_of


class Tap(NamedTuple):
    """One read per output, for the outputs listed in ``rows``.

    Positions that step evenly are kept as a slice: reading them is a view, not a gather.
    """

    rows: np.ndarray | slice | None  # the outputs that make this read; None: every output, in order
    src: np.ndarray | slice  # the input position each of them reads
    weights: np.ndarray | None  # float64 weight of each read; None: every weight is 1


class AxisMap:
    """A sparse linear map from ``n_in`` to ``n_out`` positions along one axis.

    Args:
        n_in: Input length.
        n_out: Output length.
        out_index: For every read, the output that makes it.
        in_index: For every read, the input it reads.
        weights: For every read, its weight.

    Reads of one output are summed in the order given. A read with weight 0
    still reads (``0 * nan`` is NaN): list only the reads the op's definition
    makes, as PyTorch's kernels do.
    """

    def __init__(self, n_in: int, n_out: int, out_index: np.ndarray, in_index: np.ndarray,
                 weights: np.ndarray) -> None:
        self.n_in, self.n_out = n_in, n_out
        self._entries = (np.asarray(out_index, np.int64), np.asarray(in_index, np.int64),
                         np.asarray(weights, np.float64))
        self.taps = _taps(n_out, *self._entries)
        self.window = _uniform_window(n_in, n_out, self.taps)
        # Weighted reads of two or more inputs per output cost one gather, one product and one sum
        # per tap; a GEMM with the dense matrix does them at once, and is exact as long as no input
        # is inf or NaN (a finite value times a zero weight is a zero), which one pass checks.
        self.dense_when_finite = not self.window and len(self.taps) > 1 and any(
            tap.weights is not None for tap in self.taps)

    @cached_property
    def matrix(self) -> np.ndarray:
        """The dense ``(n_out, n_in)`` matrix of the map (float64, read-only)."""
        out_index, in_index, weights = self._entries
        matrix = np.zeros((self.n_out, self.n_in))
        np.add.at(matrix, (out_index, in_index), weights)
        return _frozen(matrix)

    @cached_property
    def transposed(self) -> AxisMap:
        """The adjoint map, from ``n_out`` back to ``n_in`` positions (the backward of :meth:`apply`)."""
        out_index, in_index, weights = self._entries
        return AxisMap(self.n_out, self.n_in, in_index, out_index, weights)

    def apply(self, x: Any, axis: int) -> Any:
        """Map axis ``axis`` of the array ``x`` from ``n_in`` to ``n_out`` positions."""
        xp = xp_of(x)
        if self.dense_when_finite:
            # A product spreads a NaN or inf input over its whole output line, so a finite result
            # (one sum, no pass over the input) proves the input finite; otherwise recompute locally.
            y = self._apply_dense(x, axis, xp)
            if math.isfinite(float(y.sum())):
                return y
        if self.window:
            return self._apply_window(x, axis, xp)
        return self.apply_gathered(x, axis)

    def apply_gathered(self, x: Any, axis: int) -> Any:
        """:meth:`apply` as gathers and weighted sums, one per tap, whatever the values."""
        xp = xp_of(x)
        lead = (slice(None),) * axis
        weight_shape = (-1,) + (1,) * (x.ndim - 1 - axis)
        y = None
        for tap in self.taps:
            part, fresh = _read(x, tap.src, axis, xp)
            if tap.weights is not None:
                weights = xp.asarray(tap.weights, dtype=x.dtype).reshape(weight_shape)
                part = xp.multiply(part, weights, out=part if fresh else None)
                fresh = True
            if tap.rows is None:
                if y is None:
                    y = part if fresh else part.copy()  # the sum starts in a buffer of its own
                else:
                    y += part
                continue
            if y is None:
                y = xp.zeros((*x.shape[:axis], self.n_out, *x.shape[axis + 1 :]), dtype=x.dtype)
            y[(*lead, _on_device(tap.rows, xp))] += part  # rows has no repeats within one tap
        if y is None:  # a map with no reads at all (an empty axis)
            y = xp.zeros((*x.shape[:axis], self.n_out, *x.shape[axis + 1 :]), dtype=x.dtype)
        return y

    def _apply_window(self, x: Any, axis: int, xp: Any) -> Any:
        """Output o averages inputs o*k .. o*k + k - 1: one reduction, no taps."""
        k = self.window
        blocks = x.reshape(*x.shape[:axis], self.n_out, k, *x.shape[axis + 1 :])
        dims = string.ascii_letters[: blocks.ndim]
        # einsum, not sum: NumPy's sum over an inner axis is several times slower (docs/performance.md).
        y = xp.einsum(f"{dims}->{dims[: axis + 1]}{dims[axis + 2 :]}", blocks)
        y /= xp.asarray(k, dtype=y.dtype)
        return y

    def _apply_dense(self, x: Any, axis: int, xp: Any) -> Any:
        """:meth:`apply` as one GEMM with the leading dims folded (finite ``x`` only: see __init__)."""
        moved = xp.moveaxis(x, axis, -1)
        flat = moved.reshape(-1, self.n_in)  # a copy unless the axis is already last
        y = gemm.matmul(flat, xp.asarray(self.matrix, dtype=x.dtype).T)
        return xp.moveaxis(y.reshape(*moved.shape[:-1], self.n_out), -1, axis)


def _read(x: Any, src: np.ndarray | slice, axis: int, xp: Any) -> tuple[Any, bool]:
    """The positions ``src`` of axis ``axis`` of ``x``, and whether that is a new array (not a view)."""
    if isinstance(src, slice):
        return x[(*(slice(None),) * axis, src)], False
    return xp.take(x, _on_device(src, xp), axis=axis), True


def _on_device(index: np.ndarray | slice, xp: Any) -> Any:
    return index if isinstance(index, slice) or xp is np else xp.asarray(index)


def _taps(n_out: int, out_index: np.ndarray, in_index: np.ndarray, weights: np.ndarray) -> tuple[Tap, ...]:
    """Group reads by their rank among the reads of the same output: rank k makes tap k."""
    order = np.argsort(out_index, kind="stable")
    out_index, in_index, weights = out_index[order], in_index[order], weights[order]
    first = np.searchsorted(out_index, out_index, side="left")
    rank = np.arange(out_index.size) - first
    taps = []
    for k in range(int(rank.max()) + 1 if rank.size else 0):
        chosen = rank == k
        rows = out_index[chosen]
        every_row = rows.size == n_out and bool((rows == np.arange(n_out)).all())
        tap_weights = weights[chosen]
        taps.append(Tap(None if every_row else _index(rows), _index(in_index[chosen]),
                        None if bool((tap_weights == 1.0).all()) else _frozen(tap_weights)))
    return tuple(taps)


def _uniform_window(n_in: int, n_out: int, taps: tuple[Tap, ...]) -> int:
    """k when output o is the mean of inputs o*k .. o*k + k - 1, covering the axis (else 0).

    Adaptive average pooling of a size its output size divides (global pooling, 8 to 4) has this
    form, and a reshape and one reduction compute it in one pass instead of one pass per tap.
    """
    k = len(taps)
    if k < 2 or n_in != n_out * k:
        return 0
    for j, tap in enumerate(taps):
        src = tap.src
        if tap.rows is not None or not isinstance(src, slice) or src.start != j or (n_out > 1 and src.step != k):
            return 0
        if tap.weights is None or not bool((tap.weights == 1.0 / k).all()):
            return 0
    return k


def _index(positions: np.ndarray) -> np.ndarray | slice:
    """A slice where the positions step evenly (a view, and no gather), else the read-only array."""
    if positions.size > 1:
        steps = np.diff(positions)
        if steps[0] > 0 and bool((steps == steps[0]).all()):
            return slice(int(positions[0]), int(positions[-1]) + 1, int(steps[0]))
    elif positions.size == 1:
        return slice(int(positions[0]), int(positions[0]) + 1)
    return _frozen(positions)


def _frozen(array: np.ndarray) -> np.ndarray:
    """Mark an array of a cached map read-only, so no caller can change the cache by accident."""
    array.flags.writeable = False
    return array


class AxisResample(Function):
    """Apply an :class:`AxisMap` along one axis (interpolation, adaptive average pooling)."""

    def __init__(self, mapping: AxisMap, axis: int) -> None:
        self.mapping, self.axis = mapping, axis

    def forward(self, x: Any) -> Any:
        return self.mapping.apply(x, self.axis)

    def backward(self, gy: Tensor) -> Tensor:
        return AxisResample(self.mapping.transposed, self.axis)(gy)


def resample(x: Tensor, maps: dict[int, AxisMap]) -> Tensor:
    """``x`` with each axis in ``maps`` mapped by its :class:`AxisMap` (differentiable to any order).

    The axes are mapped one after the other, in the order that costs the least.
    """
    for axis, mapping in maps.items():
        if x.shape[axis] != mapping.n_in:
            raise ValueError(f"resample: axis {axis} of shape {x.shape} has length {x.shape[axis]}, "
                             f"but its map reads {mapping.n_in} positions")
    for axis in _cheapest_order(x.shape, maps):
        x = AxisResample(maps[axis], axis)(x)
    return x


# A gather along the last axis moves one element at a time, along any other axis whole rows, which
# makes it several times dearer per element written.
_LAST_AXIS_GATHER_COST = 3


def _pass_cost(mapping: AxisMap, size_in: int, size_out: int, last: bool) -> float:
    """The relative cost of one pass: the elements it writes (and copies, for a GEMM off the last axis)."""
    if mapping.dense_when_finite:  # a GEMM along another axis first copies its input transposed
        return size_out + (0 if last else size_in)
    return size_out * (_LAST_AXIS_GATHER_COST if last else 1)


def _cheapest_order(shape: tuple[int, ...], maps: dict[int, AxisMap]) -> tuple[int, ...]:
    """The order of the axes in ``maps`` whose passes cost the least (see :func:`_pass_cost`)."""
    def cost(order: tuple[int, ...]) -> float:
        current, total = list(shape), 0.0
        for axis in order:
            size_in = math.prod(current)
            current[axis] = maps[axis].n_out
            total += _pass_cost(maps[axis], size_in, math.prod(current), axis == len(shape) - 1)
        return total

    return min(itertools.permutations(maps), key=cost)
