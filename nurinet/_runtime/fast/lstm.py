"""The unmasked LSTM recurrence in the native kernels: when they run, on how many threads, and their calls.

The kernels ``lstm_forward`` and ``lstm_backward`` (``nurinet/_runtime/native/kernels.c``) are the C
level of the LSTM equations: a whole unmasked recurrence per call, per step one ``sgemm`` and the gate
arithmetic in one pass. :class:`~nurinet.functional.recurrent_lstm_sequence.LSTMKernels` calls
:func:`recurrence` with its whole-sequence buffers; where it returns None (CuPy, float64, no compiler,
``settings.NATIVE`` off) the op runs its own NumPy step code, which stays the reference, and keeps its
per-step products on the BLAS threads :func:`step_blas_threads` chooses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from nurinet._runtime import gemm, libraries, native, parallel, settings

__all__ = ["PACKED_MIN_HIDDEN", "native_kernels", "over_rows", "packed_gemm", "recurrence", "recurrence_backward",
           "step_blas_threads"]

# Below this hidden size the packed GEMM's padding to whole register tiles and its packing cost more
# than OpenBLAS's own re-packing of the weight saves.
PACKED_MIN_HIDDEN = 64


def native_kernels(xg: Any, h0: Any, c0: Any, w: Any, b: Any) -> tuple[Any, tuple[Any, Any]] | None:
    """The native kernel library and the ``sgemm`` it calls (see :func:`nurinet._runtime.native.sgemm`) when
    they can run this recurrence, else None.

    They run float32 NumPy arrays only (CuPy and float64 keep the NumPy code, which the float64
    gradient checks and PyTorch comparisons exercise); see :mod:`nurinet._runtime.native`.
    """
    lib = native.for_arrays(xg, h0, c0, w, b, contiguous=False)  # recurrence makes contiguous copies
    sgemm = native.sgemm() if lib is not None else None
    return None if sgemm is None else (lib, sgemm)


def recurrence(xg: Any, h0: Any, c0: Any, w: Any, b: Any, saved: tuple[Any, Any, Any, Any],
               reverse: bool) -> tuple[Any, tuple[Any, Any]] | None:
    """The recurrence forward in the kernel ``lstm_forward``, or None where it does not apply.

    Args:
        xg: The ``(T, N, 4H)`` input gates of every step (the input projection, unscaled).
        h0: The ``(N, H)`` initial hidden state.
        c0: The ``(N, H)`` initial cell state.
        w: The ``(4H, H)`` hidden weight.
        b: The ``(4H,)`` hidden bias, or None.
        saved: ``(gates, hs, cs, tcs)``, the op's whole-sequence buffers with the initial state in
            place; they receive the same contents as its NumPy code gives them (the gates'
            activations included), from unscaled pre-activations: the kernel computes σ and tanh itself.
        reverse: Whether the recurrence runs from the last step to the first.

    Returns:
        The kernels it ran (:func:`native_kernels`), for :func:`recurrence_backward`; or None, with
        ``saved`` untouched, where they do not apply.
    """
    found = native_kernels(xg, h0, c0, w, b)
    if found is None:
        return None
    lib, (sgemm, int64) = found
    steps, batch, hidden = xg.shape[0], xg.shape[1], saved[1].shape[-1]
    xg = np.ascontiguousarray(xg)
    bias = np.zeros(4 * hidden, np.float32) if b is None else np.ascontiguousarray(b)
    wt = np.ascontiguousarray(w.T)  # (H, 4H): OpenBLAS's fastest operand layout for h @ W^T
    pointers = [a.ctypes.data for a in (xg, bias, *saved, wt)]

    def rows(row0: int, row1: int) -> None:
        lib.lstm_forward(steps, batch, hidden, row0, row1, *pointers, int(reverse), sgemm, int64, packed_gemm(hidden))

    over_rows(rows, batch, hidden)
    return found


def recurrence_backward(found: Any, saved: tuple[Any, Any, Any], g_out: Any, grads: tuple[Any, Any, Any], w: Any,
                        needs_state: tuple[bool, bool], bias: bool, reverse: bool) -> Any:
    """The recurrence backward in the kernel ``lstm_backward``, after :func:`recurrence` ran.

    Args:
        found: What :func:`recurrence` returned.
        saved: ``(gates, cs, tcs)``, as :func:`recurrence` filled them.
        g_out: The ``(T, N, H)`` gradient of the outputs.
        grads: ``(d, dh, dc)``: the ``(T, N, 4H)`` gate gradients it writes, and the state gradients
            it carries back to ``h0`` and ``c0`` in place (each only where ``needs_state`` asks for it).
        w: The ``(4H, H)`` hidden weight.
        needs_state: Whether the gradients of ``h0`` and ``c0`` are needed.
        bias: Whether the hidden bias's gradient is needed.
        reverse: As given to :func:`recurrence`.

    Returns:
        The hidden bias's gradient (summed by the kernel, per thread, as it writes ``d``) when
        ``bias``, else None.
    """
    lib, (sgemm, int64) = found
    steps, batch, hidden = g_out.shape
    g_out = np.ascontiguousarray(g_out, dtype=np.float32)
    w = np.ascontiguousarray(w)
    d, dh, dc = grads
    pointers = [a.ctypes.data for a in (*saved, g_out, d, dh, dc, w)]

    def rows(row0: int, row1: int) -> Any:
        part = np.zeros(4 * hidden, dtype=np.float32) if bias else None
        lib.lstm_backward(steps, batch, hidden, row0, row1, *pointers, None if part is None else part.ctypes.data,
                          int(reverse), int(needs_state[0]), int(needs_state[1]), sgemm, int64, packed_gemm(hidden))
        return part

    parts = over_rows(rows, batch, hidden)
    return sum(parts[1:], parts[0]) if bias else None


def packed_gemm(hidden: int) -> int:
    """1 when the native LSTM kernels should run their per-step products in their own packed GEMM, else 0.

    That GEMM packs the hidden weight once per sequence where OpenBLAS packs it again at every step,
    but it runs on one thread: it is used when OpenBLAS would run the product on one thread too (the
    rows split over nurinet's threads, or ``settings.LSTM_SINGLE_THREAD_STEP_MACS``), for hidden sizes
    from ``PACKED_MIN_HIDDEN`` to ``settings.LSTM_PACKED_GEMM_MAX_HIDDEN``, and never with MKL, whose
    own product is as fast. Called inside :func:`over_rows`, which sets OpenBLAS's threads. The
    kernels follow it on builds with AVX-512 only, where the packed GEMM was measured to win.
    """
    if not PACKED_MIN_HIDDEN <= hidden <= settings.LSTM_PACKED_GEMM_MAX_HIDDEN or gemm.provider() == "mkl":
        return 0
    found = libraries.openblas_threads()
    return int(found is not None and int(found[1]()) == 1)


def over_rows(run_rows: Any, batch: int, hidden: int) -> list[Any]:
    """``run_rows(row0, row1)`` over the batch, in one call or split over nurinet's threads; the results.

    The rows of a recurrence never mix (row r of every state depends only on row r of the inputs),
    so each thread runs the whole recurrence for its own rows, with no hand-off between steps, and
    its own one-thread matrix products (OpenBLAS is set to one thread meanwhile: two threads each
    splitting a small product again would only fight over the cores).
    """
    pieces = min(parallel.get_elementwise_threads(), batch // settings.LSTM_MIN_ROWS_PER_THREAD)
    if pieces > 1:
        with parallel.single_blas_thread() as single:
            if single:
                return parallel.run([lambda a=a, b=b: run_rows(a, b) for a, b in parallel.bounds(batch, pieces)])
    with step_blas_threads(batch, hidden):
        return [run_rows(0, batch)]


@contextmanager
def step_blas_threads(batch: int, hidden: int) -> Iterator[None]:
    """One BLAS thread for the steps of a small recurrence (``settings.LSTM_SINGLE_THREAD_STEP_MACS``).

    The NumPy step code of the op runs inside it too: the setting is about the per-step products,
    whichever code makes them.
    """
    if batch * hidden * 4 * hidden > settings.LSTM_SINGLE_THREAD_STEP_MACS:  # also when the setting is 0: off
        yield
        return
    with parallel.single_blas_thread():
        yield
