"""Every size floor and switch of nurinet's fast paths, in one place, read once from the environment.

Each fast path (a native C kernel, a threaded split, a BLAS call, an MKL product) pays a fixed cost per
call, so each runs only from a size at which it was measured to win; below it the NumPy code runs. The
measurements behind each value are in ``docs/performance.md`` ("Thresholds"), not here.

Every value below is a module attribute that the fast paths read at each call (``settings.NAME``), so a
test or a user may change it at run time; :mod:`nurinet._runtime.modes` changes them all at once
(:func:`~nurinet._runtime.modes.reference_only`, :func:`~nurinet._runtime.modes.forced`). Each can be
set before nurinet is imported with the environment variable ``NURINET_<NAME>`` (read once, here).

Switches:

* ``NATIVE`` (``NURINET_NATIVE``, ``0`` turns it off): use the C kernels where a compiler builds them.
* ``BLAS_HELPERS`` (``NURINET_BLAS_HELPERS``): one-pass ``axpby``/``axpy`` in optimizer updates.
* ``BLAS_PROVIDER`` (``NURINET_BLAS``: ``auto``, ``numpy`` or ``mkl``): who runs the matrix products
  from import on; :func:`nurinet.gemm.set_provider` changes the provider at run time.
* ``FUSED_PATHS`` (``NURINET_FUSED_PATHS``): the ops' fused array formulations of a computation
  they also have as a plain reference (the stride-1 convolution's wide rows, max pooling over
  disjoint windows by a reshape, the LSTM's whole-sequence kernels); off, the plain path runs.
* ``KEEP_FREED_MEMORY`` (``NURINET_KEEP_FREED_MEMORY``, ``0`` turns it off): on import, nurinet asks
  glibc to keep freed blocks for reuse (:mod:`nurinet._runtime.allocator`); read once, at import.
* ``ELEMENTWISE_THREADS`` (``NURINET_NUM_THREADS``): threads for large elementwise work; None
  (unset) lets :mod:`nurinet._runtime.parallel` decide at first use.

Size floors (a fast path runs from this size on) and ceilings:

* ``GEMM_MIN_MACS``: multiply-adds from which a product goes to MKL rather than NumPy's ``@``.
* ``NATIVE_GEMM_MIN_MACS``: multiply-adds from which a float32 product goes to nurinet's own GEMM
  (``native/gemm.c``) rather than NumPy's ``@``, when that GEMM is the provider; below it the ctypes
  call costs more than it saves. ``NATIVE_GEMM_THREAD_MIN_MACS``: from which it runs on several threads.
  ``NATIVE_GEMM_MIN_SIDE``: the fewest rows and the shallowest depth it takes.
* ``COLUMN_SUMS_MIN_ELEMENTS``: elements from which a 2-D array's column sums (a linear layer's bias
  gradient) are a BLAS matrix-vector product rather than NumPy's reduction.
* ``BLAS_MIN_ELEMENTS``: elements from which ``axpby``/``axpy`` replace NumPy's passes.
* ``PARALLEL_MIN_ELEMENTS``: elements from which elementwise work is split over threads.
* ``NATIVE_RELU_MIN_ELEMENTS``: elements from which ReLU (forward and backward) runs in C.
* ``RELU_BIAS_PASS_MAX_ELEMENTS``: elements up to which ``LinearReLU``'s backward takes the ReLU gradient
  and the bias gradient in one native pass on one thread; above, the threaded ReLU gradient and the BLAS's
  column sums.
* ``NATIVE_ADAM_MIN_ELEMENTS``: elements of a parameter from which Adam's update runs in C.
* ``NATIVE_SGD_MIN_ELEMENTS``: elements of a parameter from which SGD's momentum update runs in C;
  ``NATIVE_POOL_MIN_ELEMENTS``: from which it runs on the native GEMM's threads.
* ``NATIVE_NORM_MIN_ELEMENTS``: elements from which a normalization over the last axis (layer norm)
  runs in C, forward and backward.
* ``NATIVE_SOFTMAX_MIN_ELEMENTS``: elements of the attention scores from which their row softmax
  (forward and backward) runs in C.
* ``LSTM_MIN_ROWS_PER_THREAD``: batch rows each thread of the native LSTM recurrence must get.
* ``LSTM_SINGLE_THREAD_STEP_MACS``: multiply-adds (``batch * hidden * 4 hidden``) up to which the
  per-step products of a fused LSTM run on one BLAS thread; 0 (the default) leaves them on NumPy's
  BLAS threads. Worth setting (``1 << 23`` covers the benchmark LSTM) on an oversubscribed machine.
* ``LSTM_PACKED_GEMM_MAX_HIDDEN``: hidden size up to which the native LSTM kernels run their per-step
  products ``h @ W^T`` and ``d @ W`` in their own GEMM, which packs the weight once per sequence,
  instead of OpenBLAS's ``sgemm`` (never with MKL; on builds with AVX-512 only); 0 turns it off.
* ``CONV_CHUNK_BYTES``: bytes of column matrix per chunk of the stride-1 convolution (chunks are
  what the threads share).
* ``CONV_DIRECT_MAX_TAPS``: input taps (channels x kernel area) up to which a convolution runs the
  native direct kernel instead of im2col + GEMM.
* ``BUFFER_MIN_BYTES``: bytes from which a freed work array is kept in the one buffer pool
  (:mod:`nurinet._runtime.buffers`: the convolutions' and the fused LSTM's) for the next step.
* ``MAX_DEFAULT_THREADS``: the most elementwise threads chosen without a setting.
* ``OPENBLAS_SPIN_LOG2``: log2 of the processor cycles NumPy's idle OpenBLAS threads spin before
  they sleep, set when nurinet is imported (:mod:`nurinet._runtime.spin`); 0 leaves OpenBLAS's own.
* ``NATIVE_GEMM_SPIN_LOG2``: log2 of the time-stamp-counter ticks the native GEMM's idle worker
  threads spin before they sleep (set when the GEMM is first used).
* ``MKL_BLOCKTIME_MS``: how long MKL's idle threads spin (``KMP_BLOCKTIME``, unless it is set).
* ``KEPT_MMAP_THRESHOLD``, ``KEPT_TRIM_THRESHOLD``: glibc's ``mallopt`` values that
  :func:`nurinet.allocator.keep_freed_memory` sets.

The C kernels' cache folder (``NURINET_CACHE_DIR``) is read when they are built, not here.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["FLOORS", "env_threads", "restore", "snapshot"]


def _env_int(name: str, default: int) -> int:
    """``NURINET_<name>`` as a non-negative integer, or ``default`` when it is unset."""
    raw = os.environ.get(f"NURINET_{name}", "").strip()
    if not raw:
        return default
    try:
        value = int(raw, 0)
    except ValueError:
        raise ValueError(f"NURINET_{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"NURINET_{name} must not be negative, got {raw!r}")
    return value


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return default if not raw else raw not in ("0", "false", "no", "off")


def env_threads() -> int | None:
    """``NURINET_NUM_THREADS``, or None: then the thread pool decides at first use."""
    raw = os.environ.get("NURINET_NUM_THREADS", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"NURINET_NUM_THREADS must be a positive integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"NURINET_NUM_THREADS must be a positive integer, got {raw!r}")
    return value


# Switches.
NATIVE: bool = _env_flag("NURINET_NATIVE", True)
BLAS_HELPERS: bool = _env_flag("NURINET_BLAS_HELPERS", True)
FUSED_PATHS: bool = _env_flag("NURINET_FUSED_PATHS", True)
KEEP_FREED_MEMORY: bool = _env_flag("NURINET_KEEP_FREED_MEMORY", True)
BLAS_PROVIDER: str = os.environ.get("NURINET_BLAS", "auto").strip().lower() or "auto"
ELEMENTWISE_THREADS: int | None = env_threads()

# Size floors and ceilings (see the module docstring; figures in docs/performance.md).
GEMM_MIN_MACS: int = _env_int("GEMM_MIN_MACS", 1 << 15)
NATIVE_GEMM_MIN_MACS: int = _env_int("NATIVE_GEMM_MIN_MACS", 1 << 17)
NATIVE_GEMM_THREAD_MIN_MACS: int = _env_int("NATIVE_GEMM_THREAD_MIN_MACS", 1 << 18)
NATIVE_GEMM_MIN_SIDE: int = _env_int("NATIVE_GEMM_MIN_SIDE", 16)
BLAS_MIN_ELEMENTS: int = _env_int("BLAS_MIN_ELEMENTS", 1 << 14)
COLUMN_SUMS_MIN_ELEMENTS: int = _env_int("COLUMN_SUMS_MIN_ELEMENTS", 1 << 10)
PARALLEL_MIN_ELEMENTS: int = _env_int("PARALLEL_MIN_ELEMENTS", 1 << 18)
NATIVE_RELU_MIN_ELEMENTS: int = _env_int("NATIVE_RELU_MIN_ELEMENTS", 1 << 14)
RELU_BIAS_PASS_MAX_ELEMENTS: int = _env_int("RELU_BIAS_PASS_MAX_ELEMENTS", 1 << 21)
NATIVE_ADAM_MIN_ELEMENTS: int = _env_int("NATIVE_ADAM_MIN_ELEMENTS", 1 << 12)
NATIVE_SGD_MIN_ELEMENTS: int = _env_int("NATIVE_SGD_MIN_ELEMENTS", 1 << 12)
NATIVE_POOL_MIN_ELEMENTS: int = _env_int("NATIVE_POOL_MIN_ELEMENTS", 1 << 16)
NATIVE_NORM_MIN_ELEMENTS: int = _env_int("NATIVE_NORM_MIN_ELEMENTS", 1 << 12)
NATIVE_SOFTMAX_MIN_ELEMENTS: int = _env_int("NATIVE_SOFTMAX_MIN_ELEMENTS", 1 << 11)
LSTM_MIN_ROWS_PER_THREAD: int = _env_int("LSTM_MIN_ROWS_PER_THREAD", 8)
LSTM_SINGLE_THREAD_STEP_MACS: int = _env_int("LSTM_SINGLE_THREAD_STEP_MACS", 0)
LSTM_PACKED_GEMM_MAX_HIDDEN: int = _env_int("LSTM_PACKED_GEMM_MAX_HIDDEN", 1024)
CONV_CHUNK_BYTES: int = _env_int("CONV_CHUNK_BYTES", 3 << 20)
CONV_DIRECT_MAX_TAPS: int = _env_int("CONV_DIRECT_MAX_TAPS", 27)
BUFFER_MIN_BYTES: int = _env_int("BUFFER_MIN_BYTES", 1 << 20)
MAX_DEFAULT_THREADS: int = _env_int("MAX_DEFAULT_THREADS", 2)
MKL_BLOCKTIME_MS: str = str(_env_int("MKL_BLOCKTIME_MS", 1))
OPENBLAS_SPIN_LOG2: int = _env_int("OPENBLAS_SPIN_LOG2", 20)
NATIVE_GEMM_SPIN_LOG2: int = _env_int("NATIVE_GEMM_SPIN_LOG2", 20)
KEPT_MMAP_THRESHOLD: int = _env_int("KEPT_MMAP_THRESHOLD", 32 << 20)  # glibc's largest on 64-bit systems
KEPT_TRIM_THRESHOLD: int = _env_int("KEPT_TRIM_THRESHOLD", 1 << 30)

# The floors that forced() sets to their minimum (1: any non-empty array qualifies).
FLOORS = ("GEMM_MIN_MACS", "NATIVE_GEMM_MIN_MACS", "NATIVE_GEMM_THREAD_MIN_MACS", "NATIVE_GEMM_MIN_SIDE", "BLAS_MIN_ELEMENTS",
          "COLUMN_SUMS_MIN_ELEMENTS", "PARALLEL_MIN_ELEMENTS", "NATIVE_RELU_MIN_ELEMENTS",
          "NATIVE_ADAM_MIN_ELEMENTS", "NATIVE_SGD_MIN_ELEMENTS", "NATIVE_POOL_MIN_ELEMENTS", "NATIVE_NORM_MIN_ELEMENTS",
          "NATIVE_SOFTMAX_MIN_ELEMENTS",
          "LSTM_MIN_ROWS_PER_THREAD", "CONV_CHUNK_BYTES", "BUFFER_MIN_BYTES")
_NAMES = ("NATIVE", "BLAS_HELPERS", "FUSED_PATHS", "KEEP_FREED_MEMORY", "BLAS_PROVIDER", "ELEMENTWISE_THREADS", *FLOORS, "CONV_DIRECT_MAX_TAPS",
          "LSTM_SINGLE_THREAD_STEP_MACS", "LSTM_PACKED_GEMM_MAX_HIDDEN", "RELU_BIAS_PASS_MAX_ELEMENTS", "MAX_DEFAULT_THREADS", "MKL_BLOCKTIME_MS", "OPENBLAS_SPIN_LOG2", "KEPT_MMAP_THRESHOLD",
          "KEPT_TRIM_THRESHOLD", "NATIVE_GEMM_SPIN_LOG2")


def snapshot() -> dict[str, Any]:
    """Every setting's current value, for :func:`restore`."""
    values = globals()
    return {name: values[name] for name in _NAMES}


def restore(saved: dict[str, Any]) -> None:
    """Put back the values a :func:`snapshot` took."""
    globals().update(saved)
