"""Array steps of the 2-D convolution shared by its reference code and its fast routines.

:mod:`nurinet.functional._im2col` (the im2col reference, NumPy or CuPy) and
:mod:`nurinet._runtime.fast.conv` (the wide-row and direct paths, NumPy) both pad the input, run the
grouped products (with the weight transposed for the input gradient) and form the weight gradient
the same way; the one copy lives here, below both.
"""

from __future__ import annotations

from typing import Any

from nurinet import backend
from nurinet._runtime import buffers, gemm


def pad_array(x: Any, padding: tuple[tuple[int, int], tuple[int, int]], value: float = 0.0) -> Any:
    """``x`` (N, C, H, W) padded with ``value`` on its last two axes (a copy only when there is padding)."""
    (pt, pb), (pl, pr) = padding
    if not (pt or pb or pl or pr):
        return x
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    shape = (n, c, h + pt + pb, w + pl + pr)
    out = xp.zeros(shape, dtype=x.dtype) if value == 0.0 else xp.full(shape, value, dtype=x.dtype)
    out[:, :, pt : pt + h, pl : pl + w] = x
    return out


def grouped_products(a: Any, b: Any, groups: int, pooled: bool = False) -> Any:
    """``a @ b`` split into ``groups`` diagonal blocks: a is (G*m, k), b is (G*k, n) -> (G*m, n).

    With ``pooled`` (and one group) the product goes to a buffer of :mod:`nurinet._runtime.buffers`,
    which the caller owns and gives back.
    """
    if groups == 1:
        if pooled:
            xp = backend.get_array_module(b)
            return gemm.matmul(a, b, out=buffers.take(xp, (a.shape[0], b.shape[1]), xp.result_type(a, b)))
        return gemm.matmul(a, b)
    m, k, n = a.shape[0] // groups, a.shape[1], b.shape[1]
    return gemm.matmul(a.reshape(groups, m, k), b.reshape(groups, k, n)).reshape(groups * m, n)


def transposed_weight(w: Any, groups: int) -> Any:
    """The weight as the ``(C * kh * kw, O / groups)`` left operand of the input gradient's grouped products.

    Per group the transposed ``(O/G, C/G * kh * kw)`` block, stacked along the rows.
    """
    o = w.shape[0]
    if groups == 1:
        return w.reshape(o, -1).T
    return w.reshape(groups, o // groups, -1).transpose(0, 2, 1).reshape(-1, o // groups)


def weight_grad(g2: Any, cols: Any, w_shape: tuple[int, ...], groups: int) -> Any:
    """The weight gradient from the output gradient's rows ``g2`` and the input's columns ``cols``."""
    # cols @ g2.T, transposed, rather than g2 @ cols.T: OpenBLAS is an order of magnitude slower on
    # the latter (few rows, few columns, a very long inner dimension) for the same product.
    if groups == 1:
        return gemm.matmul(cols, g2.T).T.reshape(w_shape)
    o, k = w_shape[0], cols.shape[0] // groups
    gw = gemm.matmul(cols.reshape(groups, k, -1), g2.reshape(groups, o // groups, -1).transpose(0, 2, 1))
    return gw.transpose(0, 2, 1).reshape(w_shape)
