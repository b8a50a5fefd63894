"""ReLU on threads and in the native kernels: one pass, each thread writing its slice of the result."""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet._runtime import native, parallel, settings

__all__ = ["relu", "relu_grad", "relu_grad_with_column_sums"]


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


def relu_grad_with_column_sums(gy: Any, x: Any) -> tuple[Any, Any] | None:
    """``gy * (x > 0)`` and its column sums (the bias gradient of the linear layer under the ReLU), in one
    native pass.

    Args:
        gy: The gradient of ReLU's output, ``(N, C)``.
        x: ReLU's input or output (the same signs), ``(N, C)``.

    Returns:
        ``(gradient, column sums)``, or None where the kernel does not apply (CuPy, not float32 and
        C-contiguous, another shape, small arrays, or arrays above ``RELU_BIAS_PASS_MAX_ELEMENTS``: the
        pass runs on one thread, which beat the threaded :func:`relu_grad` and the BLAS's sums on
        (2048, 512) and lost on (8192, 4096); docs/performance.md).
    """
    lib = native.for_arrays(gy, x, min_size=settings.NATIVE_RELU_MIN_ELEMENTS)
    if lib is None or gy.ndim != 2 or gy.shape != x.shape or gy.size > settings.RELU_BIAS_PASS_MAX_ELEMENTS:
        return None
    gx, sums, total = np.empty_like(gy), np.empty(gy.shape[1], gy.dtype), np.empty(gy.shape[1], np.float64)
    lib.relu_backward_column_sums(gy.shape[0], gy.shape[1], gy.ctypes.data, x.ctypes.data, gx.ctypes.data,
                                  total.ctypes.data, sums.ctypes.data)
    return gx, sums


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
