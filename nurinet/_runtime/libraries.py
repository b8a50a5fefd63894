"""Finding the BLAS libraries with :mod:`ctypes`: NumPy's bundled OpenBLAS and Intel MKL.

A leaf: it imports no other part of nurinet but :mod:`.settings`. Everything that calls into a BLAS
(:mod:`.gemm`, :mod:`.blas`, :mod:`.native`, :mod:`nurinet.threads`) finds it here, so none of them
needs another.

OpenBLAS is looked up in the library NumPy bundles (``numpy.libs`` or ``numpy/.dylibs``) and in the
shared objects the process has loaded; MKL in the ``mkl`` package's ``libmkl_rt`` (the environment's
``lib`` folder, then the loader's path), through its 64-bit-integer interface.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from nurinet._runtime import settings

__all__ = ["bundled_libraries", "bundled_openblas", "find_symbol", "load_mkl", "openblas_threads",
           "threadpoolctl_blas"]

# OpenBLAS's setter and getter under the names its builds export: the plain build, the 64-bit-integer
# build, and the prefixed builds NumPy's wheels bundle (scipy-openblas).
_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_", "scipy_openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads")
_GETTERS = ("openblas_get_num_threads", "openblas_get_num_threads64_", "scipy_openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads")
_P, _I64, _I = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int

_state: dict[str, Any] = {}


def bundled_libraries() -> list[str]:
    """Paths of the OpenBLAS libraries NumPy ships, then those loaded in this process."""
    site = os.path.dirname(os.path.dirname(np.__file__))
    paths = []
    for folder in (os.path.join(site, "numpy.libs"), os.path.join(os.path.dirname(np.__file__), ".dylibs")):
        paths += sorted(glob.glob(os.path.join(folder, "*openblas*")))
    try:
        with open("/proc/self/maps") as maps:  # Linux: the shared objects already loaded.
            paths += sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        pass
    return list(dict.fromkeys(paths))


def find_symbol(lib: ctypes.CDLL, names: tuple[str, ...]) -> Any:
    """The first of ``names`` that ``lib`` exports, or None."""
    for name in names:
        func = getattr(lib, name, None)
        if func is not None:
            return func
    return None


def bundled_openblas() -> Iterator[ctypes.CDLL]:
    """NumPy's bundled OpenBLAS libraries, then those loaded in the process, each opened with ctypes."""
    for path in bundled_libraries():
        try:
            yield ctypes.CDLL(path)
        except OSError:
            continue


def _openblas_ctypes() -> tuple[Any, Any] | None:
    for lib in bundled_openblas():
        setter, getter = find_symbol(lib, _SETTERS), find_symbol(lib, _GETTERS)
        if setter is not None and getter is not None:
            setter.restype, getter.restype = None, ctypes.c_int
            setter.argtypes, getter.argtypes = [ctypes.c_int], []
            return setter, getter
    return None


def openblas_threads() -> tuple[Any, Any] | None:
    """OpenBLAS's thread-count (setter, getter) through ctypes, looked up once; None when not found."""
    if "openblas" not in _state:
        _state["openblas"] = _openblas_ctypes()
    return _state["openblas"]


def threadpoolctl_blas() -> list[Any] | None:
    """threadpoolctl's controllers of the loaded BLAS libraries, or None when it is not installed."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    controllers = ThreadpoolController().select(user_api="blas").lib_controllers
    return controllers or None


def _mkl_paths() -> list[str]:
    """Where the ``mkl`` package's runtime library may be: the environment's lib folder, then the loader's path."""
    folders = [os.path.join(sys.prefix, "lib"), os.path.join(sys.base_prefix, "lib")]
    found = [path for folder in folders for path in sorted(glob.glob(os.path.join(folder, "libmkl_rt.so*")))]
    return list(dict.fromkeys(found)) + ["libmkl_rt.so.3", "libmkl_rt.so.2"]


def load_mkl() -> tuple[dict[str, Any], str]:
    """MKL's routines bound with their signatures, and why not (``({}, reason)``) when it cannot be loaded."""
    errors = []
    for path in _mkl_paths():
        try:
            bound = _bind_mkl(ctypes.CDLL(path))
        except (OSError, AttributeError) as error:
            errors.append(f"{path}: {error}")
            continue
        # Read when MKL starts its OpenMP runtime, at its first threaded call (not when it loads).
        os.environ.setdefault("KMP_BLOCKTIME", settings.MKL_BLOCKTIME_MS)
        return bound, ""
    return {}, "; ".join(errors[:2])


def _bind_mkl(lib: ctypes.CDLL) -> dict[str, Any]:
    """ctypes signatures of the MKL routines nurinet calls (64-bit-integer interface)."""
    routines = {}
    for dtype, letter, scalar in ((np.float32, "s", ctypes.c_float), (np.float64, "d", ctypes.c_double)):
        gemm = getattr(lib, f"cblas_{letter}gemm_64")
        gemm.argtypes = [_I, _I, _I, _I64, _I64, _I64, scalar, _P, _I64, _P, _I64, scalar, _P, _I64]
        batched = getattr(lib, f"cblas_{letter}gemm_batch_strided_64")
        batched.argtypes = [_I, _I, _I, _I64, _I64, _I64, scalar, _P, _I64, _I64, _P, _I64, _I64, scalar, _P,
                            _I64, _I64, _I64]
        gemm.restype = batched.restype = None
        routines[np.dtype(dtype)] = (gemm, batched)
    global_threads, get_threads = lib.MKL_Set_Num_Threads, lib.mkl_get_max_threads
    global_threads.argtypes, global_threads.restype, get_threads.restype = [_I], None, _I
    local_threads = lib.MKL_Set_Num_Threads_Local
    local_threads.argtypes, local_threads.restype = [_I], _I

    def set_threads(count: int) -> None:
        # A thread-local count (threadpoolctl sets one, e.g. under scikit-learn) would shadow the
        # global one in this thread: 0 drops it.
        global_threads(count)
        local_threads(0)

    address = ctypes.cast(lib.cblas_sgemm_64, ctypes.c_void_p).value
    return {"lib": lib, "routines": routines, "set_threads": set_threads, "get_threads": get_threads,
            "sgemm_address": (address, 1)}
