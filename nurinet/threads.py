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

import ctypes
import glob
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nurinet import gemm
from nurinet.parallel import get_elementwise_threads, set_elementwise_threads

__all__ = ["backend", "get_elementwise_threads", "get_num_threads", "limit_threads", "set_elementwise_threads",
           "set_num_threads", "single_blas_thread"]

# OpenBLAS's setter and getter under the names its builds export: the plain build, the 64-bit-integer
# build, and the prefixed builds NumPy's wheels bundle (scipy-openblas).
_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_", "scipy_openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads")
_GETTERS = ("openblas_get_num_threads", "openblas_get_num_threads64_", "scipy_openblas_get_num_threads64_",
            "scipy_openblas_get_num_threads")

_state: dict[str, Any] = {}


def _bundled_libraries() -> list[str]:
    """Paths of the OpenBLAS libraries NumPy ships, then those loaded in this process."""
    import numpy as np

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


def _find_symbol(lib: ctypes.CDLL, names: tuple[str, ...]) -> Any:
    for name in names:
        func = getattr(lib, name, None)
        if func is not None:
            return func
    return None


def _bundled_openblas() -> Iterator[ctypes.CDLL]:
    """NumPy's bundled OpenBLAS libraries, then those loaded in the process, each opened with ctypes."""
    for path in _bundled_libraries():
        try:
            yield ctypes.CDLL(path)
        except OSError:
            continue


def _openblas_ctypes() -> tuple[Any, Any] | None:
    """OpenBLAS's (setter, getter) through ctypes, or None when no OpenBLAS is found."""
    for lib in _bundled_openblas():
        setter, getter = _find_symbol(lib, _SETTERS), _find_symbol(lib, _GETTERS)
        if setter is not None and getter is not None:
            setter.restype, getter.restype = None, ctypes.c_int
            setter.argtypes, getter.argtypes = [ctypes.c_int], []
            return setter, getter
    return None


def _openblas() -> tuple[Any, Any] | None:
    """:func:`_openblas_ctypes`, looked up once (the setter and getter every caller here uses)."""
    if "openblas" not in _state:
        _state["openblas"] = _openblas_ctypes()
    return _state["openblas"]


def _threadpoolctl_blas() -> list[Any] | None:
    """threadpoolctl's controllers of the loaded BLAS libraries, or None when it is not installed."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    import numpy  # noqa: F401  (load NumPy's BLAS so threadpoolctl sees it)

    controllers = ThreadpoolController().select(user_api="blas").lib_controllers
    return controllers or None


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
    """The number of threads the BLAS that runs nurinet's products uses (MKL's when it is
    :mod:`nurinet.gemm`'s provider, else NumPy's), or None when it cannot be read (with a warning)."""
    if gemm.provider() == "mkl":
        return gemm.get_num_threads()
    kind = backend()
    if kind == "threadpoolctl":
        return max(c.num_threads for c in _threadpoolctl_blas() or [])
    if kind == "openblas-ctypes":
        return int(_openblas()[1]())
    _warn_unavailable()
    return None


def set_num_threads(n: int) -> None:
    """Let the BLAS that runs nurinet's products use ``n`` threads from now on (warns and does nothing
    when it cannot): MKL when it is :mod:`nurinet.gemm`'s provider (NumPy's OpenBLAS then stays on one
    thread), else NumPy's BLAS.

    Args:
        n: A positive number of threads.

    Raises:
        ValueError: If ``n`` is not a positive integer.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive integer number of threads, got {n!r}")
    if gemm.provider() == "mkl":  # MKL runs the products; NumPy's OpenBLAS stays on one thread
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


@contextmanager
def single_blas_thread() -> Iterator[bool]:
    """One OpenBLAS (and MKL) thread inside the block (cheap: for hot paths); yields whether that was possible.

    For work that calls BLAS from several Python threads at once (one matrix product per thread):
    each product then runs on its caller's core instead of all of them fighting over OpenBLAS's
    pool. Uses OpenBLAS's own setter through ctypes (a fraction of a microsecond), never
    threadpoolctl; yields False, changing nothing, when it is not found (MKL, BLIS, a GPU build),
    so the caller can run its work on one thread instead.
    """
    found = _openblas()
    if found is None:
        yield False
        return
    setter, getter = found
    before = int(getter())
    setter(1)
    try:
        with gemm.single_thread():  # MKL too, when it runs nurinet's products
            yield True
    finally:
        setter(before)
