"""Resizing: ``interpolate`` (nearest, linear, bilinear) with PyTorch's index conventions.

Both modes are separable, so each spatial axis is resized on its own: every
output position reads one input (nearest) or two, weighted (linear)
(:mod:`nurinet.functional.resample`), and a NaN or an infinity reaches only the
outputs that read it, as in PyTorch. The result is differentiable to any order,
and the maps are cached per (size, scale) so they are built once.

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
from nurinet.functional.resample import AxisMap, resample

_MODES = {3: ("nearest", "linear"), 4: ("nearest", "bilinear")}


@lru_cache(maxsize=256)
def _nearest_map(n: int, out: int, scale: float | None, shortcuts: bool) -> AxisMap:
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
    return AxisMap(n, out, np.arange(out), src, np.ones(out))


@lru_cache(maxsize=256)
def _linear_map(n: int, out: int, scale: float | None, align_corners: bool) -> AxisMap:
    """Linear interpolation, source coordinate as PyTorch's ``area_pixel_compute_source_index``.

    Each output reads two inputs, ``low`` and the next one (``low`` again at the last input, and on
    an axis whose size does not change), with weights ``1 - frac`` and ``frac``, as PyTorch's
    kernel does, a zero weight included: an infinity read with weight 0 makes a NaN there, as in
    PyTorch.
    """
    dst = np.arange(out, dtype=np.float64)
    if out == n:  # PyTorch leaves an axis of unchanged size alone, even when scale_factor is not 1:
        src = dst  # each output reads its own input twice, weights 1 and 0 (so inf becomes NaN there)
    elif align_corners:
        src = dst * ((n - 1) / (out - 1) if out > 1 else 0.0)
    else:
        s = 1.0 / scale if scale is not None else n / out
        src = np.maximum(s * (dst + 0.5) - 0.5, 0.0)  # PyTorch clamps at 0 (not at n - 1: that is h1p's job)
    low = src.astype(np.int64)
    step = ((low < n - 1) & (out != n)).astype(np.int64)
    frac = src - low
    rows = np.arange(out)
    return AxisMap(n, out, np.repeat(rows, 2), np.stack([low, low + step], 1).ravel(),
                   np.stack([1.0 - frac, frac], 1).ravel())


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
    maps = {}
    for axis, (n, out, scale) in enumerate(zip(x.shape[2:], sizes, scales), start=2):
        if mode == "nearest":
            maps[axis] = _nearest_map(n, out, scale, x.ndim == 4)
        else:
            maps[axis] = _linear_map(n, out, scale, bool(align_corners))
    return resample(x, maps)
