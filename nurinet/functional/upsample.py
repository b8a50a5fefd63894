"""Resizing: ``interpolate`` (nearest, linear, bilinear) with PyTorch's index conventions.

Both modes are separable and linear in the input, so each spatial axis is
resized by a product with a fixed ``(out, in)`` matrix (one-hot rows for
nearest, two weights per row for (bi)linear), applied with ``linear`` (one GEMM
with the leading dims folded). The result is differentiable to any order, and
the matrices are cached per (size, scale) so they are built once.

PyTorch's CPU kernels take a few shortcuts that change the result when a
``scale_factor`` does not match the rounded size, and they are copied here:
a (bi)linear axis whose size does not change is left as it is; 2-D nearest
copies an axis whose size does not change and halves the index of one whose
size doubles; 1-D nearest takes no shortcut.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional._util import xp_of
from nurinet.functional.linalg import linear
from nurinet.functional.shape import swapaxes

_MODES = {3: ("nearest", "linear"), 4: ("nearest", "bilinear")}


@lru_cache(maxsize=256)
def _nearest_matrix(n: int, out: int, scale: float | None, shortcuts: bool) -> np.ndarray:
    """PyTorch's ``nearest``: source ``min(floor(dst * s), n - 1)``, s computed in float32 as PyTorch does.

    With ``shortcuts`` (PyTorch's 2-D kernel), an unchanged size copies and a doubled size
    halves the index whatever ``scale`` says.
    """
    if shortcuts and out == n:
        src = np.arange(out)
    elif shortcuts and out == 2 * n:
        src = np.arange(out) // 2
    else:
        s = np.float32(1.0 / scale) if scale is not None else np.float32(n) / np.float32(out)
        src = np.minimum(np.floor(np.arange(out, dtype=np.float32) * s).astype(np.int64), n - 1)
    m = np.zeros((out, n))
    m[np.arange(out), src] = 1.0
    m.flags.writeable = False  # cached: shared by every call
    return m


@lru_cache(maxsize=256)
def _linear_matrix(n: int, out: int, scale: float | None, align_corners: bool) -> np.ndarray:
    """Linear interpolation weights, source coordinate as PyTorch's ``area_pixel_compute_source_index``."""
    dst = np.arange(out, dtype=np.float64)
    if out == n:  # PyTorch leaves an axis of unchanged size alone, even when scale_factor is not 1
        src = dst
    elif align_corners:
        src = dst * ((n - 1) / (out - 1) if out > 1 else 0.0)
    else:
        s = 1.0 / scale if scale is not None else n / out
        src = np.maximum(s * (dst + 0.5) - 0.5, 0.0)  # PyTorch clamps at 0 (not at n - 1: that is h1p's job)
    low = src.astype(np.int64)
    step = (low < n - 1).astype(np.int64)
    frac = src - low
    m = np.zeros((out, n))
    rows = np.arange(out)
    np.add.at(m, (rows, low), 1.0 - frac)
    np.add.at(m, (rows, low + step), frac)
    m.flags.writeable = False  # cached: shared by every call
    return m


def _sizes(x: Tensor, size: Any, scale_factor: Any) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    dims = x.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    if size is not None:
        sizes = (size,) * dims if isinstance(size, int) else tuple(size)
        if len(sizes) != dims or any(int(s) != s or s < 1 for s in sizes):
            raise ValueError(f"interpolate: size must be a positive int or {dims} of them, got {size!r}")
        return tuple(int(s) for s in sizes), (None,) * dims
    scales = (scale_factor,) * dims if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
    if len(scales) != dims or any(s <= 0 for s in scales):
        raise ValueError(f"interpolate: scale_factor must be a positive number or {dims} of them, "
                         f"got {scale_factor!r}")
    sizes = tuple(math.floor(n * s) for n, s in zip(x.shape[2:], scales))
    if min(sizes) < 1:
        raise ValueError(f"interpolate: scale_factor {scale_factor} makes input {x.shape} empty ({sizes})")
    return sizes, tuple(float(s) for s in scales)


def interpolate(x: Any, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool | None = None) -> Tensor:
    """Resize ``(N, C, L)`` or ``(N, C, H, W)`` to ``size`` or by ``scale_factor``.

    Args:
        x: Input of shape ``(N, C, L)`` (modes ``nearest``, ``linear``) or
            ``(N, C, H, W)`` (modes ``nearest``, ``bilinear``).
        size: Output spatial size (an int or one per spatial dim).
        scale_factor: Multiplier(s) of the spatial size (the output size is floored);
            as in PyTorch, the given factor (not the rounded ratio of sizes) maps
            output to source coordinates.
        mode: ``"nearest"`` (source ``floor(dst * in / out)``, or ``floor(dst / scale_factor)``:
            PyTorch's legacy nearest), ``"linear"`` or ``"bilinear"``.
        align_corners: Linear modes only: map the corner pixels' centers onto each
            other (source ``dst * (in - 1) / (out - 1)``) instead of the half-pixel rule
            (source ``(dst + 0.5) * in / out - 0.5``, clamped at 0). Default False.

    Returns:
        ``(N, C, *size)``.
    """
    x = as_tensor(x)
    if x.ndim not in _MODES:
        raise ValueError(f"interpolate: expected a 3-D (N, C, L) or 4-D (N, C, H, W) input, got shape {x.shape}")
    if mode not in _MODES[x.ndim]:
        raise ValueError(f"interpolate: mode {mode!r} is not available for a {x.ndim}-D input; "
                         f"use one of {_MODES[x.ndim]}")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners only applies to the linear modes")
    sizes, scales = _sizes(x, size, scale_factor)
    for axis, (n, out, scale) in enumerate(zip(x.shape[2:], sizes, scales)):
        if mode == "nearest":
            m = _nearest_matrix(n, out, scale, x.ndim == 4)
        else:
            m = _linear_matrix(n, out, scale, bool(align_corners))
        matrix = Tensor._wrap(xp_of(x.data).asarray(m, dtype=x.dtype), False)  # on the input's device
        last = x.ndim - 1
        moved = x if axis + 2 == last else swapaxes(x, axis + 2, last)
        y = linear(moved, matrix)
        x = y if axis + 2 == last else swapaxes(y, axis + 2, last)
    return x
