"""How many threads NumPy's BLAS (the matrix products) may use.

NumPy runs elementwise work on one core; only its BLAS library (OpenBLAS in the
wheels from PyPI) runs matrix products on several threads. This module reads and
sets that thread count at run time:

* through `threadpoolctl <https://github.com/joblib/threadpoolctl>`_ when it is
  installed (``pip install nurinet[threads]``), which knows OpenBLAS, MKL and BLIS;
* otherwise through OpenBLAS's own C function ``openblas_set_num_threads``, looked
  up with :mod:`ctypes` in the library NumPy bundles (``numpy.libs`` or
  ``numpy/.dylibs``) or in the shared objects the process has loaded.

When neither is found, the functions warn once and do nothing: the count is then
only controllable through environment variables.

Environment variables (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``,
``MKL_NUM_THREADS``, and ``OPENBLAS_THREAD_TIMEOUT``, which sets how long an idle
OpenBLAS thread spins before it sleeps) are read once, when NumPy loads its BLAS:
they must be set before the first ``import numpy`` (or ``import nurinet``), for
example in the shell. Setting them later changes nothing. :func:`set_num_threads`
works at any time.

:func:`set_elementwise_threads` (from :mod:`nurinet.parallel`) sets how many threads
nurinet's own large elementwise work (ReLU, max-pool, the convolutions' copies, Adam)
is split over; ``NURINET_NUM_THREADS`` sets it at import.

Example:
    >>> from nurinet import threads
    >>> with threads.limit_threads(1):   # small matrices: one thread is faster
    ...     pass                          # train here
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nurinet._runtime import gemm, libraries
from nurinet._runtime.parallel import (
    get_elementwise_threads,
    set_elementwise_threads,
    single_blas_thread,
)

__all__ = ["backend", "get_elementwise_threads", "get_num_threads", "limit_threads", "set_elementwise_threads",
           "set_num_threads", "single_blas_thread"]

_state: dict[str, Any] = {}


def _openblas() -> tuple[Any, Any] | None:
    """OpenBLAS's (setter, getter) through ctypes, or None (:func:`nurinet._runtime.libraries.openblas_threads`)."""
    return libraries.openblas_threads()


def _threadpoolctl_blas() -> list[Any] | None:
    return libraries.threadpoolctl_blas()


def backend() -> str:
    """Which mechanism controls the threads: ``"threadpoolctl"``, ``"openblas-ctypes"`` or ``"none"``."""
    if "backend" not in _state:
        if _threadpoolctl_blas() is not None:
            _state["backend"] = "threadpoolctl"
        else:
            _state["backend"] = "openblas-ctypes" if _openblas() else "none"
    return _state["backend"]


def _warn_unavailable() -> None:
    if not _state.get("warned"):
        _state["warned"] = True
        warnings.warn("nurinet.threads: found neither threadpoolctl nor NumPy's OpenBLAS, so the BLAS thread "
                      "count cannot be changed at run time; install threadpoolctl (pip install "
                      "'nurinet[threads]') or set OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS "
                      "before NumPy is imported", RuntimeWarning, stacklevel=3)


def get_num_threads() -> int | None:
    """The number of threads that run nurinet's products (MKL's or nurinet's own GEMM's when it is
    :mod:`nurinet.gemm`'s provider, else NumPy's BLAS's), or None when it cannot be read (with a warning)."""
    if gemm.owns_threads():
        return gemm.get_num_threads()
    kind = backend()
    if kind == "threadpoolctl":
        return max(c.num_threads for c in _threadpoolctl_blas() or [])
    if kind == "openblas-ctypes":
        return int(_openblas()[1]())
    _warn_unavailable()
    return None


def set_num_threads(n: int) -> None:
    """Let the products use ``n`` threads from now on (warns and does nothing when it cannot): MKL's or
    nurinet's own GEMM's when one of them is :mod:`nurinet.gemm`'s provider (NumPy's OpenBLAS then stays
    on one thread, so that two pools never spin against each other), else NumPy's BLAS.

    Args:
        n: A positive number of threads.

    Raises:
        ValueError: If ``n`` is not a positive integer.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer number of threads, got {n!r}")
    if gemm.owns_threads():  # they run the products; NumPy's OpenBLAS stays on one thread
        gemm.set_num_threads(n)
        return
    kind = backend()
    if kind == "threadpoolctl":
        for controller in _threadpoolctl_blas() or []:
            controller.set_num_threads(n)
    elif kind == "openblas-ctypes":
        _openblas()[0](n)
    else:
        _warn_unavailable()


@contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Use ``n`` BLAS threads inside the ``with`` block and restore the previous count after it.

    Args:
        n: A positive number of threads.

    Raises:
        ValueError: If ``n`` is not a positive integer.
    """
    before = get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        if before is not None:
            set_num_threads(before)
