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

from nurinet._runtime import buffers, conv_arrays
from nurinet.functional._util import xp_of

# Big work arrays (column matrices, GEMM outputs) come from the runtime's one buffer pool, whose
# rule is explicit ownership: buffers.take, and buffers.give_back by the owner of the last reference.
# The padding, the grouped products and the weight gradient are shared with the fast routines.
pad_array = conv_arrays.pad_array
conv2d_weight_grad = conv_arrays.weight_grad


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
    cols = buffers.take(xp, (c * kh * kw, n * ho * wo), x.dtype)
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


def rows(y: Any) -> Any:
    """(N, O, H, W) -> (O, N * H * W), the row layout of the GEMMs (one transposing copy)."""
    return y.transpose(1, 0, 2, 3).reshape(y.shape[1], -1)


def conv2d_forward(x: Any, w: Any, b: Any, geom: Geometry) -> tuple[Any, Any]:
    """``conv2d(x, w) + b`` on arrays; also returns the column matrix (for the weight gradient)."""
    xp = xp_of(x)
    o, n = w.shape[0], x.shape[0]
    cols, (ho, wo) = im2col(x, w.shape[2:], geom)
    y2 = conv_arrays.grouped_products(w.reshape(o, -1), cols, geom.groups, pooled=True)
    # (O, N*Ho*Wo) -> NCHW in one pass, adding the bias on the way.
    y = xp.empty((n, o, ho, wo), dtype=y2.dtype)
    src = y2.reshape(o, n, ho * wo).transpose(1, 0, 2)
    if b is None:
        y.reshape(n, o, ho * wo)[...] = src
    else:
        xp.add(src, b.reshape(1, o, 1), out=y.reshape(n, o, ho * wo))
    buffers.give_back(y2)
    return y, cols


def conv2d_input_grad(g2: Any, w: Any, x_shape: tuple[int, ...], geom: Geometry) -> Any:
    """The gradient of conv2d with respect to its input, from ``g2 = rows(gy)``.

    This is also the forward of the transposed convolution of ``gy``.
    """
    wt = conv_arrays.transposed_weight(w, geom.groups)
    gcols = conv_arrays.grouped_products(wt, g2, geom.groups, pooled=True)
    gx = col2im(gcols, x_shape, w.shape[2:], geom)
    buffers.give_back(gcols)
    return gx


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
