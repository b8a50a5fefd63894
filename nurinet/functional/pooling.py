"""Pooling: max and average (1-D, 2-D), adaptive average and max, and global pooling.

Max and average pooling read the padded input through strided views, one per
kernel offset (a loop over the ``kh * kw`` offsets of the window, never over
pixels or samples): average pooling adds the views, max pooling keeps a running
maximum and the offset where it was first reached, so ties go to the first
element of the window, as in PyTorch (a NaN is its window's maximum, the first
NaN wins). That offset in the window (uint8 up to 256 taps) is the one record of
where each maximum was, in every path, native and threaded ones included
(:mod:`nurinet._runtime.fast.pooling`); the flat index in the input's ``H * W``
plane is derived from it when needed (``return_indices``, and the backward, which
routes each output gradient there: a plain assignment when the windows do not
overlap, a ``bincount`` when they may). Adaptive average pooling averages each
bin along one spatial axis, then the other (:mod:`nurinet.functional.resample`):
a NaN or an infinity reaches only the outputs whose bins hold it.

With dilation a max-pool window can miss the input altogether: under PyTorch's
padding bound (at most kernel_size // 2) that takes kernel 2, padding 1 and
dilation = size + 1 on some axis (one tap in each padding), and then every window
does. As in PyTorch its value is -inf and its index is where PyTorch's search
starts (the first tap at or after position 0, past the input); unlike PyTorch's
CPU kernel, whose backward then writes out of bounds, it passes no gradient back.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from nurinet._runtime.fast import pooling as fast_pooling
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional import reduction as rd
from nurinet.functional._im2col import pad_array
from nurinet.functional._util import xp_of
from nurinet.functional.conv import _tuple
from nurinet.functional.indexing import PutAlongAxis
from nurinet.functional.resample import AxisMap, resample
from nurinet.functional.shape import reshape, squeeze, unsqueeze

# ----- window geometry -----

def _pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's output length; with ceil_mode the last window must start inside the input or left padding."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _offsets(kernel: tuple[int, int], dilation: tuple[int, int], stride: tuple[int, int],
             out: tuple[int, int]) -> list[tuple[slice, slice]]:
    """For each kernel offset (row-major), the strided slice of the padded input it sees."""
    (kh, kw), (dh, dw), (sh, sw), (ho, wo) = kernel, dilation, stride, out
    return [(slice(i * dh, i * dh + sh * (ho - 1) + 1, sh), slice(j * dw, j * dw + sw * (wo - 1) + 1, sw))
            for i in range(kh) for j in range(kw)]


class _Pool2d(Function):
    """Shared state of max and average pooling: the window geometry of one input shape."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 dilation: tuple[int, int], ceil_mode: bool) -> None:
        self.kernel, self.stride, self.padding, self.dilation = kernel, stride, padding, dilation
        self.ceil_mode = ceil_mode

    def _geometry(self, hw: tuple[int, int]) -> tuple[tuple[int, int], Any]:
        """Output size and the ``((top, bottom), (left, right))`` padding that covers every window."""
        out = tuple(_pool_out(n, k, s, p, d, self.ceil_mode)
                    for n, k, s, p, d in zip(hw, self.kernel, self.stride, self.padding, self.dilation))
        pads = tuple((p, max(p, (o - 1) * s + d * (k - 1) + 1 - n - p))
                     for n, k, s, p, d, o in zip(hw, self.kernel, self.stride, self.padding, self.dilation, out))
        return out, pads


class MaxPool2d(_Pool2d):
    """Max pooling over ``(N, C, H, W)``.

    Where each maximum was is kept one way, forward and backward: :attr:`arg`, per output the
    row-major offset ``i * kw + j`` in its window of the window's first maximum (uint8 for windows
    of at most 256 taps). The flat indices in the input's ``H * W`` plane that ``return_indices``
    and the Tensor-mode backward need are derived from it on first use (:attr:`indices`).

    Disjoint windows (stride = kernel, no padding or dilation: the usual 2x2 pool) first try the
    native or threaded routines of :mod:`nurinet._runtime.fast.pooling`, forward and backward.

    backward_arrays: the CNN and conv benchmarks.
    """

    arg: Any = None  # (N, C, Ho, Wo): each window's offset of its first maximum
    _indices: Any = None
    _empty: Any = None  # (Ho, Wo) bool: windows with no input element, or None when there are none

    @property
    def indices(self) -> Any:
        """Each maximum's flat index in the input's ``H * W`` plane (int64, computed on first use)."""
        if self._indices is None:
            self._indices = self._flat_index(self.arg)
        return self._indices

    def forward(self, x: Any) -> Any:
        self._x_shape = x.shape
        out, self._pads = self._geometry(x.shape[2:])
        found = fast_pooling.max_pool_blocks(x, self.kernel) if self._disjoint() else None
        best, self.arg = found if found is not None else self._search(x, out)
        return best

    def _search(self, x: Any, out: tuple[int, int]) -> tuple[Any, Any]:
        """Each window's maximum and its offset, by a running maximum over the padded input's views."""
        views = _offsets(self.kernel, self.dilation, self.stride, out)
        best, arg = _running_max(pad_array(x, self._pads, -math.inf), views)
        if any(self.padding):  # without padding every window starts on an input element
            first, self._empty = _search_starts(x.shape[2:], self.kernel, self.stride, self.padding,
                                                self.dilation, out)
            arg = _start_lost(arg, best, first)
        return best, arg

    def _flat_index(self, arg: Any) -> Any:
        """Window offset of the maximum -> its index in the input's ``H * W`` plane."""
        xp = xp_of(arg)
        arg = arg.astype(np.int64)  # uint8 arithmetic would wrap
        kw, (dh, dw), (sh, sw), pads = self.kernel[1], self.dilation, self.stride, self._pads
        ho, wo = arg.shape[2:]
        row = xp.arange(ho).reshape(ho, 1) * sh - pads[0][0] + (arg // kw) * dh
        col = xp.arange(wo) * sw - pads[1][0] + (arg % kw) * dw
        return row * self._x_shape[3] + col

    def backward(self, gy: Tensor) -> Tensor:
        n, c, h, w = self.inputs[0].shape
        indices = self.indices
        if self._empty is not None:
            indices, gy = self._drop_empty(indices), gy * _keep_mask(self._empty, gy.dtype, xp_of(indices))
        flat = PutAlongAxis(indices.reshape(n, c, -1), 2, (n, c, h * w))(reshape(gy, (n, c, -1)))
        return reshape(flat, (n, c, h, w))

    def backward_arrays(self, gy: Any) -> Any:
        gx = fast_pooling.max_pool_blocks_backward(gy, self.arg, self.kernel, self._x_shape) if self._disjoint() else None
        if gx is not None:
            return gx
        if self._empty is not None:  # zeroed gradients sent to index 0 must add, not overwrite
            gy = gy * _keep_mask(self._empty, gy.dtype, xp_of(gy))
            return scatter_max(gy, self._drop_empty(self.indices), self._x_shape, True)
        return scatter_max(gy, self.indices, self._x_shape, self._overlaps())

    def _drop_empty(self, indices: Any) -> Any:
        """Indices with those of windows that miss the input (possibly out of range) set to 0."""
        xp = xp_of(indices)
        return xp.where(xp.asarray(self._empty), 0, indices)

    def _disjoint(self) -> bool:
        """Windows tile the input without overlap or padding (and ceil_mode adds no partial window)."""
        return (self.stride == self.kernel and not any(self.padding) and self.dilation == (1, 1)
                and not self.ceil_mode)

    def _overlaps(self) -> bool:
        return any(s < d * (k - 1) + 1 for k, s, d in zip(self.kernel, self.stride, self.dilation))


def _offset_dtype(taps: int) -> Any:
    """The dtype of a window offset: uint8 where it fits (the native kernels take it), else int64."""
    return np.uint8 if taps <= fast_pooling.MAX_TAPS else np.int64


def _first_taps(n: int, k: int, s: int, p: int, d: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Along one axis, per output: the first kernel tap at or after position 0, and whether it is inside.

    PyTorch starts each window's search for the maximum at that tap; a window whose first such tap
    lies past the input (or past its last tap) holds padding only.
    """
    start = np.arange(out) * s - p
    tap = np.maximum(d - 1 - start, 0) // d  # ceil(-start / d) for windows starting in the padding
    return tap, (tap < k) & (start + tap * d < n)


@lru_cache(maxsize=256)
def _search_starts(hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                   dilation: tuple[int, int], out: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Per window: the row-major kernel offset of its first tap at or after (0, 0) on both axes, and
    the (Ho, Wo) mask of the windows with no input element (None when every window has one)."""
    (th, inh), (tw, inw) = (_first_taps(*args) for args in zip(hw, kernel, stride, padding, dilation, out))
    empty = ~(inh[:, None] & inw[None, :])
    return _frozen(th[:, None] * kernel[1] + tw[None, :]), (_frozen(empty) if empty.any() else None)


def _keep_mask(empty: np.ndarray, dtype: Any, xp: Any) -> Any:
    """1 for the windows that hold an input element, 0 for the empty ones (where a -inf came from)."""
    return xp.asarray(~empty, dtype=dtype)


def _running_max(xpad: Any, views: list[tuple[slice, slice]]) -> tuple[Any, Any]:
    """Each window's maximum over the strided views of the padded input, and the offset of its first.

    A window holding a NaN has maximum NaN, at its first NaN (as in PyTorch): ``v > best`` alone is
    False for every NaN, which would silently skip them.
    """
    xp = xp_of(xpad)
    best = xpad[(Ellipsis, *views[0])].copy()
    arg = xp.zeros(best.shape, dtype=_offset_dtype(len(views)))
    has_nan = bool(xp.isnan(xpad).any())  # one pass, so that NaN-free input pays no more per view
    for k, (rows, cols) in enumerate(views[1:], start=1):
        v = xpad[..., rows, cols]
        bigger = v > best  # strict: ties keep the first maximum
        if has_nan:
            bigger |= xp.isnan(v) & ~xp.isnan(best)  # a first NaN takes the window; a later one does not
        xp.copyto(best, v, where=bigger)
        arg[bigger] = k
    return best, arg


def _start_lost(arg: Any, best: Any, first: np.ndarray) -> Any:
    """Windows whose maximum is -inf take the offset ``first`` where PyTorch's search starts.

    Nothing beat the -inf that PyTorch starts from, so its index stays at the first tap at or after
    position 0 on each axis, while ``arg`` is still offset 0, which may be a padded position.
    """
    xp = xp_of(arg)
    lost = best == -math.inf
    return xp.where(lost, xp.asarray(first), arg).astype(arg.dtype) if lost.any() else arg


def scatter_max(gy: Any, indices: Any, x_shape: tuple[int, ...], overlap: bool) -> Any:
    """Zeros of ``x_shape`` with each ``gy`` added at its ``indices`` (flat in the ``H * W`` plane)."""
    xp = xp_of(gy)
    n, c, h, w = x_shape
    planes = xp.arange(n * c).reshape(n, c, 1, 1) * (h * w)
    flat = (indices + planes).ravel()
    if overlap:  # one input may be the maximum of several windows: accumulate
        gx = xp.bincount(flat, weights=gy.ravel(), minlength=n * c * h * w).astype(gy.dtype, copy=False)
        return gx.reshape(x_shape)
    gx = xp.zeros(n * c * h * w, dtype=gy.dtype)
    gx[flat] = gy.ravel()  # windows are disjoint: each input is hit at most once
    return gx.reshape(x_shape)


class AvgPool2d(_Pool2d):
    """Average pooling over ``(N, C, H, W)`` (PyTorch's divisor rules for padding and ceil_mode).

    backward_arrays: common layer, no benchmark runs it yet: average pooling.
    """

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 ceil_mode: bool, count_include_pad: bool) -> None:
        super().__init__(kernel, stride, padding, (1, 1), ceil_mode)
        self.count_include_pad = count_include_pad

    def forward(self, x: Any) -> Any:
        out, pads = self._geometry(x.shape[2:])
        xpad = pad_array(x, pads)
        views = _offsets(self.kernel, self.dilation, self.stride, out)
        total = xpad[(Ellipsis, *views[0])].copy()
        for rows, cols in views[1:]:
            total += xpad[..., rows, cols]
        total /= self._divisor(x.shape[2:], x.dtype, xp_of(x))
        return total

    def _divisor(self, hw: tuple[int, int], dtype: Any, xp: Any) -> Any:
        div = _avg_divisor(tuple(hw), self.kernel, self.stride, self.padding, self.ceil_mode,
                           self.count_include_pad)
        return xp.asarray(div, dtype=dtype)

    def _args(self) -> tuple[Any, ...]:
        return self.kernel, self.stride, self.padding, self.ceil_mode, self.count_include_pad

    def backward(self, gy: Tensor) -> Tensor:
        return AvgPool2dAdjoint(*self._args(), hw=self.inputs[0].shape[2:])(gy)

    def backward_arrays(self, gy: Any) -> Any:
        return _avg_adjoint(self, gy, self.inputs[0].shape[2:])


def _avg_adjoint(pool: _Pool2d, gy: Any, hw: tuple[int, int]) -> Any:
    """The transpose of average pooling: spread each ``gy / divisor`` over its window."""
    xp = xp_of(gy)
    out, pads = pool._geometry(hw)
    g = gy / pool._divisor(hw, gy.dtype, xp)
    n, c = gy.shape[:2]
    gxpad = xp.zeros((n, c, hw[0] + sum(pads[0]), hw[1] + sum(pads[1])), dtype=gy.dtype)
    for rows, cols in _offsets(pool.kernel, pool.dilation, pool.stride, out):
        gxpad[..., rows, cols] += g
    return xp.ascontiguousarray(gxpad[..., pads[0][0] : pads[0][0] + hw[0], pads[1][0] : pads[1][0] + hw[1]])


class AvgPool2dAdjoint(AvgPool2d):
    """The transpose of :class:`AvgPool2d` (its backward) back to spatial size ``hw``; linear, so its
    backward is average pooling again."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 ceil_mode: bool, count_include_pad: bool, hw: tuple[int, int]) -> None:
        super().__init__(kernel, stride, padding, ceil_mode, count_include_pad)
        self.hw = tuple(hw)

    def forward(self, gy: Any) -> Any:
        return _avg_adjoint(self, gy, self.hw)

    def backward(self, g: Tensor) -> Tensor:
        return AvgPool2d(*self._args())(g)

    backward_arrays = None


@lru_cache(maxsize=256)
def _avg_divisor(hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                 ceil_mode: bool, count_include_pad: bool) -> np.ndarray:
    """The (Ho, Wo) window sizes average pooling divides by (cached per shape)."""
    sizes = []
    for n, k, s, p in zip(hw, kernel, stride, padding):
        start = np.arange(_pool_out(n, k, s, p, 1, ceil_mode)) * s - p
        end = np.minimum(start + k, n + p)  # windows stop at the padded edge
        if count_include_pad:
            sizes.append(end - start)
        else:
            sizes.append(np.minimum(end, n) - np.maximum(start, 0))
    return _frozen(np.outer(sizes[0], sizes[1]).astype(np.float64))


def _frozen(array: np.ndarray) -> np.ndarray:
    """Mark a cached array read-only, so no caller can change the cache by accident."""
    array.flags.writeable = False
    return array


# ----- adaptive pooling -----

def _bins(n: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive bins: start = floor(i * n / out), end = ceil((i + 1) * n / out)."""
    i = np.arange(out)
    return (i * n) // out, -((-(i + 1) * n) // out)


@lru_cache(maxsize=256)
def _averaging_map(n: int, out: int) -> AxisMap:
    """Output i reads the members of bin i, each with weight 1 / (the bin's size)."""
    start, end = _bins(n, out)
    sizes = end - start
    rows = np.repeat(np.arange(out), sizes)
    members = np.concatenate([np.arange(a, b) for a, b in zip(start, end)])
    return AxisMap(n, out, rows, members, 1.0 / sizes[rows])


class AdaptiveMaxPool2d(MaxPool2d):
    """Adaptive max pooling to ``out_hw``; bins may overlap and differ in size.

    :attr:`arg` is the offset in the ``(kh, kw)`` grid of the largest bin (shorter bins repeat their
    last index there), so the flat indices come from the bins' index tables.
    """

    def __init__(self, out_hw: tuple[int, int]) -> None:
        self.out_hw = out_hw

    def forward(self, x: Any) -> Any:
        xp = xp_of(x)
        (h, w), (oh, ow) = x.shape[2:], self.out_hw
        ih, iw = (xp.asarray(a) for a in (_bin_index(h, oh), _bin_index(w, ow)))
        kh, kw = ih.shape[1], iw.shape[1]
        win = x[:, :, ih[:, :, None, None], iw[None, None, :, :]]  # (N, C, oh, kh, ow, kw)
        win = win.transpose(0, 1, 2, 4, 3, 5).reshape(*x.shape[:2], oh, ow, kh * kw)
        arg = win.argmax(axis=-1)  # the first maximum among ties, the first NaN if any
        self._x_shape, self._bin_rows, self._bin_cols = x.shape, ih, iw
        self.arg = arg.astype(_offset_dtype(kh * kw))
        return xp.take_along_axis(win, arg[..., None], axis=-1)[..., 0]

    def _flat_index(self, arg: Any) -> Any:
        xp, kw = xp_of(arg), self._bin_cols.shape[1]
        arg = arg.astype(np.int64)
        (oh, ow), w = arg.shape[2:], self._x_shape[3]
        ho_idx, wo_idx = xp.arange(oh).reshape(oh, 1), xp.arange(ow)
        return self._bin_rows[ho_idx, arg // kw] * w + self._bin_cols[wo_idx, arg % kw]

    def _disjoint(self) -> bool:
        return False

    def _overlaps(self) -> bool:
        return True


@lru_cache(maxsize=256)
def _bin_index(n: int, out: int) -> np.ndarray:
    """(out, largest bin) indices of each bin; short bins repeat their last index (harmless for a max)."""
    start, end = _bins(n, out)
    width = int((end - start).max())
    return _frozen(np.minimum(start[:, None] + np.arange(width), end[:, None] - 1))


# ----- argument handling and wrappers -----

def _check_input(x: Tensor, ndim: int, op: str) -> None:
    if x.ndim != ndim:
        layout = "(N, C, L)" if ndim == 3 else "(N, C, H, W)"
        raise ValueError(f"{op}: expected a {ndim}-D input {layout}, got shape {x.shape}")


def _pool_args(kernel_size: Any, stride: Any, padding: Any, dilation: Any, n: int, op: str) -> tuple[Any, ...]:
    kernel = _tuple(kernel_size, n, "kernel_size", op)
    stride = kernel if stride is None else _tuple(stride, n, "stride", op)
    padding = _tuple(padding, n, "padding", op, minimum=0)
    dilation = None if dilation is None else _tuple(dilation, n, "dilation", op)  # None: average pooling
    _check_padding(kernel, padding, dilation, op)
    return kernel, stride, padding, dilation


def _check_padding(kernel: tuple[int, ...], padding: tuple[int, ...], dilation: tuple[int, ...] | None,
                   op: str) -> None:
    """PyTorch's bound: padding <= kernel_size // 2 on each axis, whatever the dilation.

    PyTorch checks the dilated (effective) size too, but the plain kernel size is the stricter bound.
    """
    limit = tuple(k // 2 for k in kernel)
    if all(p <= m for p, m in zip(padding, limit)):
        return
    if dilation is None:  # average pooling: no dilation to explain
        rule = "kernel_size // 2, as in PyTorch"
    else:
        rule = f"kernel_size // 2, as in PyTorch; dilation {_show(dilation)} does not raise the bound"
    raise ValueError(f"{op}: padding {_show(padding)} must be at most half the kernel size {_show(kernel)}, "
                     f"i.e. at most {_show(limit)} ({rule}); lower the padding or enlarge the kernel")


def _show(values: tuple[int, ...]) -> Any:
    """A 1-D op's argument as the int its caller passed, a 2-D op's as the pair."""
    return values[0] if len(values) == 1 else values


def _check_out(x: Tensor, fn: _Pool2d, op: str) -> None:
    out, _ = fn._geometry(x.shape[2:])
    if min(out) < 1:
        raise ValueError(f"{op}: input of spatial size {x.shape[2:]} is smaller than the kernel {fn.kernel} "
                         f"(dilation {fn.dilation}, padding {fn.padding}); the output would be empty")


def _max_pool(x: Tensor, fn: MaxPool2d, op: str, return_indices: bool) -> Any:
    _check_out(x, fn, op)
    y = fn(x)
    return (y, Tensor(fn.indices)) if return_indices else y


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """2-D max pooling of ``(N, C, H, W)``; padding counts as -inf. ``stride`` defaults to the kernel size.

    With ``return_indices`` also returns each maximum's flat index in the input's ``H * W`` plane (int64).
    """
    x = as_tensor(x)
    _check_input(x, 4, "max_pool2d")
    fn = MaxPool2d(*_pool_args(kernel_size, stride, padding, dilation, 2, "max_pool2d"), bool(ceil_mode))
    return _max_pool(x, fn, "max_pool2d", return_indices)


def max_pool1d(x: Any, kernel_size: int, stride: Any = None, padding: int = 0, dilation: int = 1,
               ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """1-D max pooling of ``(N, C, L)`` (max_pool2d on a unit height); indices are positions in ``L``."""
    x = as_tensor(x)
    _check_input(x, 3, "max_pool1d")
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation, 1, "max_pool1d")
    fn = MaxPool2d((1, *k), (1, *s), (0, *p), (1, *d), bool(ceil_mode))
    out = _max_pool(unsqueeze(x, 2), fn, "max_pool1d", return_indices)
    if return_indices:
        return squeeze(out[0], 2), Tensor(out[1].array[:, :, 0])
    return squeeze(out, 2)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """2-D average pooling of ``(N, C, H, W)``; padded zeros count in the divisor when ``count_include_pad``."""
    x = as_tensor(x)
    _check_input(x, 4, "avg_pool2d")
    k, s, p, _ = _pool_args(kernel_size, stride, padding, None, 2, "avg_pool2d")
    fn = AvgPool2d(k, s, p, bool(ceil_mode), bool(count_include_pad))
    _check_out(x, fn, "avg_pool2d")
    return fn(x)


def avg_pool1d(x: Any, kernel_size: int, stride: Any = None, padding: int = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling of ``(N, C, L)`` (avg_pool2d on a unit height)."""
    x = as_tensor(x)
    _check_input(x, 3, "avg_pool1d")
    k, s, p, _ = _pool_args(kernel_size, stride, padding, None, 1, "avg_pool1d")
    fn = AvgPool2d((1, *k), (1, *s), (0, *p), bool(ceil_mode), bool(count_include_pad))
    x4 = unsqueeze(x, 2)
    _check_out(x4, fn, "avg_pool1d")
    return squeeze(fn(x4), 2)


def _output_size(output_size: Any, hw: tuple[int, int], op: str) -> tuple[int, int]:
    """An int, a pair, or a pair with ``None`` meaning "keep the input's size"."""
    sizes = (output_size,) * 2 if isinstance(output_size, int) or output_size is None else tuple(output_size)
    sizes = tuple(n if s is None else s for s, n in zip(sizes, hw))
    return _tuple(sizes, 2, "output_size", op)


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Tensor:
    """Average over PyTorch's adaptive bins to a ``(N, C, *output_size)`` output."""
    x = as_tensor(x)
    _check_input(x, 4, "adaptive_avg_pool2d")
    oh, ow = _output_size(output_size, x.shape[2:], "adaptive_avg_pool2d")
    # Never a plain product with an averaging matrix: that multiplied every pixel by the zeros of the
    # other bins' rows, and one NaN or inf made its whole channel NaN (see functional/resample.py).
    return resample(x, {2: _averaging_map(x.shape[2], oh), 3: _averaging_map(x.shape[3], ow)})


def adaptive_max_pool2d(x: Any, output_size: Any, return_indices: bool = False) -> Any:
    """Maximum over PyTorch's adaptive bins to a ``(N, C, *output_size)`` output (indices as max_pool2d)."""
    x = as_tensor(x)
    _check_input(x, 4, "adaptive_max_pool2d")
    fn = AdaptiveMaxPool2d(_output_size(output_size, x.shape[2:], "adaptive_max_pool2d"))
    y = fn(x)
    return (y, Tensor(fn.indices)) if return_indices else y


def global_avg_pool2d(x: Any, keepdims: bool = False) -> Tensor:
    """Mean over H and W: ``(N, C, H, W) -> (N, C)`` (``(N, C, 1, 1)`` with ``keepdims``)."""
    x = as_tensor(x)
    _check_input(x, 4, "global_avg_pool2d")
    return rd.mean(x, axis=(2, 3), keepdims=keepdims)


def global_max_pool2d(x: Any, keepdims: bool = False) -> Tensor:
    """Maximum over H and W: ``(N, C, H, W) -> (N, C)`` (``(N, C, 1, 1)`` with ``keepdims``)."""
    x = as_tensor(x)
    _check_input(x, 4, "global_max_pool2d")
    y = adaptive_max_pool2d(x, 1)
    return y if keepdims else reshape(y, x.shape[:2])
