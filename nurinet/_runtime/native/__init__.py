"""Optional native kernels: fused float32 loops in C, with NumPy twins as fallback.

Some hot loops are a chain of small element-wise steps that NumPy can only run as one pass over
memory each, with a Python round trip between them: the LSTM recurrence is a dozen ufuncs and a
matrix product per time step. ``kernels.c`` holds such loops as plain C (no Python C API).
:mod:`nurinet._runtime.compiled` builds it on first use with the system C compiler and loads it with
:mod:`ctypes`, which releases the GIL during each call; :func:`library`, :func:`available`,
:func:`reason` and :func:`set_enabled` are its, re-exported here.

Nothing here is required. Without a compiler, on an unsupported platform, with ``NURINET_NATIVE=0``
in the environment (``settings.NATIVE``), or after :func:`set_enabled` (False), :func:`library`
returns None and every caller runs its NumPy code, which computes the same thing (the tests compare the two).

Matrix products inside the kernels go to MKL when it is nurinet's matrix-product provider
(:mod:`nurinet.gemm`), else to the OpenBLAS that NumPy bundles (:func:`sgemm`), found under the names
of NumPy's own builds, whose integer width the name gives. The LSTM kernels can run their per-step
products in a GEMM of their own instead, which packs the constant weight once per sequence
(``settings.LSTM_PACKED_GEMM_MAX_HIDDEN``; ``small_sgemm`` exports it for the tests).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from nurinet._runtime import gemm, libraries
from nurinet._runtime.compiled import available, cache_dir, library, reason, set_enabled

__all__ = ["available", "cache_dir", "for_arrays", "library", "reason", "set_enabled", "sgemm"]

_SGEMM_NAMES = (("scipy_cblas_sgemm64_", 1), ("scipy_cblas_sgemm", 0))

_state: dict[str, Any] = {}


def for_arrays(*arrays: Any, min_size: int = 0, contiguous: bool = True) -> Any:
    """:func:`library`, if the kernels can take these arrays, else None.

    They take float32 NumPy arrays only (float64 and CuPy keep their NumPy code), C-contiguous unless
    ``contiguous`` is False (for callers that make their own copies); None entries are skipped. The
    first array must have at least ``min_size`` elements: below some size a ctypes call (a few
    microseconds) costs more than the passes it saves.
    """
    for array in arrays:
        if array is None:
            continue
        if type(array) is not np.ndarray or array.dtype != np.float32 or (contiguous and not array.flags.c_contiguous):
            return None
    if arrays[0].size < min_size:
        return None
    return library()


def sgemm() -> tuple[int, int] | None:
    """The ``cblas_sgemm`` the kernels call: (address, 1 if it takes 64-bit integers else 0), or None.

    MKL's when it is nurinet's matrix-product provider (:mod:`nurinet.gemm`), else NumPy's bundled one.
    """
    found = gemm.sgemm_function()
    if found is not None:
        return found
    if "sgemm" not in _state:
        _state["sgemm"] = _find_sgemm()
    return _state["sgemm"]


def _find_sgemm() -> tuple[int, int] | None:
    for lib in libraries.bundled_openblas():
        for name, int64 in _SGEMM_NAMES:
            func = getattr(lib, name, None)
            if func is not None:
                return ctypes.cast(func, ctypes.c_void_p).value, int64
    return None
