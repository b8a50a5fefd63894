"""The wide-row layout of a stride-1 convolution, and the array steps of one chunk of samples.

With stride 1 the window of output (r, c) at kernel offset (i, j) starts at flat position
r * W + c + i * dh * W + j * dw of the padded (H, W) plane. Computing outputs on a "wide" grid of
Ho rows of W columns (the last W - Wo of each row are junk and never read) makes the column
matrix of one kernel offset a *contiguous* run of the flat plane, of length
L = (Ho - 1) * W + Wo. So im2col copies runs of ~L elements instead of rows of Wo, and col2im adds
runs of L (one add per offset over the whole chunk) instead of Ho * Wo short rows: 2x fewer,
longer inner loops for NumPy. Working on a chunk of samples whose column matrix fits in the
L2/L3 cache (``settings.CONV_CHUNK_BYTES``) keeps the column matrices out of main memory altogether, so
nothing is kept between forward and backward: the weight gradient rebuilds each chunk's columns (a
copy from cache is cheaper than keeping 40 MB alive and reading it back from memory).

NumPy arrays only. The padding, the grouped products and the weight gradient are the reference's own
(:mod:`nurinet._runtime.conv_arrays`, shared with :mod:`nurinet.functional._im2col`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nurinet._runtime import buffers, native, settings

__all__ = ["Wide", "col2im_into", "grad_rows", "layout", "outputs_into"]


@dataclass(frozen=True)
class Wide:
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

    def window_offsets(self) -> Any:
        """Where each row of the column matrix starts in one sample's padded input (C, hp * wp), in
        elements: channel by channel, kernel offset by offset (the rows' order in :meth:`cols`)."""
        plane = self.hp * self.wp
        return (np.arange(self.c, dtype=np.int64)[:, None] * plane + np.asarray(self.offsets(), np.int64)).ravel()

    def cols(self, xflat: Any) -> Any:
        """The wide column matrix ``(C * kh * kw, nb * L)`` of a chunk ``xflat`` (nb, C, hp * wp)."""
        nb = xflat.shape[0]
        (kh, kw), (dh, dw), length = self.khw, self.dilation, self.length
        s_n, s_c, s_p = xflat.strides
        view = np.lib.stride_tricks.as_strided(
            xflat, (self.c, kh, kw, nb, length), (s_c, dh * self.wp * s_p, dw * s_p, s_n, s_p), writeable=False)
        cols = buffers.take(np, (self.rows, nb * length), xflat.dtype)
        cols.reshape(self.c, kh, kw, nb, length)[...] = view
        return cols

    def outputs(self, y2: Any, o: int) -> Any:
        """The ``(O, nb, ho, wo)`` view of the real outputs in a wide product ``y2`` (O, nb * L)."""
        nb = y2.shape[1] // self.length
        s_o, s_p = y2.strides
        return np.lib.stride_tricks.as_strided(
            y2, (o, nb, self.ho, self.wo), (s_o, self.length * s_p, self.wp * s_p, s_p), writeable=True)


def layout(x_shape: tuple[int, ...], khw: tuple[int, int], padding: tuple[tuple[int, int], tuple[int, int]],
           dilation: tuple[int, int]) -> Wide:
    """The wide layout of a stride-1 convolution of an ``x_shape`` input with a ``khw`` kernel."""
    (pt, pb), (pl, pr) = padding
    hp, wp = x_shape[2] + pt + pb, x_shape[3] + pl + pr
    ho, wo = hp - dilation[0] * (khw[0] - 1), wp - dilation[1] * (khw[1] - 1)
    return Wide(x_shape[1], tuple(khw), dilation, hp, wp, ho, wo)


def outputs_into(y2: Any, b: Any, y: Any, lay: Wide) -> None:
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


def grad_rows(gy: Any, lay: Wide, gb: Any) -> Any:
    """A chunk ``gy`` (nb, O, ho, wo) as wide rows ``(O, nb * L)``, zero in the junk columns; adds its
    bias gradient into ``gb`` (O)."""
    nb, o = gy.shape[:2]
    g2 = buffers.take(np, (o, nb * lay.length), gy.dtype)
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


def col2im_into(gcols: Any, out: Any, offsets: list[int], length: int) -> None:
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
