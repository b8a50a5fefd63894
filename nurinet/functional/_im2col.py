"""Array kernels of 2-D convolution: im2col, col2im and the three GEMM-based products.

Layout: inputs are NCHW. The column matrix is ``(C * kh * kw, N * Ho * Wo)``: its
rows are (channel, kernel row, kernel column), its columns (sample, output row,
output column). That order makes the one copy that builds it read and write whole
output rows (the innermost axis of the window view is the output column, which is
contiguous in the source up to the stride), and makes the channels of one group
a contiguous block of rows, so a grouped convolution is one GEMM per group on
views. Everything here works on raw NumPy or CuPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nurinet._runtime import buffers, gemm, native, parallel, settings
from nurinet.functional._util import xp_of

# Big work arrays (column matrices, GEMM outputs) come from the runtime's one buffer pool, whose
# rule is explicit ownership (see nurinet._runtime.buffers).
scratch = buffers.take
recycle = buffers.give_back


@dataclass(frozen=True)
class Geometry:
    """Stride, padding ``((top, bottom), (left, right))``, dilation and groups of a 2-D conv."""

    stride: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    dilation: tuple[int, int]
    groups: int

    def out_size(self, hw: tuple[int, int], khw: tuple[int, int]) -> tuple[int, int]:
        """Output height and width for an input of spatial size ``hw`` and kernel ``khw``."""
        return tuple(
            (n + lo + hi - d * (k - 1) - 1) // s + 1
            for n, (lo, hi), d, k, s in zip(hw, self.padding, self.dilation, khw, self.stride)
        )


def pad_array(x: Any, padding: tuple[tuple[int, int], tuple[int, int]], value: float = 0.0) -> Any:
    """``x`` (N, C, H, W) padded on its last two axes (a copy only when there is padding)."""
    (pt, pb), (pl, pr) = padding
    if not (pt or pb or pl or pr):
        return x
    xp = xp_of(x)
    n, c, h, w = x.shape
    if value == 0.0:
        out = xp.zeros((n, c, h + pt + pb, w + pl + pr), dtype=x.dtype)
    else:
        out = xp.full((n, c, h + pt + pb, w + pl + pr), value, dtype=x.dtype)
    out[:, :, pt : pt + h, pl : pl + w] = x
    return out


def im2col(x: Any, khw: tuple[int, int], geom: Geometry) -> tuple[Any, tuple[int, int]]:
    """The column matrix ``(C * kh * kw, N * Ho * Wo)`` of ``x`` and the output size ``(Ho, Wo)``."""
    xp = xp_of(x)
    (pt, pb), (pl, pr) = geom.padding
    # A negative bottom/right padding (a transposed conv's output_padding) just leaves rows unread.
    xpad = pad_array(x, ((pt, max(pb, 0)), (pl, max(pr, 0))))
    n, c = x.shape[:2]
    (kh, kw), (dh, dw), (sh, sw) = khw, geom.dilation, geom.stride
    ho, wo = geom.out_size(x.shape[2:], khw)
    s_n, s_c, s_h, s_w = xpad.strides
    view = xp.lib.stride_tricks.as_strided(
        xpad, (c, kh, kw, n, ho, wo), (s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw)
    )
    # One copy into a C-ordered (C * kh * kw, N * Ho * Wo) buffer, through a free 6-D view of it.
    cols = scratch(xp, (c * kh * kw, n * ho * wo), x.dtype)
    cols.reshape(c, kh, kw, n, ho, wo)[...] = view
    return cols, (ho, wo)


def col2im(cols: Any, x_shape: tuple[int, ...], khw: tuple[int, int], geom: Geometry) -> Any:
    """The adjoint of :func:`im2col`: sum the columns back into an array of ``x_shape``.

    One strided slice-add per kernel offset (``kh * kw`` adds); overlapping windows
    accumulate because the adds run one after the other.
    """
    xp = xp_of(cols)
    n, c, h, w = x_shape
    (kh, kw), (dh, dw), (sh, sw) = khw, geom.dilation, geom.stride
    (pt, pb), (pl, pr) = geom.padding
    ho, wo = geom.out_size((h, w), khw)
    blocks = cols.reshape(c, kh, kw, n, ho, wo)
    out = xp.zeros((n, c, h + pt + max(pb, 0), w + pl + max(pr, 0)), dtype=cols.dtype)
    # Accumulate through a (C, N, H, W) view of the NCHW result: the inner (row) axes still match,
    # and no transposing copy is needed at the end.
    acc = out.transpose(1, 0, 2, 3)
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
        for j in range(kw):
            acc[:, :, rows, j * dw : j * dw + sw * (wo - 1) + 1 : sw] += blocks[:, i, j]
    if pt or pb or pl or pr:
        return xp.ascontiguousarray(out[:, :, pt : pt + h, pl : pl + w])
    return out


def _grouped(a: Any, b: Any, groups: int, pooled: bool = False) -> Any:
    """``a @ b`` split into ``groups`` diagonal blocks: a is (G*m, k), b is (G*k, n) -> (G*m, n).

    With ``pooled`` the product goes to a :func:`scratch` buffer (the caller recycles it).
    """
    if groups == 1:
        if pooled:
            xp = xp_of(b)
            return gemm.matmul(a, b, out=scratch(xp, (a.shape[0], b.shape[1]), xp.result_type(a, b)))
        return gemm.matmul(a, b)
    m, k, n = a.shape[0] // groups, a.shape[1], b.shape[1]
    return gemm.matmul(a.reshape(groups, m, k), b.reshape(groups, k, n)).reshape(groups * m, n)


def rows(y: Any) -> Any:
    """(N, O, H, W) -> (O, N * H * W), the row layout of the GEMMs (one transposing copy)."""
    return y.transpose(1, 0, 2, 3).reshape(y.shape[1], -1)


def conv2d_forward(x: Any, w: Any, b: Any, geom: Geometry) -> tuple[Any, Any]:
    """``conv2d(x, w) + b`` on arrays; also returns the column matrix (for the weight gradient)."""
    xp = xp_of(x)
    o, n = w.shape[0], x.shape[0]
    cols, (ho, wo) = im2col(x, w.shape[2:], geom)
    y2 = _grouped(w.reshape(o, -1), cols, geom.groups, pooled=True)
    # (O, N*Ho*Wo) -> NCHW in one pass, adding the bias on the way.
    y = xp.empty((n, o, ho, wo), dtype=y2.dtype)
    src = y2.reshape(o, n, ho * wo).transpose(1, 0, 2)
    if b is None:
        y.reshape(n, o, ho * wo)[...] = src
    else:
        xp.add(src, b.reshape(1, o, 1), out=y.reshape(n, o, ho * wo))
    recycle(y2)
    return y, cols


def conv2d_input_grad(g2: Any, w: Any, x_shape: tuple[int, ...], geom: Geometry) -> Any:
    """The gradient of conv2d with respect to its input, from ``g2 = rows(gy)``.

    This is also the forward of the transposed convolution of ``gy``.
    """
    o, groups = w.shape[0], geom.groups
    if groups == 1:
        wt = w.reshape(o, -1).T
    else:  # per group, the transposed (O/G, C/G*kh*kw) block, stacked: (C*kh*kw, O/G)
        wt = w.reshape(groups, o // groups, -1).transpose(0, 2, 1).reshape(-1, o // groups)
    gcols = _grouped(wt, g2, groups, pooled=True)
    gx = col2im(gcols, x_shape, w.shape[2:], geom)
    recycle(gcols)
    return gx


def conv2d_weight_grad(g2: Any, cols: Any, w_shape: tuple[int, ...], groups: int) -> Any:
    """The gradient of conv2d with respect to its weight, from ``rows(gy)`` and the input's columns."""
    # cols @ g2.T, transposed, rather than g2 @ cols.T: OpenBLAS is an order of magnitude slower on
    # the latter (few rows, few columns, a very long inner dimension) for the same product.
    if groups == 1:
        return gemm.matmul(cols, g2.T).T.reshape(w_shape)
    o, k = w_shape[0], cols.shape[0] // groups
    gw = gemm.matmul(cols.reshape(groups, k, -1), g2.reshape(groups, o // groups, -1).transpose(0, 2, 1))
    return gw.transpose(0, 2, 1).reshape(w_shape)


# ----- the wide-row path: stride-1 convolutions on NumPy arrays, one cache-sized chunk of samples at a time -----
#
# With stride 1 the window of output (r, c) at kernel offset (i, j) starts at flat position
# r * W + c + i * dh * W + j * dw of the padded (H, W) plane. Computing outputs on a "wide" grid of
# Ho rows of W columns (the last W - Wo of each row are junk and never read) makes the column
# matrix of one kernel offset a *contiguous* run of the flat plane, of length
# L = (Ho - 1) * W + Wo. So im2col copies runs of ~L elements instead of rows of Wo, and col2im adds
# runs of L (one add per offset over the whole chunk) instead of Ho * Wo short rows: 2x fewer,
# longer inner loops for NumPy. Working on a chunk of samples whose column matrix fits in the
# L2/L3 cache (``settings.CONV_CHUNK_BYTES``) keeps the column matrices out of main memory altogether, so nothing
# is kept between forward and backward: the weight gradient rebuilds each chunk's columns (a copy
# from cache is cheaper than keeping 40 MB alive and reading it back from memory).


def wide_ok(x: Any, w: Any, geom: Geometry) -> bool:
    """Whether :func:`conv2d_forward_wide` / :func:`conv2d_backward_wide` apply (else use the general path)."""
    return (settings.FUSED_PATHS and geom.stride == (1, 1) and type(x) is np.ndarray and type(w) is np.ndarray and x.size > 0
            and min(p for pair in geom.padding for p in pair) >= 0)


def wide_input_grad_exact(w: Any, needs_x: bool) -> bool:
    """Whether :func:`conv2d_backward_wide` gives the input gradient of the plain im2col path.

    Its junk columns (see above) hold a zero gradient, which the input gradient multiplies by the
    weights and adds into real positions: harmless while the weights are finite, but ``0 * inf``
    is NaN. (Its weight gradient has the same flaw with the input's values; :func:`exact_weight_grad`
    repairs that afterwards.)
    """
    return not needs_x or bool(np.isfinite(w).all())


def exact_weight_grad(gw: Any, x: Any, gy: Any, geom: Geometry) -> Any:
    """``gw``, or the weight gradient summed over real input pixels only where ``gw`` is not finite.

    A GEMM over column matrices multiplies padded zeros (and the wide path's junk columns) by the
    gradient, and ``0 * inf`` is NaN: one infinite gradient or input pixel made NaN weight gradients
    where PyTorch, which skips the padding, gives inf. Both only ever add NaN or inf, so a finite
    ``gw`` is already exact; the slower recount (:func:`weight_grad_over_real_pixels`) runs only
    for the others.
    """
    if bool(xp_of(gw).isfinite(gw).all()):
        return gw
    return weight_grad_over_real_pixels(x, gy, gw.shape, geom).astype(gw.dtype, copy=False)


def weight_grad_over_real_pixels(x: Any, gy: Any, w_shape: tuple[int, ...], geom: Geometry) -> Any:
    """conv2d's weight gradient with no padding in any product: one contraction per kernel offset.

    Offset (i, j) pairs each output with the input pixel it reads there; only the outputs whose
    pixel is inside the input take part (a rectangle of them), as in PyTorch's kernels.
    """
    xp = xp_of(x)
    n, c = x.shape[:2]
    o, groups = w_shape[0], geom.groups
    gw = xp.zeros(w_shape, dtype=xp.result_type(x, gy))
    gy_g = gy.reshape(n, groups, o // groups, *gy.shape[2:])
    for i in range(w_shape[2]):
        out_h, in_h = _real_reads(gy.shape[2], geom.stride[0], i * geom.dilation[0] - geom.padding[0][0], x.shape[2])
        for j in range(w_shape[3]):
            out_w, in_w = _real_reads(gy.shape[3], geom.stride[1], j * geom.dilation[1] - geom.padding[1][0],
                                      x.shape[3])
            g = gy_g[:, :, :, out_h, out_w]
            xs = x[:, :, in_h, in_w].reshape(n, groups, c // groups, *g.shape[3:])
            gw[:, :, i, j] = xp.einsum("ngohw,ngchw->goc", g, xs).reshape(o, c // groups)
    return gw


def _real_reads(n_out: int, stride: int, offset: int, n_in: int) -> tuple[slice, slice]:
    """The outputs whose read ``out * stride + offset`` falls inside ``[0, n_in)``, and those reads."""
    first = max(0, -(offset // stride))  # ceil(-offset / stride)
    last = min(n_out - 1, (n_in - 1 - offset) // stride)
    if last < first:
        return slice(0, 0), slice(0, 0)
    return slice(first, last + 1), slice(first * stride + offset, last * stride + offset + 1, stride)


@dataclass(frozen=True)
class _Wide:
    """The wide-grid layout of one convolution: padded plane (hp, wp), output (ho, wo), run length."""

    c: int
    khw: tuple[int, int]
    dilation: tuple[int, int]
    hp: int
    wp: int
    ho: int
    wo: int

    @property
    def length(self) -> int:
        return (self.ho - 1) * self.wp + self.wo

    @property
    def rows(self) -> int:
        return self.c * self.khw[0] * self.khw[1]

    def offsets(self) -> list[int]:
        """Flat start of each kernel offset (row-major) in the padded plane."""
        (kh, kw), (dh, dw) = self.khw, self.dilation
        return [i * dh * self.wp + j * dw for i in range(kh) for j in range(kw)]

    def chunks(self, n: int) -> list[tuple[int, int]]:
        """Sample ranges whose column matrix is about ``settings.CONV_CHUNK_BYTES`` (at least one sample each)."""
        step = max(1, settings.CONV_CHUNK_BYTES // max(1, self.rows * self.length * 4))
        return [(i, min(n, i + step)) for i in range(0, n, step)]

    def cols(self, xflat: Any) -> Any:
        """The wide column matrix ``(C * kh * kw, nb * L)`` of a chunk ``xflat`` (nb, C, hp * wp)."""
        nb = xflat.shape[0]
        (kh, kw), (dh, dw), length = self.khw, self.dilation, self.length
        s_n, s_c, s_p = xflat.strides
        view = np.lib.stride_tricks.as_strided(
            xflat, (self.c, kh, kw, nb, length), (s_c, dh * self.wp * s_p, dw * s_p, s_n, s_p), writeable=False)
        cols = scratch(np, (self.rows, nb * length), xflat.dtype)
        cols.reshape(self.c, kh, kw, nb, length)[...] = view
        return cols

    def outputs(self, y2: Any, o: int) -> Any:
        """The ``(O, nb, ho, wo)`` view of the real outputs in a wide product ``y2`` (O, nb * L)."""
        nb = y2.shape[1] // self.length
        s_o, s_p = y2.strides
        return np.lib.stride_tricks.as_strided(
            y2, (o, nb, self.ho, self.wo), (s_o, self.length * s_p, self.wp * s_p, s_p), writeable=True)


def _wide_layout(x_shape: tuple[int, ...], khw: tuple[int, int], geom: Geometry) -> _Wide:
    (pt, pb), (pl, pr) = geom.padding
    ho, wo = geom.out_size(x_shape[2:], khw)
    return _Wide(x_shape[1], tuple(khw), geom.dilation, x_shape[2] + pt + pb, x_shape[3] + pl + pr, ho, wo)


def _over_chunks(work: Any, chunks: list[tuple[int, int]], size: int) -> list[Any]:
    """``work(chunk_list)`` on the chunks, split between threads when the job is large; the results.

    Each thread runs whole chunks (copies, its own one-thread matrix products, adds), so all of a
    chunk's work is parallel, not only the elementwise part. Without a controllable OpenBLAS (whose
    threads would then fight the Python threads) the chunks run on this thread.
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


# Layers with at most ``settings.CONV_DIRECT_MAX_TAPS`` input taps (in_channels * kh * kw) run the
# native direct convolution instead of im2col + GEMM: a 1-channel 3x3 layer's product has an inner
# dimension of 9, far below the BLAS's speed, and its column matrix is nine copies of the input.


def _direct_lib(x: Any, w: Any, geom: Geometry) -> Any:
    """The native library when the direct convolution applies to this layer, else None."""
    if geom.groups != 1 or w.shape[1] * w.shape[2] * w.shape[3] > settings.CONV_DIRECT_MAX_TAPS:
        return None
    return native.for_arrays(x, w)


def _direct_forward(lib: Any, x: Any, w: Any, b: Any, geom: Geometry, lay: _Wide) -> Any:
    n, o = x.shape[0], w.shape[0]
    plane, taps = lay.hp * lay.wp, w.shape[2] * w.shape[3]
    xflat = np.ascontiguousarray(pad_array(x, geom.padding))
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


def _direct_weight_grad(lib: Any, gy: Any, x: Any, w: Any, geom: Geometry, lay: _Wide) -> tuple[Any, Any]:
    """The weight and bias gradients of :func:`_direct_forward` (the input's is not computed)."""
    n, o = x.shape[0], w.shape[0]
    plane, taps = lay.hp * lay.wp, w.shape[2] * w.shape[3]
    xflat = np.ascontiguousarray(pad_array(x, geom.padding))
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


def conv2d_forward_wide(x: Any, w: Any, b: Any, geom: Geometry) -> Any:
    """``conv2d(x, w) + b`` for stride 1 on NumPy arrays, chunk by chunk (see :func:`wide_ok`)."""
    lay = _wide_layout(x.shape, w.shape[2:], geom)
    lib = _direct_lib(x, w, geom)
    if lib is not None and (b is None or b.dtype == np.float32):
        return _direct_forward(lib, x, w, b, geom, lay)
    xflat = pad_array(x, geom.padding).reshape(x.shape[0], lay.c, lay.hp * lay.wp)
    o, n = w.shape[0], x.shape[0]
    wm = w.reshape(o, -1)
    y = np.empty((n, o, lay.ho, lay.wo), dtype=np.result_type(x, w))

    def work(chunks: list[tuple[int, int]]) -> None:
        for n0, n1 in chunks:
            cols = lay.cols(xflat[n0:n1])
            y2 = _grouped(wm, cols, geom.groups, pooled=True)
            _wide_outputs(y2, b, y[n0:n1], lay)
            recycle(cols)
            recycle(y2)

    _over_chunks(work, lay.chunks(n), lay.rows * lay.length * n)
    return y


def _wide_outputs(y2: Any, b: Any, y: Any, lay: _Wide) -> None:
    """The wide product ``y2`` (O, nb * L) of a chunk into its outputs ``y`` (nb, O, ho, wo), plus the bias."""
    nb, o = y.shape[:2]
    lib = native.for_arrays(y2, y, b)
    if lib is not None:  # one pass instead of NumPy's 4-D strided add (docs/performance.md)
        lib.wide_to_nchw(nb, o, lay.ho, lay.wo, lay.wp, lay.length, y2.ctypes.data,
                         None if b is None else b.ctypes.data, y.ctypes.data)
        return
    src = lay.outputs(y2, o).transpose(1, 0, 2, 3)
    if b is None:
        y[...] = src
    else:
        np.add(src, b.reshape(1, o, 1, 1), out=y)


def _wide_grad_rows(gy: Any, lay: _Wide, gb: Any) -> Any:
    """A chunk ``gy`` (nb, O, ho, wo) as wide rows ``(O, nb * L)``, zero in the junk columns; adds its
    bias gradient into ``gb`` (O)."""
    nb, o = gy.shape[:2]
    g2 = scratch(np, (o, nb * lay.length), gy.dtype)
    lib = native.for_arrays(gy, g2, gb)
    if lib is not None:  # one pass for the layout and the bias sums
        lib.nchw_to_wide(nb, o, lay.ho, lay.wo, lay.wp, lay.length, gy.ctypes.data, g2.ctypes.data, gb.ctypes.data)
        return g2
    if lay.wp > lay.wo and lay.ho > 1:  # the junk tail of every row but the last
        s_o, s_p = g2.strides
        junk = np.lib.stride_tricks.as_strided(
            g2[:, lay.wo:], (o, nb, lay.ho - 1, lay.wp - lay.wo), (s_o, lay.length * s_p, lay.wp * s_p, s_p))
        junk[...] = 0
    lay.outputs(g2, o)[...] = gy.transpose(1, 0, 2, 3)
    gb += g2.sum(axis=1)  # the junk columns are zero
    return g2


def _col2im_wide(gcols: Any, out: Any, offsets: list[int], length: int) -> None:
    """Sum the wide column matrix ``gcols`` (C * taps, nb * L) of a chunk into ``out`` (nb, C, hp * wp).

    The native kernel does it plane by plane in one pass; NumPy adds one tap at a time over the
    whole chunk (``taps`` passes).
    """
    nb, c = out.shape[:2]
    lib = native.for_arrays(gcols, out)
    if lib is not None:
        starts = np.asarray(offsets, dtype=np.int64)
        lib.col2im_wide(c, len(offsets), nb, length, out.shape[2], starts.ctypes.data, gcols.ctypes.data,
                        out.ctypes.data)
        return
    blocks = gcols.reshape(c, len(offsets), nb, length)
    out[...] = 0
    acc = out.transpose(1, 0, 2)
    for k, start in enumerate(offsets):
        acc[:, :, start:start + length] += blocks[:, k]


def conv2d_backward_wide(gy: Any, x: Any, w: Any, geom: Geometry, needs_x: bool,
                         needs_w: bool) -> tuple[Any, Any, Any]:
    """Input, weight and bias gradients of :func:`conv2d_forward_wide` (gx, gw None where not needed)."""
    lay = _wide_layout(x.shape, w.shape[2:], geom)
    lib = _direct_lib(x, w, geom)
    if lib is not None and not needs_x:
        gw, gb = _direct_weight_grad(lib, gy, x, w, geom, lay)
        return None, (gw if needs_w else None), gb
    o, n, groups = w.shape[0], x.shape[0], geom.groups
    xflat = pad_array(x, geom.padding).reshape(n, lay.c, lay.hp * lay.wp) if needs_w else None
    gxpad = np.empty((n, lay.c, lay.hp, lay.wp), dtype=gy.dtype) if needs_x else None
    if groups == 1:
        wt = w.reshape(o, -1).T
    else:
        wt = w.reshape(groups, o // groups, -1).transpose(0, 2, 1).reshape(-1, o // groups)
    offsets, length = lay.offsets(), lay.length

    def work(chunks: list[tuple[int, int]]) -> tuple[Any, Any]:
        gw, gb = None, np.zeros(o, dtype=gy.dtype)
        for n0, n1 in chunks:
            g2 = _wide_grad_rows(np.ascontiguousarray(gy[n0:n1]), lay, gb)
            if needs_w:
                cols = lay.cols(xflat[n0:n1])
                part = conv2d_weight_grad(g2, cols, w.shape, groups)
                gw = part if gw is None else np.add(gw, part, out=gw)
                recycle(cols)
            if needs_x:
                gcols = _grouped(wt, g2, groups, pooled=True)
                _col2im_wide(gcols, gxpad[n0:n1].reshape(n1 - n0, lay.c, -1), offsets, length)
                recycle(gcols)
            recycle(g2)
        return gw, gb

    parts = _over_chunks(work, lay.chunks(n), lay.rows * length * n)
    gw, gb = parts[0]
    for more_w, more_b in parts[1:]:
        gw = None if gw is None else gw + more_w
        gb = gb + more_b
    gx = None
    if needs_x:
        (pt, _), (pl, _) = geom.padding
        h, wd = x.shape[2:]
        gx = gxpad if (h, wd) == (lay.hp, lay.wp) else np.ascontiguousarray(gxpad[:, :, pt:pt + h, pl:pl + wd])
    return gx, gw, gb
