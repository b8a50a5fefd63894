"""Layer norm over the last axis in the native kernels: each pass reads every row once from memory."""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet._runtime import native, settings

__all__ = ["layer_norm", "layer_norm_backward"]


def layer_norm(x: Any, axes: tuple[int, ...], eps: float, weight: Any = None,
               bias: Any = None) -> tuple[Any, Any, Any, Any, Any] | None:
    """``(x - mean) * rstd * weight + bias`` over the last axis, with the statistics the op keeps.

    Args:
        x: The input.
        axes: The op's axes of the statistics; the routine applies to ``(x.ndim - 1,)`` only.
        eps: Added to the variance.
        weight: The scale, varying along the last axis only, or None (no affine map).
        bias: The shift, as ``weight`` (None with it).

    Returns:
        ``(y, xhat, mean, var, rstd)`` (the statistics with a last axis of 1), or None where the
        kernel does not apply (CuPy, not float32 and C-contiguous, empty or small, statistics over
        other axes, parameters that vary along others) or a variance is not finite (an overflow, inf
        or NaN: the op's code handles the whole input).
    """
    if type(x) is not np.ndarray or not x.size or axes != (x.ndim - 1,):
        return None
    affine = weight is not None
    if affine and any(p.size != x.shape[-1] or p.shape[-1] != x.shape[-1] for p in (weight, bias)):
        return None
    lib = native.for_arrays(x, weight, bias, min_size=settings.NATIVE_NORM_MIN_ELEMENTS)
    if lib is None:
        return None
    n = x.shape[-1]
    xhat = np.empty(x.shape, np.float32)
    y = np.empty(x.shape, np.float32) if affine else xhat
    mean, var, rstd = (np.empty(x.shape[:-1] + (1,), np.float32) for _ in range(3))
    w, b = (weight.ctypes.data, bias.ctypes.data) if affine else (None, None)
    lib.layer_norm_forward(x.size // n, n, x.ctypes.data, w, b, float(np.float32(eps)), xhat.ctypes.data,
                           y.ctypes.data, mean.ctypes.data, var.ctypes.data, rstd.ctypes.data)
    if not np.isfinite(var).all():
        return None
    return y, xhat, mean, var, rstd


def layer_norm_backward(gy: Any, xhat: Any, rstd: Any, weight: Any,
                        needs: tuple[bool, ...]) -> tuple[Any, Any, Any] | None:
    """The gradients of :func:`layer_norm`, from what it returned; for a forward that ran there only.

    Args:
        gy: The gradient of the output.
        xhat: The standardized input :func:`layer_norm` returned.
        rstd: The reciprocal standard deviations it returned.
        weight: The scale, or None (no affine map).
        needs: Which of ``(x, weight, bias)`` want a gradient.

    Returns:
        ``(gx, gw, gb)``, the parameter gradients in ``weight``'s shape, each None where not wanted
        (``gw`` and ``gb`` always without an affine map); or None where ``gy`` does not suit the kernel (CuPy,
        not float32 and C-contiguous, another shape than ``xhat``).
    """
    lib = native.for_arrays(gy)
    if lib is None or gy.shape != xhat.shape:
        return None
    n = gy.shape[-1]
    affine = weight is not None
    gx = np.empty(gy.shape, np.float32) if needs[0] else None
    gw = np.zeros(n, np.float32) if affine and needs[1] else None
    gb = np.zeros(n, np.float32) if affine and needs[2] else None
    lib.layer_norm_backward(gy.size // n, n, gy.ctypes.data, xhat.ctypes.data, rstd.ctypes.data,
                            _address(weight), _address(gx), _address(gw),
                            _address(gb), np.empty(n, np.float32).ctypes.data)
    if affine:  # the parameters' own shapes, which broadcast against x along its last axis
        gw, gb = (None if g is None else g.reshape(weight.shape) for g in (gw, gb))
    return gx, gw, gb


def _address(array: Any) -> Any:
    """The data address of ``array`` for a native kernel, or None (a NULL pointer) for None."""
    return None if array is None else array.ctypes.data
