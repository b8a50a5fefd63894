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

from nurinet.functional._util import xp_of

# Spare big buffers (column matrices, GEMM outputs), at most two per (array type, shape, dtype).
# A fresh multi-megabyte array is a fresh mmap whose pages the kernel must fault in and zero on
# first touch (about 4 ms for the 42 MB column matrix of a 32->64 3x3 conv on a batch of 64),
# so reusing them from step to step saves that every step. Only buffers whose every reference
# is known to be dropped are handed back (see :func:`recycle`).
_SPARE: dict[tuple, list[Any]] = {}
_SPARE_KEYS = 16
_SPARE_MIN_BYTES = 1 << 20


def scratch(xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """An uninitialized array of ``shape``: a recycled one when there is one."""
    spare = _SPARE.get((xp.ndarray, tuple(shape), xp.dtype(dtype)))
    if spare:
        return spare.pop()
    return xp.empty(shape, dtype=dtype)


def recycle(array: Any) -> None:
    """Hand a buffer back for :func:`scratch`; the caller must hold the only reference to it."""
    if array is None or array.nbytes < _SPARE_MIN_BYTES or not array.flags.c_contiguous or array.base is not None:
        return
    key = (type(array), array.shape, array.dtype)
    spare = _SPARE.setdefault(key, [])
    if len(spare) < 2:
        spare.append(array)
    while len(_SPARE) > _SPARE_KEYS:  # forget the oldest shapes (a model whose input size changes)
        del _SPARE[next(iter(_SPARE))]


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
            return xp.matmul(a, b, out=scratch(xp, (a.shape[0], b.shape[1]), xp.result_type(a, b)))
        return a @ b
    m, k, n = a.shape[0] // groups, a.shape[1], b.shape[1]
    return (a.reshape(groups, m, k) @ b.reshape(groups, k, n)).reshape(groups * m, n)


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
        return (cols @ g2.T).T.reshape(w_shape)
    o, k = w_shape[0], cols.shape[0] // groups
    gw = cols.reshape(groups, k, -1) @ g2.reshape(groups, o // groups, -1).transpose(0, 2, 1)
    return gw.transpose(0, 2, 1).reshape(w_shape)
