"""Slow reference convolutions built only from existing differentiable ops (test oracles).

They follow the definitions literally: conv2d gathers one strided slice of the
padded input per kernel offset and contracts with the weight by ``einsum``; the
transposed convolution inserts ``stride - 1`` zeros between input pixels, pads by
``dilation * (k - 1) - padding`` and convolves with the flipped, transposed
filters. Being composites of ops that are themselves differentiable, they are
differentiable to any order; the fast ops in :mod:`nurinet.functional.conv` are
checked against them.
"""

from __future__ import annotations

from typing import Any

import nurinet.functional as F
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional.conv import _padding, _tuple

_ALL = slice(None)


def _pad_or_crop(x: Tensor, pads: tuple[tuple[int, int], ...]) -> Tensor:
    """Pad the last two axes by ``pads``; a negative amount crops instead."""
    crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(x.shape[2:], pads))
    x = F.getitem(x, (_ALL, _ALL, *crop))
    return F.pad(x, ((0, 0), (0, 0), *((max(lo, 0), max(hi, 0)) for lo, hi in pads)))


def _conv(x: Tensor, w: Tensor, stride: tuple[int, int], pads: Any, dilation: tuple[int, int],
          groups: int) -> Tensor:
    x = _pad_or_crop(x, pads)
    (kh, kw), (sh, sw), (dh, dw) = w.shape[2:], stride, dilation
    ho = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
    patches = F.stack([
        F.getitem(x, (_ALL, _ALL, slice(i * dh, i * dh + sh * (ho - 1) + 1, sh),
                      slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)))
        for i in range(kh) for j in range(kw)
    ], axis=2)  # (N, C, kh*kw, Ho, Wo)
    cg, og = x.shape[1] // groups, w.shape[0] // groups
    outs = [
        F.einsum("nckhw,ock->nohw", F.getitem(patches, (_ALL, slice(g * cg, (g + 1) * cg))),
                 F.reshape(F.getitem(w, slice(g * og, (g + 1) * og)), (og, cg, kh * kw)))
        for g in range(groups)
    ]
    return outs[0] if groups == 1 else F.concatenate(outs, axis=1)


def _add_bias(y: Tensor, bias: Any) -> Tensor:
    return y if bias is None else y + F.reshape(as_tensor(bias), (1, -1, 1, 1))


def conv2d_reference(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     dilation: Any = 1, groups: int = 1) -> Tensor:
    """conv2d by its definition (same arguments as :func:`nurinet.functional.conv2d`)."""
    x, weight = as_tensor(x), as_tensor(weight)
    stride, dilation = _tuple(stride, 2, "stride", "conv2d"), _tuple(dilation, 2, "dilation", "conv2d")
    pads = _padding(padding, weight.shape[2:], dilation, stride, "conv2d")
    return _add_bias(_conv(x, weight, stride, pads, dilation, groups), bias)


def conv1d_reference(x: Any, weight: Any, bias: Any = None, stride: int = 1, padding: Any = 0,
                     dilation: int = 1, groups: int = 1) -> Tensor:
    """conv1d by its definition: conv2d_reference on a unit height."""
    x, weight = as_tensor(x), as_tensor(weight)
    pads = _padding(padding, weight.shape[2:], (dilation,), (stride,), "conv1d")
    y = _conv(F.unsqueeze(x, 2), F.unsqueeze(weight, 2), (1, stride), ((0, 0), *pads), (1, dilation), groups)
    return F.squeeze(_add_bias(y, bias), 2)


def _dilate(x: Tensor, stride: tuple[int, int]) -> Tensor:
    """Insert ``stride - 1`` zeros between neighbouring pixels along H and W."""
    for axis, s in ((2, stride[0]), (3, stride[1])):
        if s == 1:
            continue
        n = x.shape[axis]
        zeros = Tensor(x.array * 0.0)
        x = F.flatten(F.stack([x] + [zeros] * (s - 1), axis=axis + 1), axis, axis + 1)
        x = F.getitem(x, (_ALL,) * axis + (slice(0, (n - 1) * s + 1),))
    return x


def conv_transpose2d_reference(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                               output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """conv_transpose2d by its definition (same arguments as :func:`nurinet.functional.conv_transpose2d`)."""
    op = "conv_transpose2d"
    x, weight = as_tensor(x), as_tensor(weight)
    stride, dilation = _tuple(stride, 2, "stride", op), _tuple(dilation, 2, "dilation", op)
    pad, extra = _tuple(padding, 2, "padding", op, 0), _tuple(output_padding, 2, "output_padding", op, 0)
    cg = weight.shape[0] // groups
    # Per group, (C_in/g, C_out/g, kh, kw) -> (C_out/g, C_in/g, kh, kw), flipped in space.
    flipped = F.concatenate([
        F.flip(F.permute(F.getitem(weight, slice(g * cg, (g + 1) * cg)), (1, 0, 2, 3)), axis=(2, 3))
        for g in range(groups)
    ], axis=0)
    full = [d * (k - 1) - p for d, k, p in zip(dilation, weight.shape[2:], pad)]
    pads = tuple((f, f + e) for f, e in zip(full, extra))
    y = _conv(_dilate(x, stride), flipped, (1, 1), pads, dilation, groups)
    return _add_bias(y, bias)
