"""How long NumPy's idle OpenBLAS threads spin before they sleep: shortened when nurinet is imported.

After each threaded matrix product an OpenBLAS worker thread busy-waits for the next one, by default
for 2**28 processor cycles (about 0.1 s), before it sleeps. nurinet's own threads (large elementwise
work, the convolution's chunks, the LSTM's batch halves: :mod:`nurinet._runtime.parallel`) need the
cores those workers spin on, and a step that alternates products and threaded elementwise work then
runs slower on two threads than on one. OpenBLAS takes the spin from ``OPENBLAS_THREAD_TIMEOUT``
(log2 of the cycles) only when it starts its threads, which NumPy does as it loads, usually before
nurinet is imported. So :func:`apply_default` hands the value to OpenBLAS's own reader
(``openblas_read_env``) and restarts its threads (``blas_thread_shutdown_`` then
``blas_thread_init``, the pair OpenBLAS runs around ``fork``); the environment is left as it was,
so child processes are not affected.

The spin is ``2 ** settings.OPENBLAS_SPIN_LOG2`` cycles: long enough that back-to-back products
find the workers awake, short enough that the core is free by the time nurinet's threads want it
(the figures behind the value are in docs/performance.md, "Default path"). Nothing is changed when
the user set ``OPENBLAS_THREAD_TIMEOUT`` (theirs wins), when ``NURINET_OPENBLAS_SPIN_LOG2=0``, or
when NumPy's BLAS is not an OpenBLAS that exports these functions (MKL, Accelerate, a GPU build).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from nurinet._runtime import libraries, settings

__all__ = ["apply_default", "is_applied"]

_NAMES = ("openblas_read_env", "blas_thread_shutdown_", "blas_thread_init")
_state: dict[str, Any] = {"applied": False}


def _functions() -> tuple[Any, Any, Any] | None:
    """OpenBLAS's env reader and thread stop/start functions in NumPy's OpenBLAS, or None."""
    for lib in libraries.bundled_openblas():
        found = [getattr(lib, name, None) for name in _NAMES]
        if all(f is not None for f in found):
            for function in found:
                function.argtypes, function.restype = [], ctypes.c_int
            return tuple(found)
    return None


def apply_default() -> bool:
    """Shorten OpenBLAS's spin to ``2 ** settings.OPENBLAS_SPIN_LOG2`` cycles, unless the user chose.

    Returns:
        Whether the spin was changed (False: the user's setting, an opt-out, or no such OpenBLAS).
    """
    log2 = settings.OPENBLAS_SPIN_LOG2
    if _state["applied"] or log2 == 0 or os.environ.get("OPENBLAS_THREAD_TIMEOUT", "").strip():
        return _state["applied"]
    functions = _functions()
    if functions is None:
        return False
    read_env, shutdown, start = functions
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(log2)
    try:
        read_env()
    finally:
        del os.environ["OPENBLAS_THREAD_TIMEOUT"]
    shutdown()
    start()
    _state["applied"] = True
    return True


def is_applied() -> bool:
    """Whether :func:`apply_default` shortened OpenBLAS's spin in this process."""
    return _state["applied"]
