"""Stride-1 2-D convolutions on NumPy arrays: the wide-row path, chunk by chunk, on threads.

Each routine returns None where it does not apply (CuPy, another stride, negative padding, an empty
input, ``settings.FUSED_PATHS`` off); the op (:mod:`nurinet.functional.conv`) then runs im2col and
one GEMM per group. Here the samples go in cache-sized chunks (:mod:`.conv_wide`), and the chunks
are split between threads, each running whole chunks (copies, its own one-thread matrix products,
adds). Layers with at most ``settings.CONV_DIRECT_MAX_TAPS`` input taps (in_channels * kh * kw)
run the native direct convolution instead: a 1-channel 3x3 layer's product has an inner dimension
of 9, far below the BLAS's speed, and its column matrix is nine copies of the input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from nurinet._runtime import buffers, conv_arrays, gemm, native, parallel, settings
from nurinet._runtime.fast import conv_wide
from nurinet._runtime.fast.conv_wide import Wide

__all__ = ["ConvGeometry", "conv2d_backward", "conv2d_forward"]


class ConvGeometry(Protocol):
    """What the routines read of the op's geometry (:class:`nurinet.functional._im2col.Geometry`)."""

    stride: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))
    dilation: tuple[int, int]
    groups: int


def conv2d_forward(x: Any, w: Any, b: Any, geom: ConvGeometry) -> Any | None:
    """``conv2d(x, w) + b`` on the wide rows (or the native direct convolution); keeps no column matrix.

    Args:
        x: The ``(N, C, H, W)`` input.
        w: The ``(O, C / groups, kh, kw)`` weight.
        b: The ``(O,)`` bias, or None.
        geom: The convolution's stride, padding, dilation and groups.

    Returns:
        The ``(N, O, Ho, Wo)`` output, or None where the routine does not apply.
    """
    if not _applies(x, w, geom):
        return None
    lay = conv_wide.layout(x.shape, w.shape[2:], geom.padding, geom.dilation)
    lib = _direct_lib(x, w, geom)
    if lib is not None and (b is None or b.dtype == np.float32):
        return _direct_forward(lib, x, w, b, geom, lay)
    return _forward_chunks(x, w, b, geom, lay)


def conv2d_backward(gy: Any, x: Any, w: Any, geom: ConvGeometry, needs_x: bool,
                    needs_w: bool) -> tuple[Any, Any, Any] | None:
    """The input, weight and bias gradients of :func:`conv2d_forward`.

    Args:
        gy: The gradient of the output.
        x: The input.
        w: The weight.
        geom: The convolution's geometry.
        needs_x: Whether the input gradient is wanted.
        needs_w: Whether the weight gradient is wanted.

    Returns:
        ``(gx, gw, gb)``, ``gx`` and ``gw`` None where not wanted, or None where the routine does not
        apply. That includes an input gradient with weights that are not all finite: the junk columns
        of the wide rows hold a zero gradient, which the input gradient multiplies by the weights and
        adds into real positions, harmless while they are finite, but ``0 * inf`` is NaN. (The weight
        gradient has the same flaw with the input's values; the op repairs that afterwards.)
    """
    if not _applies(x, w, geom) or (needs_x and not bool(np.isfinite(w).all())):
        return None
    lay = conv_wide.layout(x.shape, w.shape[2:], geom.padding, geom.dilation)
    lib = _direct_lib(x, w, geom)
    if lib is not None and not needs_x:
        gw, gb = _direct_weight_grad(lib, gy, x, w, geom, lay)
        return None, (gw if needs_w else None), gb
    return _backward_chunks(gy, x, w, geom, lay, needs_x, needs_w)


def _applies(x: Any, w: Any, geom: ConvGeometry) -> bool:
    return (settings.FUSED_PATHS and geom.stride == (1, 1) and type(x) is np.ndarray and type(w) is np.ndarray
            and x.size > 0 and min(p for pair in geom.padding for p in pair) >= 0)


def _forward_chunks(x: Any, w: Any, b: Any, geom: ConvGeometry, lay: Wide) -> Any:
    xflat = conv_arrays.pad_array(x, geom.padding).reshape(x.shape[0], lay.c, lay.hp * lay.wp)
    o, n = w.shape[0], x.shape[0]
    wm = w.reshape(o, -1)
    y = np.empty((n, o, lay.ho, lay.wo), dtype=np.result_type(x, w))

    windows = _gather_windows(lay, geom.groups, w, x)

    def work(chunks: list[tuple[int, int]]) -> None:
        for n0, n1 in chunks:
            y2 = _gathered_forward(wm, xflat[n0:n1], windows, lay)
            if y2 is None:
                cols = lay.cols(xflat[n0:n1])
                y2 = conv_arrays.grouped_products(wm, cols, geom.groups, pooled=True)
                buffers.give_back(cols)
            conv_wide.outputs_into(y2, b, y[n0:n1], lay)
            buffers.give_back(y2)

    _over_chunks(work, lay.chunks(n), lay.rows * lay.length * n)
    return y


def _backward_chunks(gy: Any, x: Any, w: Any, geom: ConvGeometry, lay: Wide, needs_x: bool,
                     needs_w: bool) -> tuple[Any, Any, Any]:
    o, n, groups = w.shape[0], x.shape[0], geom.groups
    xflat = conv_arrays.pad_array(x, geom.padding).reshape(n, lay.c, lay.hp * lay.wp) if needs_w else None
    gxpad = np.empty((n, lay.c, lay.hp, lay.wp), dtype=gy.dtype) if needs_x else None
    wt = conv_arrays.transposed_weight(w, groups)
    offsets, length = lay.offsets(), lay.length
    windows = _gather_windows(lay, groups, w, x) if needs_w else None

    def work(chunks: list[tuple[int, int]]) -> tuple[Any, Any]:
        gw, gb = None, np.zeros(o, dtype=gy.dtype)
        for n0, n1 in chunks:
            g2 = conv_wide.grad_rows(np.ascontiguousarray(gy[n0:n1]), lay, gb)
            if needs_w:
                gw = _weight_grad_chunk(g2, xflat[n0:n1], windows, lay, w.shape, groups, gw)
            if needs_x:
                gcols = conv_arrays.grouped_products(wt, g2, groups, pooled=True)
                conv_wide.col2im_into(gcols, gxpad[n0:n1].reshape(n1 - n0, lay.c, -1), offsets, length)
                buffers.give_back(gcols)
            buffers.give_back(g2)
        return gw, gb

    parts = _over_chunks(work, lay.chunks(n), lay.rows * length * n)
    gw, gb = parts[0]
    for more_w, more_b in parts[1:]:
        gw = None if gw is None else gw + more_w
        gb = gb + more_b
    return _unpadded(gxpad, x.shape, geom), gw, gb


def _gather_windows(lay: Wide, groups: int, w: Any, x: Any) -> Any | None:
    """The offset table of the input's windows where the native GEMM will read them in place (one group,
    one dtype, the native provider), else None: the chunks then build column matrices."""
    if groups != 1 or w.dtype != x.dtype or not gemm.gathers():
        return None
    return lay.window_offsets()


def _gathered_forward(wm: Any, xflat: Any, windows: Any, lay: Wide) -> Any | None:
    """A chunk's wide product ``wm @ cols`` (a pooled buffer) with the columns read straight from the
    padded input ``xflat`` (nb, C, plane) by the native GEMM, or None where it does not apply (no
    ``windows``: see :func:`_gather_windows`)."""
    nb = xflat.shape[0]
    if windows is None:
        return None
    y2 = buffers.take(np, (wm.shape[0], nb * lay.length), wm.dtype)
    if gemm.gathered_products(wm, xflat, windows, y2, k=lay.rows, n=lay.length, samples=nb, a_stride=0,
                              source_stride=xflat[0].size, out_stride=lay.length, trans_b=False, accumulate=0):
        return y2
    buffers.give_back(y2)
    return None


def _weight_grad_chunk(g2: Any, xflat: Any, windows: Any, lay: Wide, w_shape: tuple[int, ...], groups: int,
                       gw: Any) -> Any:
    """``gw`` (None on a thread's first chunk) plus the chunk's weight gradient: by the native GEMM
    reading the input's windows in place where it applies, else from a rebuilt column matrix."""
    nb = xflat.shape[0]
    if windows is not None:
        out = np.empty(w_shape, g2.dtype) if gw is None else gw
        if gemm.gathered_products(g2, xflat, windows, out.reshape(w_shape[0], -1), k=lay.length, n=lay.rows,
                                  samples=nb, a_stride=lay.length, source_stride=xflat[0].size, out_stride=0,
                                  trans_b=True, accumulate=1 if gw is None else 2):
            return out
    cols = lay.cols(xflat)
    part = conv_arrays.weight_grad(g2, cols, w_shape, groups)
    buffers.give_back(cols)
    return part if gw is None else np.add(gw, part, out=gw)


def _unpadded(gxpad: Any, x_shape: tuple[int, ...], geom: ConvGeometry) -> Any:
    """The input gradient: the padded plane's gradient without its padding (None stays None)."""
    if gxpad is None:
        return None
    (pt, _), (pl, _) = geom.padding
    h, wd = x_shape[2:]
    if (h, wd) == gxpad.shape[2:]:
        return gxpad
    return np.ascontiguousarray(gxpad[:, :, pt:pt + h, pl:pl + wd])


def _over_chunks(work: Callable[[list[tuple[int, int]]], Any], chunks: list[tuple[int, int]],
                 size: int) -> list[Any]:
    """``work(chunk_list)`` on the chunks, split between threads when the job is large; the results.

    Each thread runs whole chunks, so all of a chunk's work is parallel, not only the elementwise
    part. Without a controllable OpenBLAS (whose threads would then fight the Python threads) the
    chunks run on this thread.
    """
    pieces = parallel.parts(size, len(chunks))
    if pieces > 1:
        with parallel.single_blas_thread() as single:
            if single:
                return parallel.run([lambda part=part: work(part) for part in _deal(chunks, pieces)])
    return [work(chunks)]


def _deal(chunks: list[tuple[int, int]], pieces: int) -> list[list[tuple[int, int]]]:
    """The chunks as ``pieces`` runs of consecutive chunks, as even in samples as possible."""
    return [chunks[a:b] for a, b in parallel.bounds(len(chunks), pieces)]


def _direct_lib(x: Any, w: Any, geom: ConvGeometry) -> Any:
    """The native library when the direct convolution applies to this layer, else None."""
    if geom.groups != 1 or w.shape[1] * w.shape[2] * w.shape[3] > settings.CONV_DIRECT_MAX_TAPS:
        return None
    return native.for_arrays(x, w)


def _direct_forward(lib: Any, x: Any, w: Any, b: Any, geom: ConvGeometry, lay: Wide) -> Any:
    n, o = x.shape[0], w.shape[0]
    plane, taps = lay.hp * lay.wp, w.shape[2] * w.shape[3]
    xflat = np.ascontiguousarray(conv_arrays.pad_array(x, geom.padding))
    y = np.empty((n, o, lay.ho, lay.wo), dtype=np.float32)
    starts = np.asarray(lay.offsets(), dtype=np.int64)
    bias = None if b is None else np.ascontiguousarray(b, dtype=np.float32)

    def run(n0: int, n1: int) -> None:
        scratch = np.empty(lay.length, dtype=np.float32)
        lib.conv2d_direct_forward(n1 - n0, lay.c, o, plane, lay.wp, lay.ho, lay.wo, taps, starts.ctypes.data,
                                  xflat.ctypes.data + 4 * n0 * lay.c * plane, w.ctypes.data,
                                  None if bias is None else bias.ctypes.data, y.ctypes.data + 4 * n0 * y[0].size,
                                  scratch.ctypes.data)

    parallel.over_ranges(run, n, y.size * taps)
    return y


def _direct_weight_grad(lib: Any, gy: Any, x: Any, w: Any, geom: ConvGeometry, lay: Wide) -> tuple[Any, Any]:
    """The weight and bias gradients of :func:`_direct_forward` (the input's is not computed)."""
    n, o = x.shape[0], w.shape[0]
    plane, taps = lay.hp * lay.wp, w.shape[2] * w.shape[3]
    xflat = np.ascontiguousarray(conv_arrays.pad_array(x, geom.padding))
    gy = np.ascontiguousarray(gy, dtype=np.float32)
    starts = np.asarray(lay.offsets(), dtype=np.int64)

    def run(n0: int, n1: int) -> tuple[Any, Any]:
        gw, gb = np.zeros(w.shape, dtype=np.float32), np.zeros(o, dtype=np.float32)
        scratch = np.empty(lay.length, dtype=np.float32)
        lib.conv2d_direct_weight_grad(n1 - n0, lay.c, o, plane, lay.wp, lay.ho, lay.wo, taps, starts.ctypes.data,
                                      xflat.ctypes.data + 4 * n0 * lay.c * plane,
                                      gy.ctypes.data + 4 * n0 * gy[0].size, gw.ctypes.data, gb.ctypes.data,
                                      scratch.ctypes.data)
        return gw, gb

    parts = parallel.over_ranges(run, n, gy.size * taps)
    return sum(p[0] for p in parts[1:]) + parts[0][0], sum(p[1] for p in parts[1:]) + parts[0][1]
