"""Max pooling over disjoint windows (stride = kernel, no padding or dilation, floor mode): the usual 2x2.

Both routines keep max pooling's one record of where each maximum was: per output, the row-major
offset of its window's first maximum (``i * kw + j`` for the tap at row ``i``, column ``j``), as
uint8. A NaN is its window's maximum and the first NaN wins; among equal values the first wins, as
in PyTorch. The native kernels run float32 C-contiguous NumPy arrays; other NumPy arrays run the
NumPy code below (one pass per tap over strided views, a fused formulation: ``settings.FUSED_PATHS``),
their samples split over threads when large. The op (:mod:`nurinet.functional.pooling`) has the
reference code, over windows of any shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet._runtime import native, parallel, settings

__all__ = ["MAX_TAPS", "max_pool_blocks", "max_pool_blocks_backward"]

MAX_TAPS = 256  # a window offset is a uint8


def max_pool_blocks(x: Any, kernel: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Each disjoint window's maximum and its uint8 offset, or None where no fast path applies.

    Args:
        x: The ``(N, C, H, W)`` input; a partial last row or column of windows is dropped.
        kernel: ``(kh, kw)``, which is also the stride.

    Returns:
        ``(best, arg)``, both ``(N, C, H // kh, W // kw)``, or None (CuPy, an empty input, more
        than :data:`MAX_TAPS` taps, ``settings.FUSED_PATHS`` off).
    """
    if not _applies(x, kernel):
        return None
    (kh, kw), (n, c, h, w) = kernel, x.shape
    best = np.empty((n, c, h // kh, w // kw), dtype=x.dtype)
    arg = np.empty(best.shape, dtype=np.uint8)
    lib = native.for_arrays(x, min_size=1)
    if lib is not None:
        _native_forward(lib, x, kernel, best, arg)
    else:  # samples split over threads when large, else inline
        parallel.split(lambda xs, bs, args: _max_blocks(xs, kernel, bs, args), x, best, arg, size=x.size)
    return best, arg


def max_pool_blocks_backward(gy: Any, arg: Any, kernel: tuple[int, int],
                             x_shape: tuple[int, ...]) -> np.ndarray | None:
    """The input gradient of :func:`max_pool_blocks`: each ``gy`` at its window's first maximum, zeros
    elsewhere; or None where the forward's routine would not apply (then the op scatters ``gy``).

    Args:
        gy: The ``(N, C, Ho, Wo)`` output gradient.
        arg: The uint8 window offsets the forward found.
        kernel: ``(kh, kw)``, which is also the stride.
        x_shape: The input's shape.
    """
    if not _applies(gy, kernel) or arg.dtype != np.uint8:
        return None
    lib = native.for_arrays(gy, min_size=1, contiguous=False)
    if lib is not None:
        gx = np.empty(x_shape, dtype=np.float32)
        _native_backward(lib, gy, arg, kernel, gx)
        return gx
    (kh, kw), (h, w) = kernel, x_shape[2:]
    covered = gy.shape[2] * kh == h and gy.shape[3] * kw == w
    gx = (np.empty if covered else np.zeros)(x_shape, dtype=gy.dtype)  # rows no window covers stay 0
    parallel.split(lambda gys, args, gxs: _route_blocks(gys, args, kernel, gxs), gy, arg, gx, size=gx.size)
    return gx


def _applies(array: Any, kernel: tuple[int, int]) -> bool:
    return (settings.FUSED_PATHS and type(array) is np.ndarray and array.size > 0
            and kernel[0] * kernel[1] <= MAX_TAPS)


def _native_forward(lib: Any, x: np.ndarray, kernel: tuple[int, int], best: np.ndarray, arg: np.ndarray) -> None:
    """One pass per plane in C, planes split over threads."""
    (kh, kw), (n, c, h, w) = kernel, x.shape
    plane_in, plane_out = h * w, best.shape[2] * best.shape[3]

    def run(a: int, b: int) -> None:
        lib.maxpool2d_blocks_forward(b - a, h, w, kh, kw, x.ctypes.data + 4 * a * plane_in,
                                     best.ctypes.data + 4 * a * plane_out, arg.ctypes.data + a * plane_out)

    parallel.over_ranges(run, n * c, x.size)


def _native_backward(lib: Any, gy: np.ndarray, arg: np.ndarray, kernel: tuple[int, int], gx: np.ndarray) -> None:
    (kh, kw), (n, c, h, w) = kernel, gx.shape
    gy, arg = np.ascontiguousarray(gy), np.ascontiguousarray(arg)
    plane_in, plane_out = h * w, gy.shape[2] * gy.shape[3]

    def run(a: int, b: int) -> None:
        lib.maxpool2d_blocks_backward(b - a, h, w, kh, kw, gy.ctypes.data + 4 * a * plane_out,
                                      arg.ctypes.data + a * plane_out, gx.ctypes.data + 4 * a * plane_in)

    parallel.over_ranges(run, n * c, gx.size)


def _block_views(x: np.ndarray, kernel: tuple[int, int]) -> list[np.ndarray]:
    """The ``(N, C, Ho, Wo)`` strided view of each kernel tap (row-major) of the disjoint windows."""
    (kh, kw), (h, w) = kernel, x.shape[2:]
    rows, cols = h // kh * kh, w // kw * kw  # floor mode: a partial last window is dropped
    return [x[:, :, i:rows:kh, j:cols:kw] for i in range(kh) for j in range(kw)]


def _max_blocks(x: np.ndarray, kernel: tuple[int, int], best: np.ndarray, arg: np.ndarray) -> None:
    """Write the window maxima of ``x`` into ``best`` and their first offsets into ``arg``."""
    # One np.maximum per tap over strided views; max(axis=(3, 5)) of the 6-D reshape is far slower.
    views = _block_views(x, kernel)
    best[...] = views[0]
    for v in views[1:]:
        np.maximum(best, v, out=best)  # NaN propagates: a NaN window's maximum is NaN
    has_nan = bool(np.isnan(best).any())
    # The first hit's offset is (taps - 1) minus the number of taps before the last one after which
    # a hit was seen: counts and ORs of booleans, where writing k under a mask (copyto's where=)
    # would be a slow masked loop.
    seen, hit = np.zeros(best.shape, dtype=bool), np.empty(best.shape, dtype=bool)
    arg[...] = 0
    for v in views[:-1]:
        np.equal(v, best, out=hit)
        if has_nan:
            hit |= np.isnan(v)  # only NaN windows have NaN taps
        seen |= hit
        arg += seen
    np.subtract(len(views) - 1, arg, out=arg)


def _route_blocks(gy: np.ndarray, arg: np.ndarray, kernel: tuple[int, int], gx: np.ndarray) -> None:
    """``gx`` at each window's first maximum gets the window's ``gy``, 0 at its other taps."""
    for k, view in enumerate(_block_views(gx, kernel)):
        np.multiply(arg == k, gy, out=view)
