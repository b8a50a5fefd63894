"""Matrix products (GEMM) through one provider: nurinet's own GEMM, NumPy's own BLAS, or Intel MKL.

Every matrix product in nurinet's hot paths (``Linear``, ``matmul``, the convolutions' GEMMs, the
recurrences, attention) goes through :func:`matmul`. It runs the product in one of three providers:

* ``"native"``: nurinet's own single-precision GEMM (``native/gemm.c``, built by
  :mod:`nurinet._runtime.compiled`), on CPUs with AVX-512, where it runs the float32 products of
  training faster than NumPy's OpenBLAS (``docs/performance.md``); float64 and the rest go to NumPy;
* ``"numpy"``: NumPy's ``@``, that is the BLAS NumPy was built with (OpenBLAS in the wheels on PyPI);
* ``"mkl"``: Intel MKL's ``cblas_?gemm`` through :mod:`ctypes`, from the ``mkl`` package
  (``pip install 'nurinet[mkl]'``), faster than OpenBLAS on some CPUs (``docs/performance.md``).

``NURINET_BLAS`` picks one at import (``auto``, the default: the native GEMM when it can be built for
this CPU, else MKL when it can be loaded, else NumPy; ``native``; ``numpy``; ``mkl``),
:func:`set_provider` at run time, and :func:`provider` says which is in use. MKL and the native GEMM
take NumPy arrays whose matrices are C-contiguous or transposed views of C-contiguous arrays (MKL:
float32 and float64, stacks of matrices too; native: float32 matrices); anything else (CuPy, integer
or mixed dtypes, other strides, broadcast batch dims, tiny products) runs NumPy's ``@``. All give the
same result up to rounding. The native GEMM sums each element in the same order whatever its thread
count, so its results do not depend on the number of threads.

Two BLAS libraries each with its own thread pool must not spin against each other: MKL's idle
threads wait ``KMP_BLOCKTIME`` (set to a short wait before MKL loads, unless the environment sets
it) and NumPy's OpenBLAS gets no work from nurinet while MKL is in use. :func:`set_num_threads` and
:func:`single_thread` act on MKL's threads and the native GEMM's; :mod:`nurinet.threads` calls them.
Products from ``settings.GEMM_MIN_MACS`` multiply-adds on go to MKL (:mod:`nurinet._runtime.settings`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from nurinet._runtime import compiled, libraries, probe, settings
from nurinet.backend import get_array_module

__all__ = ["PROVIDERS", "gathered_products", "gathers", "get_num_threads", "matmul", "mkl_available", "native_available",
           "park_workers", "pool_threads", "provider", "set_num_threads", "set_provider", "sgemm_function", "single_thread"]

PROVIDERS = ("auto", "numpy", "mkl", "native")

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_state: dict[str, Any] = {"requested": settings.BLAS_PROVIDER}


def set_provider(name: str) -> str:
    """Run matrix products in ``name`` (``"auto"``, ``"numpy"``, ``"mkl"`` or ``"native"``) from now on;
    returns the old choice.

    Raises:
        ValueError: If ``name`` is not a provider.
        RuntimeError: If ``"mkl"`` or ``"native"`` is asked for and cannot be used (the message says why).
    """
    name = str(name).strip().lower()
    if name not in PROVIDERS:
        raise ValueError(f"gemm.set_provider: unknown provider {name!r}; choose one of {PROVIDERS}")
    if name == "mkl" and _mkl() is None:
        raise RuntimeError(f"gemm.set_provider: MKL cannot be used: {_state['mkl_reason']}. "
                           "Install it with pip install 'nurinet[mkl]'")
    if name == "native" and _native() is None:
        raise RuntimeError(f"gemm.set_provider: nurinet's own GEMM cannot be used: {_state['native_reason']}")
    old, _state["requested"] = _state["requested"], name
    _state.pop("active", None)
    return old


def provider() -> str:
    """The provider in use: ``"mkl"``, ``"native"`` or ``"numpy"``."""
    active = _state.get("active")
    if active is None:
        active = _state["active"] = _resolve()
        _share_cores(active)
    return active


def _share_cores(active: str) -> None:
    """With MKL or the native GEMM in use, NumPy's OpenBLAS gets one thread (its previous count comes
    back with NumPy as the provider).

    nurinet's products then run in the other provider's threads, and what still runs in OpenBLAS
    (``axpby`` in the SGD update, float64 products, a user's own ``np.dot``) would otherwise wake
    OpenBLAS's threads, which spin after each call on the cores the provider's threads need
    (docs/performance.md).
    """
    found = libraries.openblas_threads()
    if found is None:
        return
    setter, getter = found
    if active != "numpy":  # set again at each switch: another library may have changed it meanwhile
        _state.setdefault("openblas_threads", int(getter()))
        setter(1)
    elif "openblas_threads" in _state:
        setter(_state.pop("openblas_threads"))


def owns_threads() -> bool:
    """Whether the provider in use runs the products on threads of its own (MKL's, or nurinet's GEMM's
    pool), NumPy's OpenBLAS being held to one thread; False when NumPy's BLAS runs them."""
    return provider() != "numpy"


def mkl_available() -> bool:
    """Whether MKL's library can be loaded (loads it on the first call)."""
    return _mkl() is not None


def native_available() -> bool:
    """Whether nurinet's own GEMM can run here (builds the native library on the first call)."""
    return _native() is not None


def _resolve() -> str:
    requested = _state["requested"]
    if requested not in PROVIDERS:
        raise ValueError(f"NURINET_BLAS={requested!r} is not a provider; choose one of {PROVIDERS}")
    if requested == "numpy":
        return "numpy"
    # auto: nurinet's own GEMM first, where it builds (it ran every workload faster than MKL on the
    # AVX-512 machine measured: docs/performance.md), then MKL, then NumPy's BLAS.
    if requested in ("auto", "native") and _native() is not None:
        return "native"
    if requested == "native":
        raise RuntimeError(f"NURINET_BLAS=native, but nurinet's own GEMM cannot be used: "
                           f"{_state['native_reason']}; unset NURINET_BLAS")
    if _mkl() is not None:
        return "mkl"
    if requested == "mkl":
        raise RuntimeError(f"NURINET_BLAS=mkl, but MKL cannot be used: {_state['mkl_reason']}. "
                           "Install it with pip install 'nurinet[mkl]', or unset NURINET_BLAS")
    return "numpy"


def matmul(a: Any, b: Any, out: Any = None, bias: Any = None, relu: bool = False) -> Any:
    """``a @ b`` (NumPy's rules) in the provider in use, plus ``bias`` when it is given, through a ReLU
    with ``relu``; written into ``out`` when it is given.

    Args:
        a: An array of at least 2 dims.
        b: An array of at least 2 dims.
        out: Optional C-contiguous array of the result's shape and dtype.
        bias: Optional array added to the product (a linear layer's bias, broadcast over the rows);
            the native GEMM adds a float32 row vector as it stores the product, saving a pass.
        relu: Whether to store ``max(result, 0)`` (NaN stays NaN); the native GEMM applies it as it
            stores the product, saving another pass.

    Returns:
        The product (``out`` when given).
    """
    # The size test first: the tiny products of a small network pay for this check on every call.
    if a.size * b.shape[-1] >= settings.GEMM_MIN_MACS:
        active = _state.get("active") or provider()
        if active == "native":
            done = _native_matmul(a, b, out, bias, relu)
            if done is not None:
                return done
        elif active == "mkl":
            done = _mkl_matmul(a, b, out)
            if done is not None:
                return _finish(done, bias, relu)
    y = a @ b if out is None else get_array_module(a).matmul(a, b, out=out)  # CuPy arrays go to cupy.matmul
    return _finish(y, bias, relu)


def _finish(y: Any, bias: Any, relu: bool) -> Any:
    """``y`` plus ``bias``, through a ReLU with ``relu`` (in place)."""
    if bias is not None:
        y += bias
    return get_array_module(y).maximum(y, 0, out=y) if relu else y


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
    """Let the native GEMM, and MKL when it is loaded, use ``n`` threads."""
    _state["native_threads"] = int(n)
    lib = _state.get("mkl")
    if lib:
        lib["set_threads"](int(n))


def get_num_threads() -> int | None:
    """The thread count of the provider in use: MKL's or the native GEMM's; None for NumPy's BLAS
    (:mod:`nurinet.threads` reads that one)."""
    active = provider()
    if active == "native":
        return _native_threads()
    lib = _state.get("mkl")
    return int(lib["get_threads"]()) if lib and active == "mkl" else None


def gathered_products(a: Any, source: Any, offsets: Any, out: Any, *, k: int, n: int, samples: int, a_stride: int,
                      source_stride: int, out_stride: int, trans_b: bool, accumulate: int) -> bool:
    """Products whose right operand's rows are gathered from ``source``, in the native GEMM on the
    calling thread; returns whether it ran (False: not the native provider, or arrays it cannot take;
    the caller then builds the operand and uses :func:`matmul`).

    For each sample ``s``: ``out_s = a_s @ op(b_s)``, where ``a_s`` is ``a``'s first ``k`` columns
    shifted by ``s * a_stride`` elements, ``out_s`` is ``out`` shifted by ``s * out_stride``, and row
    ``r`` of the stored ``b_s`` starts at element ``s * source_stride + offsets[r]`` of ``source``
    (``k`` rows of ``n`` floats; with ``trans_b``, ``n`` rows of ``k`` floats, ``op(b_s)`` being their
    transpose). ``accumulate``: 0 writes each ``out_s``; 1 sums the samples into ``out`` (stride 0);
    2 adds that sum to what ``out`` holds. A stride-1 convolution reads its windows this way straight
    from its padded input (:mod:`nurinet._runtime.fast.conv`).
    """
    if not gathers():
        return False
    if any(type(x) is not np.ndarray or x.dtype != _F32 or not x.flags.c_contiguous for x in (a, source, out)):
        return False
    if (not out.flags.writeable or type(offsets) is not np.ndarray or offsets.dtype != np.int64
            or not offsets.flags.c_contiguous):
        return False
    probe.hit("native.gemm_gathered")
    _state["gathered"](
        a.shape[0], n, k, 0, a.ctypes.data, a.shape[1], a_stride, int(trans_b), source.ctypes.data, offsets.ctypes.data,
        source_stride, out.ctypes.data, out.shape[-1], out_stride, samples, accumulate, 1)
    return True


def gathers() -> bool:
    """Whether :func:`gathered_products` can run now (nurinet's own GEMM is the provider and native code
    is on), so that a caller prepares its offset table and output only then."""
    return (_state.get("active") or provider()) == "native" and settings.NATIVE


def pool_threads(size: int) -> int:
    """Threads for native work of ``size`` elements on the native GEMM's pool: its thread count where
    that GEMM is the provider (its workers are then the ones already awake) and the work is at least
    ``settings.NATIVE_POOL_MIN_ELEMENTS``, else 1."""
    if size < settings.NATIVE_POOL_MIN_ELEMENTS or (_state.get("active") or provider()) != "native":
        return 1
    return _native_threads()


def park_workers() -> None:
    """Let the native GEMM's idle workers sleep now rather than spin: called before nurinet hands work
    to its own elementwise threads, which need the cores (:mod:`nurinet._runtime.parallel`)."""
    park = _state.get("park")
    if park is not None:
        park()


def _native_threads() -> int:
    """The native GEMM's thread count: set by :func:`set_num_threads`, else ``OPENBLAS_NUM_THREADS`` or
    ``OMP_NUM_THREADS`` as a user limiting NumPy's BLAS expects, else the CPUs this process may use."""
    count = _state.get("native_threads")
    if count is None:
        count = _state["native_threads"] = _threads_from_environment()
    return count


def _threads_from_environment() -> int:
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        raw = os.environ.get(name, "").strip()
        if raw.isdigit() and int(raw) > 0:
            return int(raw)
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


@contextmanager
def single_thread() -> Iterator[None]:
    """The provider's products on one thread inside the block (for products already split over
    threads); NumPy's own BLAS is left as it is (see :func:`nurinet.threads.single_blas_thread`)."""
    active = provider()
    lib = _state.get("mkl")
    if active == "native":
        before, _state["native_threads"] = _native_threads(), 1
        try:
            yield
        finally:
            _state["native_threads"] = before
        return
    if not lib or active != "mkl":
        yield
        return
    before = int(lib["get_threads"]())
    lib["set_threads"](1)
    try:
        yield
    finally:
        lib["set_threads"](before)


def _native_matmul(a: Any, b: Any, out: Any, bias: Any, relu: bool) -> Any:
    """The product (plus ``bias``) through nurinet's own GEMM, or None when these arrays must go to NumPy."""
    if (type(a) is not np.ndarray or type(b) is not np.ndarray or a.ndim != 2 or b.ndim != 2
            or a.dtype != _F32 or b.dtype != _F32 or not settings.NATIVE):
        return None
    (m, k), n = a.shape, b.shape[1]
    macs = m * n * k
    # Few rows or a shallow depth (a 10-class layer's gradient products) fill the register tile
    # poorly, and NumPy's BLAS is quicker there; few columns are fine (docs/performance.md).
    if macs < settings.NATIVE_GEMM_MIN_MACS or b.shape[0] != k or min(m, k) < settings.NATIVE_GEMM_MIN_SIDE:
        return None
    layout_a, layout_b = _layout(a), _layout(b)
    if layout_a is None or layout_b is None:
        return None
    if out is None:
        out = np.empty((m, n), _F32)
    elif (type(out) is not np.ndarray or out.shape != (m, n) or out.dtype != _F32 or not out.flags.c_contiguous
          or not out.flags.writeable or np.may_share_memory(out, a) or np.may_share_memory(out, b)):
        return None
    # A bias inside `out` would be overwritten by the rows stored before it is read: added after.
    fused = (bias is not None and type(bias) is np.ndarray and bias.dtype == _F32 and bias.shape == (n,)
             and bias.flags.c_contiguous and not np.may_share_memory(bias, out))
    threads = _native_threads() if macs >= settings.NATIVE_GEMM_THREAD_MIN_MACS else 1
    probe.hit("native.gemm")
    # The ReLU is applied in the store only together with the bias (a bias added afterwards must come first).
    rectify = relu and (fused or bias is None)
    _state["native"](m, n, k, layout_a[0] == _TRANS, a.ctypes.data, layout_a[1], layout_b[0] == _TRANS,
                     b.ctypes.data, layout_b[1], bias.ctypes.data if fused else None, int(rectify), out.ctypes.data, n,
                     threads)
    return _finish(out, bias, relu) if bias is not None and not fused else out


_F32 = np.dtype(np.float32)


def _native() -> Any:
    """The native GEMM's entry point (loads the library once), or None with the reason in
    ``_state['native_reason']``."""
    if "native" not in _state:
        lib = compiled.raw_library()
        if lib is None:
            _state["native"], _state["native_reason"] = None, compiled.reason() or "the native library is off"
        elif not lib.nn_gemm_supported():
            _state["native"], _state["native_reason"] = None, "this CPU or compiler has no AVX-512 (x86-64 Linux)"
        else:
            lib.nn_gemm_set_spin(1 << settings.NATIVE_GEMM_SPIN_LOG2)
            _state["native"], _state["native_reason"] = lib.nn_sgemm, ""
            _state["gathered"], _state["park"] = lib.nn_sgemm_gathered, lib.nn_gemm_park
    return _state["native"]


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
