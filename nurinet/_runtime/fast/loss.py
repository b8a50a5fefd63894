"""Softmax cross-entropy over class indices in the native kernels: one pass per row, no NumPy round trips.

A classifier's loss is a handful of small NumPy calls (the row maximum, the shift, exp, the row sums,
log, the targets' logits, two sums, the range check of the targets); each costs a few microseconds
however small the array, more inside a training step than in a loop of its own. The kernels do the
same in one call each way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet._runtime import native

__all__ = ["TargetsOutOfRange", "softmax_cross_entropy", "softmax_cross_entropy_backward"]


class TargetsOutOfRange(ValueError):
    """A target is not a class index of the logits (it may be an ``ignore_index``): the caller takes its
    general path, which handles or reports it."""


def softmax_cross_entropy(x: Any, target: Any) -> tuple[float, Any] | None:
    """The summed cross-entropy of the rows of logits ``x`` against class indices ``target``, and the
    softmax probabilities for the backward.

    Args:
        x: Logits ``(N, C)``.
        target: Class indices ``(N,)``.

    Returns:
        ``(sum over rows of -log softmax(x)[t], probabilities)``, or None where the kernel does not
        apply (CuPy, not float32 and C-contiguous, targets not an aligned C-contiguous int64 vector of
        N, empty).

    Raises:
        TargetsOutOfRange: A target is outside ``[0, C)``. The kernel reads each target twice (to
            check it, then to use it) without the GIL: ``target`` must be an array no other thread
            writes (the op passes its own copy).
    """
    lib = native.for_arrays(x)
    if lib is None or x.ndim != 2 or not x.size or not _indices_for(target, x.shape[0]):
        return None
    probabilities = np.empty_like(x)
    loss, bad = np.empty(1, np.float64), np.empty(1, np.int64)
    lib.softmax_xent_forward(x.shape[0], x.shape[1], x.ctypes.data, target.ctypes.data,
                             probabilities.ctypes.data, loss.ctypes.data, bad.ctypes.data)
    if bad[0]:
        raise TargetsOutOfRange(f"{int(bad[0])} target(s) outside [0, {x.shape[1]})")
    return float(loss[0]), probabilities


def softmax_cross_entropy_backward(probabilities: Any, target: Any, g: float) -> Any | None:
    """``probabilities * g`` less ``g`` at each row's target: the gradient of the summed loss times ``g``.

    ``target`` must be what :func:`softmax_cross_entropy` checked, unchanged (the kernel indexes with it).

    Returns:
        The gradient, or None where the kernel does not apply (as :func:`softmax_cross_entropy`).
    """
    lib = native.for_arrays(probabilities)
    if lib is None or probabilities.ndim != 2 or not _indices_for(target, probabilities.shape[0]):
        return None
    out = np.empty_like(probabilities)
    lib.softmax_xent_backward(probabilities.shape[0], probabilities.shape[1], probabilities.ctypes.data,
                              target.ctypes.data, g, out.ctypes.data)
    return out


def _indices_for(target: Any, rows: int) -> bool:
    return (type(target) is np.ndarray and target.dtype == np.int64 and target.shape == (rows,)
            and target.flags.c_contiguous and target.flags.aligned)
