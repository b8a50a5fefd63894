"""In-place ``y = a x + b y`` in one pass, through the BLAS routines ``axpby`` and ``axpy``.

NumPy has no fused multiply-add: ``y *= b; y += a * x`` costs it two or three passes over memory,
and an optimizer's arrays are out of cache after the backward pass, so each pass runs at memory
speed (``docs/performance.md`` has the figures). OpenBLAS,
the BLAS inside NumPy's wheels, has both routines and runs them on its threads.

They are found with :mod:`ctypes` in the OpenBLAS that NumPy bundles, under the names of its own
builds only (``scipy_cblas_saxpby64_`` and friends), whose integer width the name gives: a routine
under a plain name could take 32- or 64-bit sizes, and guessing wrong would corrupt memory. When MKL
runs nurinet's matrix products (:mod:`nurinet.gemm`), MKL's own routines are used instead
(``cblas_saxpby_64``): its threads are awake from the products, and NumPy's OpenBLAS is then held to
one thread. Where no routine is found (another BLAS), or for CuPy, small, strided, read-only or
mixed-dtype arrays, the functions return False and the caller runs its NumPy code. The results agree with NumPy's up to
rounding (``a x + b y`` may be rounded once instead of twice).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from nurinet._runtime import gemm, libraries, probe, settings

__all__ = ["available", "axpby", "axpy", "set_enabled"]

# (name, integer type) per routine and dtype letter: scipy-openblas64 (NumPy's wheels), then scipy-openblas32.
_NAMES = {
    "axpby": [("scipy_cblas_{t}axpby64_", ctypes.c_int64), ("scipy_cblas_{t}axpby", ctypes.c_int)],
    "axpy": [("scipy_cblas_{t}axpy64_", ctypes.c_int64), ("scipy_cblas_{t}axpy", ctypes.c_int)],
}
# MKL's 64-bit-integer interface (nurinet.gemm loads MKL).
_MKL_NAMES = {"axpby": [("cblas_{t}axpby_64", ctypes.c_int64)], "axpy": [("cblas_{t}axpy_64", ctypes.c_int64)]}
_LETTERS = {np.dtype(np.float32): ("s", ctypes.c_float), np.dtype(np.float64): ("d", ctypes.c_double)}
_state: dict[str, Any] = {"routines": {}}


def set_enabled(enabled: bool) -> bool:
    """Use the BLAS routines (True, the default) or always let callers run NumPy; returns the old value."""
    old, settings.BLAS_HELPERS = settings.BLAS_HELPERS, bool(enabled)
    return old


def available() -> bool:
    """Whether ``axpby`` and ``axpy`` were found for float32 and float64."""
    return len(_routines()) == 4


def axpby(alpha: float, x: Any, beta: float, y: Any) -> bool:
    """``y = alpha * x + beta * y`` in place, if the BLAS can do it; returns whether it did."""
    routine = _routine("axpby", x, y)
    if routine is None:
        return False
    if probe.counts is not None:  # tests only: which helpers ran
        probe.hit(f"blas.axpby.{y.dtype}")
    routine(y.size, alpha, x.ctypes.data, 1, beta, y.ctypes.data, 1)
    return True


def axpy(alpha: float, x: Any, y: Any) -> bool:
    """``y += alpha * x`` in place, if the BLAS can do it; returns whether it did."""
    routine = _routine("axpy", x, y)
    if routine is None:
        return False
    if probe.counts is not None:  # tests only: which helpers ran
        probe.hit(f"blas.axpy.{y.dtype}")
    routine(y.size, alpha, x.ctypes.data, 1, y.ctypes.data, 1)
    return True


def _routine(name: str, x: Any, y: Any) -> Any:
    """The ctypes function for ``name`` on these arrays, or None when NumPy must do the work."""
    if not settings.BLAS_HELPERS or type(x) is not np.ndarray or type(y) is not np.ndarray:
        return None
    if y.size < settings.BLAS_MIN_ELEMENTS or x.dtype != y.dtype or x.size != y.size:
        return None
    if not (x.flags.c_contiguous and y.flags.c_contiguous and y.flags.writeable) or np.may_share_memory(x, y):
        return None
    return _routines().get((name, y.dtype))


def _routines() -> dict[tuple[str, Any], Any]:
    """Every routine found in the BLAS that runs nurinet's products, keyed by (name, dtype); looked up once."""
    which = gemm.provider()
    found = _state["routines"].get(which)
    if found is None:
        found = _state["routines"][which] = _find_mkl_routines() if which == "mkl" else _find_routines()
    return found


def _find_routines() -> dict[tuple[str, Any], Any]:
    for lib in libraries.bundled_openblas():
        found = _collect(lib, _NAMES)
        if found:
            return found
    return {}


def _find_mkl_routines() -> dict[tuple[str, Any], Any]:
    return _collect(gemm._mkl()["lib"], _MKL_NAMES)


def _collect(lib: ctypes.CDLL, names: dict[str, list[tuple[str, Any]]]) -> dict[tuple[str, Any], Any]:
    found = {}
    for dtype, (letter, scalar) in _LETTERS.items():
        for name, candidates in names.items():
            routine = _bind(lib, name, letter, scalar, candidates)
            if routine is not None:
                found[(name, dtype)] = routine
    return found


def _bind(lib: ctypes.CDLL, name: str, letter: str, scalar: Any, candidates: list[tuple[str, Any]]) -> Any:
    """The first candidate symbol in ``lib``, with its argument types set, or None."""
    pointer = ctypes.c_void_p
    for pattern, integer in candidates:
        routine = getattr(lib, pattern.format(t=letter), None)
        if routine is None:
            continue
        routine.restype = None
        if name == "axpby":  # (n, alpha, x, incx, beta, y, incy)
            routine.argtypes = [integer, scalar, pointer, integer, scalar, pointer, integer]
        else:  # axpy: (n, alpha, x, incx, y, incy)
            routine.argtypes = [integer, scalar, pointer, integer, pointer, integer]
        return routine
    return None
