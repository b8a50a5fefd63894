"""Attention's row softmax in the native kernels, and its whole chain split over threads.

The row softmax of float32 scores and its backward run as native kernels from
``settings.NATIVE_SOFTMAX_MIN_ELEMENTS`` on: one kernel call per pass instead of NumPy's max,
subtract, exp, sum and divide passes.

Large NumPy attention (``settings.PARALLEL_MIN_ELEMENTS`` score elements on) is cut along a batch axis
into :func:`nurinet._runtime.parallel.parts` pieces, each running the op's whole chain for its slices
(products, scale, mask, softmax, dropout; in backward the four products and the softmax backward) on
its own thread, with one BLAS thread each: NumPy's stacked ``matmul`` runs its small products one
after the other on one core, and the products, the ufuncs and the native kernels all release the GIL.
Each element is computed by the same code either way. The chains themselves are the op's
(:mod:`nurinet.functional.attention`), handed in as functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nurinet._runtime import native, parallel, settings

__all__ = ["attend_backward_split", "attend_split", "softmax_rows", "softmax_rows_backward_"]


def softmax_rows(s: Any, dead: Any = None) -> tuple[Any, Any] | None:
    """Softmax over the last axis of ``s``, in place, by the native kernel; all ``-inf`` rows become zeros.

    Args:
        s: The scores, at least one key wide.
        dead: A bool ``(*, L, 1)`` array to mark the all ``-inf`` rows in (a slice of a larger one),
            or None for a fresh one.

    Returns:
        ``(s, dead)`` with ``dead`` None when no row is dead, or None where the kernel does not apply
        (CuPy, not float32 and C-contiguous, small, a strided ``dead``).
    """
    lib = native.for_arrays(s, min_size=settings.NATIVE_SOFTMAX_MIN_ELEMENTS)
    if lib is None or (dead is not None and not dead.flags.c_contiguous):
        return None
    if dead is None:
        dead = np.empty(s.shape[:-1] + (1,), dtype=np.bool_)
    lib.softmax_rows_forward(dead.size, s.shape[-1], s.ctypes.data, dead.ctypes.data)
    return s, (dead if dead.any() else None)


def softmax_rows_backward_(gp: Any, p: Any) -> Any | None:
    """The softmax backward ``gp = (gp - sum(gp * p)) * p`` over the last axis, in place, by the native kernel.

    Returns:
        ``gp``, or None where the kernel does not apply (CuPy, not float32 and C-contiguous, small,
        empty, shapes that differ).
    """
    lib = native.for_arrays(gp, p, min_size=settings.NATIVE_SOFTMAX_MIN_ELEMENTS)
    if lib is None or gp.shape != p.shape or not gp.size:
        return None
    lib.softmax_rows_backward(gp.size // gp.shape[-1], gp.shape[-1], p.ctypes.data, gp.ctypes.data)
    return gp


def attend_split(attend: Callable[..., tuple[Any, Any, Any, Any]], q: Any, k: Any, v: Any, scale: float,
                 mask: Any, drop: Any) -> tuple[Any, Any, Any, Any] | None:
    """The op's forward chain ``attend`` with each piece of the batch on its own thread, into slices of
    full arrays.

    Args:
        attend: ``attend(q, k, v, scale, mask, drop, s=, dead=, pd=, out=)``, the op's chain on arrays,
            writing into the given slices and returning ``(p, dead rows or None, pd, out)``.
        q: The queries ``(*, L, E)``.
        k: The keys ``(*, S, E)``.
        v: The values ``(*, S, Ev)``.
        scale: The score scale.
        mask: The additive mask, or None.
        drop: The dropout multiplier, or None.

    Returns:
        ``(p, dead rows or None, pd, out)`` for the whole batch, as ``attend`` returns them, or None
        where the work is not split (CuPy or mixed dtypes, no batch, too little work, no
        controllable OpenBLAS).
    """
    scores = _scores_shape(q, k, v)
    plan = None if scores is None else _split_plan(scores, q, k, v)
    if plan is None:
        return None
    with parallel.single_blas_thread() as single:
        if not single:  # OpenBLAS's threads would fight the pieces' threads: run it whole
            return None
        axis, ranges = plan
        ndim = len(scores)
        s = np.empty(scores, q.dtype)
        dead = np.empty(scores[:-1] + (1,), np.bool_)
        pd = s if drop is None else np.empty(scores, np.result_type(s, drop))
        out = np.empty(scores[:-1] + v.shape[-1:], np.result_type(pd, v))

        def piece(first: int, last: int) -> bool:
            def cut(x: Any) -> Any:
                return _cut(x, ndim, axis, first, last)

            _, any_dead, _, _ = attend(cut(q), cut(k), cut(v), scale, cut(mask), cut(drop), s=cut(s),
                                       dead=cut(dead), pd=None if drop is None else cut(pd), out=cut(out))
            return any_dead is not None

        found = parallel.run([lambda a=a, b=b: piece(a, b) for a, b in ranges])
    return s, (dead if any(found) else None), pd, out


def attend_backward_split(attend_backward: Callable[..., Any], q: Any, k: Any, v: Any, p: Any, pd: Any,
                          drop: Any, gout: Any, gw: Any, scale: float,
                          needs: tuple[bool, ...]) -> tuple[Any, Any, Any] | None:
    """The op's backward chain ``attend_backward`` with each piece of the batch on its own thread.

    Args:
        attend_backward: ``attend_backward(q, k, v, p, pd, drop, gout, gw, scale, needs, gq=, gk=, gv=)``,
            the op's backward chain on arrays, writing into the given slices.
        q: The queries.
        k: The keys.
        v: The values.
        p: The softmax weights forward kept.
        pd: The weights after dropout.
        drop: The dropout multiplier, or None.
        gout: The gradient of the output.
        gw: The gradient of the returned weights, or None.
        scale: The score scale.
        needs: Which of ``(q, k, v)`` want a gradient.

    Returns:
        ``(gq, gk, gv)`` in the broadcast batch shape (each None where not wanted), or None where the
        work is not split (as :func:`attend_split`).
    """
    plan = _split_plan(p.shape, q, k, v, gout)
    if plan is None:
        return None
    with parallel.single_blas_thread() as single:
        if not single:
            return None
        axis, ranges = plan
        ndim, batch = p.ndim, p.shape[:-2]
        gv = np.empty(batch + v.shape[-2:], np.result_type(pd, gout)) if needs[2] else None
        gdtype = np.result_type(gout, v)
        gq = np.empty(batch + q.shape[-2:], np.result_type(gdtype, k)) if needs[0] else None
        gk = np.empty(batch + k.shape[-2:], np.result_type(gdtype, q)) if needs[1] else None

        def piece(first: int, last: int) -> None:
            def cut(x: Any) -> Any:
                return _cut(x, ndim, axis, first, last)

            attend_backward(cut(q), cut(k), cut(v), cut(p), cut(pd), cut(drop), cut(gout), cut(gw), scale, needs,
                            gq=cut(gq), gk=cut(gk), gv=cut(gv))

        parallel.run([lambda a=a, b=b: piece(a, b) for a, b in ranges])
    return gq, gk, gv


def _scores_shape(q: Any, k: Any, v: Any) -> tuple[int, ...] | None:
    """The shape of the scores, (batch, L, S), or None when the batch dims do not broadcast (the
    unsplit code then raises NumPy's error)."""
    batch = q.shape[:-2]
    if not batch == k.shape[:-2] == v.shape[:-2]:
        try:
            batch = np.broadcast_shapes(batch, k.shape[:-2], v.shape[:-2])
        except ValueError:
            return None
    return tuple(batch) + (q.shape[-2], k.shape[-2])


def _split_plan(scores: tuple[int, ...], *arrays: Any) -> tuple[int, list[tuple[int, int]]] | None:
    """The batch axis along which to cut attention over ``scores``-shaped scores, and the ranges of
    its pieces; None to run it whole (CuPy or mixed dtypes, no batch, or too little work).

    The axis is the first batch axis longer than 1: the ones before it are all 1, so a slice along
    it of any C-contiguous array is C-contiguous too, and every array either has that axis in full
    (it is sliced) or broadcasts along it (each piece reads it whole).
    """
    axis = next((i for i, n in enumerate(scores[:-2]) if n > 1), None)
    if axis is None:
        return None
    length = scores[axis]
    pieces = parallel.parts(math.prod(scores), length)
    if pieces <= 1:
        return None
    dtype = arrays[0].dtype
    for x in arrays:
        if type(x) is not np.ndarray or x.dtype != dtype:
            return None
    return (axis, parallel.bounds(length, pieces)) if dtype.kind == "f" else None


def _cut(x: Any, ndim: int, axis: int, first: int, last: int) -> Any:
    """``x``'s part in the piece ``first:last`` along the scores' batch ``axis`` (of ``ndim`` dims):
    a slice, or all of ``x`` where it broadcasts along that axis."""
    if x is None:
        return None
    at = axis - (ndim - x.ndim)
    if at < 0 or x.shape[at] == 1:
        return x
    return x[(slice(None),) * at + (slice(first, last),)]
