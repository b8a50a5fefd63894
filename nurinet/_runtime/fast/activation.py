"""ReLU on threads and in the native kernels: one pass, each thread writing its slice of the result."""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet._runtime import native, parallel, settings

__all__ = ["relu", "relu_grad"]


def relu(x: Any) -> Any | None:
    """``max(x, 0)`` into a fresh array, split over threads when large; None for CuPy or a 0-d ``x``.

    Args:
        x: The op's input.

    Returns:
        The result, or None where the routine does not apply.
    """
    if type(x) is not np.ndarray or not x.ndim:
        return None
    y = np.empty(x.shape, x.dtype)
    parallel.split(_relu_into, x, y)
    return y


def relu_grad(gy: Any, x: Any) -> Any | None:
    """``gy * (x > 0)`` into a fresh array, split over threads when large; None for CuPy, a 0-d ``gy`` or
    a ``gy`` of another shape than ``x`` (a broadcast the op's own code handles).

    Args:
        gy: The gradient of ReLU's output.
        x: ReLU's input.

    Returns:
        The gradient of ``x``, or None where the routine does not apply.
    """
    if type(gy) is not np.ndarray or gy.shape != x.shape or not gy.ndim:
        return None
    gx = np.empty(gy.shape, gy.dtype)
    parallel.split(_relu_grad_into, gy, x, gx)
    return gx


def _relu_into(x: Any, y: Any) -> None:
    lib = native.for_arrays(x, y, min_size=settings.NATIVE_RELU_MIN_ELEMENTS)
    if lib is not None:
        lib.relu_forward(x.size, x.ctypes.data, y.ctypes.data)  # one pass, the GIL released
        return
    np.maximum(x, 0, out=y)


def _relu_grad_into(gy: Any, x: Any, gx: Any) -> None:
    lib = native.for_arrays(gy, x, gx, min_size=settings.NATIVE_RELU_MIN_ELEMENTS)
    if lib is not None:
        lib.relu_backward(gy.size, gy.ctypes.data, x.ctypes.data, gx.ctypes.data)  # one pass, no temporary
        return
    np.multiply(gy, x > 0, out=gx)
