"""Large elementwise NumPy work split over a few threads.

NumPy runs everything but its matrix products (BLAS) on one core. Its ufuncs,
copies and reductions release the GIL while they loop over a large array, so a
big elementwise job cut into pieces along one axis, each piece written into its
own slice of one result (``out=``), runs on several cores from plain Python
threads. That pays only for arrays well beyond a thread hand-off (tens of
microseconds), so work below :func:`get_min_elements` elements runs inline, as
before, and the results are the same either way: each element is computed by
the same code, only by another thread.

Controls:

* the ``NURINET_NUM_THREADS`` environment variable (read at import) and
  :func:`set_elementwise_threads` (``1`` turns threading off). The default, decided
  at first use, is the number of CPUs, at most 2 (where the measurements were made),
  when idle BLAS threads are kept from spinning (see below: ``OPENBLAS_THREAD_TIMEOUT``
  set, one BLAS thread, or MKL running the products), and 1 otherwise;
* :func:`set_min_elements`, the size from which work is split.

Both live in :mod:`nurinet._runtime.settings` (``ELEMENTWISE_THREADS``, ``PARALLEL_MIN_ELEMENTS``).

Only NumPy arrays are split (CuPy work already runs on the GPU); callers check
``type(array) is numpy.ndarray`` before using :func:`parts`.

BLAS and these threads share the cores: OpenBLAS's idle threads spin for a while
after each matrix product (about 0.1 s by default), taking a core away from the
second thread. Importing nurinet shortens that spin (:mod:`nurinet._runtime.spin`), and
so do ``OPENBLAS_THREAD_TIMEOUT`` set before NumPy loads, one BLAS thread, or MKL.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from nurinet._runtime import gemm, libraries, probe, settings, spin

__all__ = ["bounds", "get_elementwise_threads", "get_min_elements", "over_ranges", "parts", "run",
           "set_elementwise_threads", "set_min_elements", "single_blas_thread", "split"]


def _blas_spin_tamed() -> bool:
    """Whether idle BLAS threads will not hog a core: a short OpenBLAS spin timeout, a single BLAS
    thread, or MKL running the products (:mod:`nurinet.gemm` then holds OpenBLAS to one thread, and
    MKL's idle threads spin only ``settings.MKL_BLOCKTIME_MS``)."""
    if os.environ.get("OPENBLAS_THREAD_TIMEOUT", "").strip() or spin.is_applied():
        return True
    if any(os.environ.get(name, "").strip() == "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")):
        return True
    return gemm.provider() == "mkl"


def _threads_from_env() -> int | None:
    """``NURINET_NUM_THREADS`` as read at import (:mod:`nurinet._runtime.settings`), or None."""
    return settings.env_threads()


def _default_threads() -> int:
    # With OpenBLAS's default spin, a second thread finds its core taken by a spinning BLAS thread and
    # makes the step slower (docs/performance.md, "Thresholds").
    if not _blas_spin_tamed():
        return 1
    return max(1, min(settings.MAX_DEFAULT_THREADS, os.cpu_count() or 1))


def _threads() -> int:
    """The thread count, the default decided on the first call when no setting gave one."""
    threads = settings.ELEMENTWISE_THREADS
    if threads is None:
        threads = settings.ELEMENTWISE_THREADS = _default_threads()
    return threads


_state: dict[str, Any] = {"pool": None}
_lock = threading.Lock()
_local = threading.local()  # marks the pool's own threads: work they start runs inline (no nesting)


def _positive(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return value


def set_elementwise_threads(n: int) -> None:
    """Split large elementwise work over ``n`` threads from now on (``1``: no threading).

    Args:
        n: A positive number of threads (the calling thread counts as one).

    Raises:
        ValueError: If ``n`` is not a positive integer.
    """
    n = _positive(n, "n", "set_elementwise_threads")
    with _lock:
        pool, _state["pool"] = _state["pool"], None
        settings.ELEMENTWISE_THREADS = n
    if pool is not None:
        pool.shutdown(wait=True)


def get_elementwise_threads() -> int:
    """How many threads large elementwise work is split over (``1``: none)."""
    return _threads()


def set_min_elements(n: int) -> None:
    """Split only work on at least ``n`` elements (smaller work runs inline on the calling thread).

    Raises:
        ValueError: If ``n`` is not a positive integer.
    """
    settings.PARALLEL_MIN_ELEMENTS = _positive(n, "n", "set_min_elements")


def get_min_elements() -> int:
    """The size, in elements, from which elementwise work is split over threads."""
    return settings.PARALLEL_MIN_ELEMENTS


def parts(size: int, length: int | None = None) -> int:
    """Into how many pieces to cut work on ``size`` elements along an axis of ``length`` (1: inline)."""
    threads = settings.ELEMENTWISE_THREADS or _threads()
    if threads <= 1 or size < settings.PARALLEL_MIN_ELEMENTS or getattr(_local, "worker", False):
        return 1
    return max(1, min(threads, length if length is not None else threads))


def _pool(workers: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _state["pool"]
        if pool is None:
            pool = _state["pool"] = ThreadPoolExecutor(workers, thread_name_prefix="nurinet-elementwise",
                                                       initializer=_mark_worker)
        return pool


def _mark_worker() -> None:
    _local.worker = True


def run(tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run the callables, the first on this thread and the others on the pool; return their results.

    An exception in any of them is raised here, after all have finished.
    """
    if len(tasks) <= 1:
        return [task() for task in tasks]
    if probe.counts is not None:  # tests only: which threaded split ran
        probe.hit("split." + probe.caller(__name__))
    gemm.park_workers()  # the GEMM's idle workers would spin on the cores these tasks need
    futures = [_pool(max(1, _threads() - 1)).submit(task) for task in tasks[1:]]
    try:
        first = tasks[0]()
    finally:  # the others may be writing into arrays the caller owns: let them finish first
        wait(futures)
    return [first] + [future.result() for future in futures]


def bounds(length: int, pieces: int) -> list[tuple[int, int]]:
    """``pieces`` contiguous ranges covering ``range(length)``, as equal as possible."""
    cuts = [length * i // pieces for i in range(pieces + 1)]
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def over_ranges(run_range: Callable[[int, int], Any], length: int, size: int) -> list[Any]:
    """``run_range(first, last)`` over ``range(length)`` cut into :func:`parts` pieces (for ``size``
    elements of work); returns each piece's result. For work that takes its slice's bounds itself,
    such as a native kernel given pointers."""
    return run([lambda a=a, b=b: run_range(a, b) for a, b in bounds(length, parts(size, length))])


def split(func: Callable[..., Any], *arrays: Any, size: int | None = None) -> None:
    """Call ``func(*slices)`` on matching slices of ``arrays`` along axis 0, in parallel when large.

    ``func`` writes its results into slices it is given (``out=``); all arrays must share
    their first dimension. ``size`` is the element count that decides the split (default:
    the first array's).
    """
    length = arrays[0].shape[0]
    pieces = parts(arrays[0].size if size is None else size, length)
    if pieces <= 1:
        func(*arrays)
        return
    run([lambda a=a, b=b: func(*(x[a:b] for x in arrays)) for a, b in bounds(length, pieces)])


@contextmanager
def single_blas_thread() -> Iterator[bool]:
    """One OpenBLAS (and MKL) thread inside the block (cheap: for hot paths); yields whether that was possible.

    For work that calls BLAS from several Python threads at once (one matrix product per thread):
    each product then runs on its caller's core instead of all of them fighting over OpenBLAS's
    pool. Uses OpenBLAS's own setter through ctypes (a fraction of a microsecond), never
    threadpoolctl; yields False, changing nothing, when it is not found (MKL, BLIS, a GPU build),
    so the caller can run its work on one thread instead.
    """
    found = libraries.openblas_threads()
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
