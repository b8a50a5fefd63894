"""Matrix products (GEMM) through one provider: NumPy's own BLAS, or Intel MKL when it is installed.

Every matrix product in nurinet's hot paths (``Linear``, ``matmul``, the convolutions' GEMMs, the
recurrences, attention) goes through :func:`matmul`. It runs the product in one of two providers:

* ``"numpy"``: NumPy's ``@``, that is the BLAS NumPy was built with (OpenBLAS in the wheels on PyPI);
* ``"mkl"``: Intel MKL's ``cblas_?gemm`` through :mod:`ctypes`, from the ``mkl`` package
  (``pip install 'nurinet[mkl]'``), faster than OpenBLAS on some CPUs (``docs/performance.md``).

``NURINET_BLAS`` picks one at import (``auto``, the default: MKL when it can be loaded, else NumPy;
``numpy``; ``mkl``), :func:`set_provider` at run time, and :func:`provider` says which is in use.
MKL takes float32 and float64 NumPy arrays whose matrices are C-contiguous or transposed views of
C-contiguous arrays; anything else (CuPy, integer or mixed dtypes, other strides, broadcast batch
dims, tiny products) runs NumPy's ``@``. Both give the same result up to rounding.

Two BLAS libraries each with its own thread pool must not spin against each other: MKL's idle
threads wait ``KMP_BLOCKTIME`` (set to a short wait before MKL loads, unless the environment sets
it) and NumPy's OpenBLAS gets no work from nurinet while MKL is in use. :func:`set_num_threads` and
:func:`single_thread` act on MKL's threads; :mod:`nurinet.threads` calls them. Products from
``settings.GEMM_MIN_MACS`` multiply-adds on go to MKL (:mod:`nurinet._runtime.settings`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from nurinet._runtime import libraries, probe, settings
from nurinet.backend import get_array_module

__all__ = ["PROVIDERS", "get_num_threads", "matmul", "mkl_available", "provider", "set_num_threads", "set_provider",
           "sgemm_function", "single_thread"]

PROVIDERS = ("auto", "numpy", "mkl")

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_state: dict[str, Any] = {"requested": settings.BLAS_PROVIDER}


def set_provider(name: str) -> str:
    """Run matrix products in ``name`` (``"auto"``, ``"numpy"`` or ``"mkl"``) from now on; returns the old choice.

    Raises:
        ValueError: If ``name`` is not a provider.
        RuntimeError: If ``"mkl"`` is asked for and MKL cannot be loaded (the message says why).
    """
    name = str(name).strip().lower()
    if name not in PROVIDERS:
        raise ValueError(f"gemm.set_provider: unknown provider {name!r}; choose one of {PROVIDERS}")
    if name == "mkl" and _mkl() is None:
        raise RuntimeError(f"gemm.set_provider: MKL cannot be used: {_state['mkl_reason']}. "
                           "Install it with pip install 'nurinet[mkl]'")
    old, _state["requested"] = _state["requested"], name
    _state.pop("active", None)
    return old


def provider() -> str:
    """The provider in use: ``"mkl"`` or ``"numpy"``."""
    active = _state.get("active")
    if active is None:
        active = _state["active"] = _resolve()
        _share_cores(active)
    return active


def _share_cores(active: str) -> None:
    """With MKL in use, NumPy's OpenBLAS gets one thread (its previous count comes back without MKL).

    nurinet's products then all run in MKL, and what still runs in OpenBLAS (``axpby`` in the SGD
    update, a user's own ``np.dot``) would otherwise wake OpenBLAS's threads, which spin after each
    call (about 0.1 s) on the cores MKL's threads need, doubling the MLP's step (docs/performance.md).
    """
    found = libraries.openblas_threads()
    if found is None:
        return
    setter, getter = found
    if active == "mkl" and "openblas_threads" not in _state:
        _state["openblas_threads"] = int(getter())
        setter(1)
    elif active == "numpy" and "openblas_threads" in _state:
        setter(_state.pop("openblas_threads"))


def mkl_available() -> bool:
    """Whether MKL's library can be loaded (loads it on the first call)."""
    return _mkl() is not None


def _resolve() -> str:
    requested = _state["requested"]
    if requested not in PROVIDERS:
        raise ValueError(f"NURINET_BLAS={requested!r} is not a provider; choose one of {PROVIDERS}")
    if requested == "numpy":
        return "numpy"
    if _mkl() is not None:
        return "mkl"
    if requested == "mkl":
        raise RuntimeError(f"NURINET_BLAS=mkl, but MKL cannot be used: {_state['mkl_reason']}. "
                           "Install it with pip install 'nurinet[mkl]', or unset NURINET_BLAS")
    return "numpy"


def matmul(a: Any, b: Any, out: Any = None) -> Any:
    """``a @ b`` (NumPy's rules) in the provider in use; written into ``out`` when it is given.

    Args:
        a: An array of at least 2 dims.
        b: An array of at least 2 dims.
        out: Optional C-contiguous array of the result's shape and dtype.

    Returns:
        The product (``out`` when given).
    """
    # The size test first: the tiny products of a small network pay for this check on every call.
    if a.size * b.shape[-1] >= settings.GEMM_MIN_MACS and (_state.get("active") or provider()) == "mkl":
        done = _mkl_matmul(a, b, out)
        if done is not None:
            return done
    if out is None:
        return a @ b
    return get_array_module(a).matmul(a, b, out=out)  # CuPy arrays go to cupy.matmul


def column_sums(a: Any) -> Any:
    """The sums of a 2-D array's columns (``a.sum(axis=0)``), as a matrix-vector product where it pays.

    NumPy reduces a C-ordered array over its rows one row at a time; the BLAS's ``ones @ a`` reads
    the same memory in a blocked kernel, two to four times faster from about a thousand elements
    (docs/performance.md). Smaller arrays, other dtypes, CuPy arrays and ``settings.BLAS_HELPERS`` off
    (:func:`~nurinet._runtime.modes.reference_only`) take the reduction.
    """
    if (type(a) is np.ndarray and a.dtype in _BLAS_FLOATS and a.size >= settings.COLUMN_SUMS_MIN_ELEMENTS
            and settings.BLAS_HELPERS):
        return np.ones(a.shape[0], a.dtype) @ a
    return np.add.reduce(a, 0) if type(a) is np.ndarray else a.sum(axis=0)


_BLAS_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def sgemm_function() -> tuple[int, int] | None:
    """MKL's ``cblas_sgemm_64`` as (address, 1: 64-bit integers) when MKL is the provider, else None.

    For native kernels that call the product themselves (the LSTM recurrence); None means they use
    NumPy's own BLAS.
    """
    if provider() != "mkl":
        return None
    return _mkl()["sgemm_address"]


def set_num_threads(n: int) -> None:
    """Let MKL use ``n`` threads (nothing when MKL is not loaded)."""
    lib = _state.get("mkl")
    if lib:
        lib["set_threads"](int(n))


def get_num_threads() -> int | None:
    """MKL's thread count, or None when MKL is not loaded."""
    lib = _state.get("mkl")
    return int(lib["get_threads"]()) if lib else None


@contextmanager
def single_thread() -> Iterator[None]:
    """MKL on one thread inside the block (for products already split over threads); a no-op without MKL."""
    lib = _state.get("mkl")
    if not lib or provider() != "mkl":
        yield
        return
    before = int(lib["get_threads"]())
    lib["set_threads"](1)
    try:
        yield
    finally:
        lib["set_threads"](before)


def _mkl_matmul(a: Any, b: Any, out: Any) -> Any:
    """The product through MKL, or None when these arrays must go to NumPy."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim < 2 or b.ndim < 2:
        return None
    (m, k), n = a.shape[-2:], b.shape[-1]
    if m * n * k < settings.GEMM_MIN_MACS or b.shape[-2] != k or a.dtype != b.dtype or a.shape[:-2] != b.shape[:-2]:
        return None
    routines = _mkl()["routines"].get(a.dtype)
    if routines is None:
        return None
    layout_a, layout_b = _layout(a), _layout(b)
    if layout_a is None or layout_b is None:
        return None
    shape = a.shape[:-2] + (m, n)
    if out is None:
        out = np.empty(shape, a.dtype)
    elif type(out) is not np.ndarray or out.shape != shape or out.dtype != a.dtype or not out.flags.c_contiguous:
        return None
    (trans_a, lda), (trans_b, ldb) = layout_a, layout_b
    probe.hit("mkl.gemm" if a.ndim == 2 else "mkl.gemm_batch")
    if a.ndim == 2:
        routines[0](_ROW_MAJOR, trans_a, trans_b, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb, 0.0,
                    out.ctypes.data, n)
    else:
        batch = out.size // (m * n)
        routines[1](_ROW_MAJOR, trans_a, trans_b, m, n, k, 1.0, a.ctypes.data, lda, m * k, b.ctypes.data, ldb,
                    k * n, 0.0, out.ctypes.data, n, m * n, batch)
    return out


def _layout(x: Any) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) of a stack of matrices stored row-major, or None.

    A C-contiguous array is taken as it is; an array whose last two axes are swapped relative to a
    C-contiguous one (``w.T``, ``k.swapaxes(-1, -2)``) as the transpose of what is stored.
    """
    rows, cols = x.shape[-2:]
    if x.flags.c_contiguous:
        return _NO_TRANS, max(cols, 1)
    if x.ndim == 2:
        return (_TRANS, max(rows, 1)) if x.flags.f_contiguous else None
    return (_TRANS, max(rows, 1)) if x.swapaxes(-1, -2).flags.c_contiguous else None


def _mkl() -> Any:
    """MKL's routines (loaded once), or None with the reason in ``_state['mkl_reason']``."""
    if "mkl" not in _state:
        _state["mkl"], _state["mkl_reason"] = libraries.load_mkl()
    return _state["mkl"] or None
