"""The Adam and SGD-momentum updates in native kernels and, for a large parameter, on threads over flat slices."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nurinet._runtime import gemm, native, parallel, settings

__all__ = ["adam_update", "sgd_momentum_update"]


def adam_update(numpy_update: Callable[..., None], coefficients: Sequence[float], p: Any, grad: Any,
                exp_avg: Any, exp_avg_sq: Any, tmp: Any, max_exp_avg_sq: Any = None) -> bool:
    """One Adam update of ``p`` in place, on threads or in the native kernel; returns whether it ran.

    Where nurinet's own GEMM is the provider, a large parameter's slices run on its threads in the
    native kernel. Otherwise a large C-contiguous NumPy parameter is cut into flat slices, one per
    Python thread, each updated by the
    native kernel where it applies and by ``numpy_update`` (the optimizer's own arithmetic) otherwise.
    A parameter on one thread takes the native kernel or nothing (False: the caller runs its code).

    Args:
        numpy_update: ``numpy_update(coefficients, p, grad, exp_avg, exp_avg_sq, tmp, max_exp_avg_sq)``,
            the optimizer's arithmetic, for a slice the kernel does not take.
        coefficients: ``(beta1, beta2, sqrt(1 - beta2^t), eps, lr / (1 - beta1^t))``.
        p: The parameter.
        grad: Its gradient (weight decay and maximize already applied).
        exp_avg: The running average of the gradient.
        exp_avg_sq: The running average of its square.
        tmp: Work space of ``p``'s shape.
        max_exp_avg_sq: The largest ``exp_avg_sq`` so far (AMSGrad), or None.

    Returns:
        True where the update ran here, False where the caller must run it.
    """
    arrays = [p, grad, exp_avg, exp_avg_sq, tmp] + ([] if max_exp_avg_sq is None else [max_exp_avg_sq])
    threads = gemm.pool_threads(p.size)
    if threads > 1 and _native_adam(coefficients, *arrays, threads=threads):
        return True  # its slices ran on the native GEMM's threads, which hand them out cheaper
    if type(p) is np.ndarray and p.flags.c_contiguous and parallel.parts(p.size) > 1:
        # The same arithmetic on flat slices, one per thread (every array but the gradient is
        # C-contiguous, so the flat views write through).
        def update_slice(*parts: Any) -> None:
            if not _native_adam(coefficients, *parts):
                numpy_update(coefficients, *parts)

        parallel.split(update_slice, *(a.reshape(-1) for a in arrays))
        return True
    return threads <= 1 and _native_adam(coefficients, *arrays)  # a refusal above would be repeated


def _native_adam(coefficients: Sequence[float], p: Any, grad: Any, exp_avg: Any, exp_avg_sq: Any, tmp: Any,
                 max_exp_avg_sq: Any = None, threads: int = 1) -> bool:
    """The update in one pass by the native kernel ``adam_update``, if it applies (its slices on
    ``threads`` of the native GEMM's pool: :func:`gemm.pool_threads`); returns whether it ran.

    It applies to float32 NumPy arrays, all C-contiguous, with enough elements (CuPy, float64 or no
    native kernels: see :mod:`nurinet._runtime.native`).
    """
    arrays = (p, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)
    lib = native.for_arrays(*arrays, min_size=settings.NATIVE_ADAM_MIN_ELEMENTS)
    if lib is None or any(a is not None and a.size != p.size for a in arrays):
        return False
    if not p.flags.writeable or np.may_share_memory(p, grad):
        return False
    top = None if max_exp_avg_sq is None else max_exp_avg_sq.ctypes.data
    lib.nn_adam_update(p.size, p.ctypes.data, grad.ctypes.data, exp_avg.ctypes.data, exp_avg_sq.ctypes.data, top,
                       *coefficients, threads)
    return True


def sgd_momentum_update(p: Any, grad: Any, buf: Any, lr: float, momentum: float, dampening: float,
                        nesterov: bool) -> bool:
    """One SGD-with-momentum step of ``p`` and its momentum buffer in place, in the native kernel;
    returns whether it ran (False: the caller runs its own code). See ``sgd_momentum_update`` in
    ``native/kernels.c`` for the arithmetic.

    A large parameter's slices run on the native GEMM's threads (:func:`gemm.pool_threads`), not on
    Python threads, whose hand-off cost more than the split saved (docs/performance.md).
    """
    lib = native.for_arrays(p, grad, buf, min_size=settings.NATIVE_SGD_MIN_ELEMENTS)
    if (lib is None or grad.size != p.size or buf.size != p.size or not p.flags.writeable
            or np.may_share_memory(p, grad) or np.may_share_memory(buf, grad) or np.may_share_memory(p, buf)):
        return False
    lib.nn_sgd_momentum_update(p.size, p.ctypes.data, grad.ctypes.data, buf.ctypes.data, float(lr), float(momentum),
                               float(dampening), int(bool(nesterov)), gemm.pool_threads(p.size))
    return True
