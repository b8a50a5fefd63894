"""Each MPI process's share of the cores: how many threads a rank may use, and applying it.

Every process that ``mpiexec`` starts on a machine would otherwise size its thread
pools for the whole machine: NumPy's BLAS starts one thread per core and nurinet
splits its large elementwise work over up to two. With ``mpiexec -n 2`` on two
cores that is eight busy threads on two cores, and each rank waits on the other's
spinning threads at every step (fifty times slower than one process, measured).
So :func:`nurinet.distributed.init` gives each rank
``max(1, cpus // ranks on this machine)`` threads, for the BLAS
(:func:`nurinet.threads.set_num_threads`) and for nurinet's elementwise work
(:func:`nurinet.threads.set_elementwise_threads`), when an MPI launcher started
more than one process. It happens in ``init``, not on ``import nurinet``: a
process learns that it is one of several only when it joins the group.

What wins, first to last:

* ``init(threads=n)``: ``n`` threads for both, in any process;
* ``NURINET_NUM_THREADS=n`` in the environment (``mpiexec -n 4 -env NURINET_NUM_THREADS 2 ...``
  with MPICH, ``-x NURINET_NUM_THREADS=2`` with Open MPI): ``n`` per rank;
* the share above. ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` or
  ``MKL_NUM_THREADS`` set in the environment keep the BLAS at the count they gave
  (the BLAS read them at start-up); only the elementwise threads follow the share.

The ranks on this machine are counted from the variables launchers set
(:data:`LOCAL_SIZE_VARIABLES`); when none is set, from MPI itself (the ranks that
share memory with this one), else all the ranks are assumed to be on this machine.
The cores are those this process may run on (``os.sched_getaffinity``), so a
container's CPU set counts, not the host's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["LOCAL_SIZE_VARIABLES", "apply_thread_share", "available_cpus", "check_threads", "launcher_local_size", "local_ranks",
           "rank_threads", "thread_share"]

# Variables with the number of ranks on this machine, by launcher.
LOCAL_SIZE_VARIABLES = (
    "MPI_LOCALNRANKS",  # MPICH's Hydra, Intel MPI
    "OMPI_COMM_WORLD_LOCAL_SIZE",  # Open MPI
    "MV2_COMM_WORLD_LOCAL_SIZE",  # MVAPICH2
    "PMIX_LOCAL_SIZE",  # PMIx launchers (prrte)
)
# Variables with the number of ranks in the whole job (:mod:`nurinet.distributed.comm` reads the same).
WORLD_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE")
# Variables the BLAS libraries read when they load: set, they are the user's BLAS thread count.
BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _count(environ: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    """The first of ``names`` set to a positive integer in ``environ``, or None."""
    for name in names:
        value = environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def launcher_local_size(environ: Mapping[str, str]) -> int | None:
    """The launcher's count of ranks on this machine (:data:`LOCAL_SIZE_VARIABLES`), or None."""
    return _count(environ, LOCAL_SIZE_VARIABLES)


def local_ranks(environ: Mapping[str, str]) -> int | None:
    """How many ranks an MPI launcher started on this machine, from its variables.

    Args:
        environ: The process's environment (``os.environ``).

    Returns:
        The launcher's count of ranks on this machine, else the job's world size
        (all ranks assumed here), or None when no launcher started more than one rank.
    """
    world = _count(environ, WORLD_SIZE_VARIABLES)
    if world is None or world < 2:
        return None
    local = _count(environ, LOCAL_SIZE_VARIABLES)
    return min(local, world) if local is not None else world


def thread_share(cpus: int, ranks: int) -> int:
    """Threads per rank so that ``ranks`` processes fill ``cpus`` cores without oversubscribing them.

    Args:
        cpus: Cores this machine gives the job.
        ranks: Ranks running on this machine.

    Returns:
        ``max(1, cpus // ranks)``: with more ranks than cores, one thread each.
    """
    return max(1, int(cpus) // max(1, int(ranks)))


def available_cpus() -> int:
    """The cores this process may run on (its CPU affinity, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def _env_threads(environ: Mapping[str, str]) -> int | None:
    raw = environ.get("NURINET_NUM_THREADS", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"NURINET_NUM_THREADS must be a positive integer, got {raw!r}")
    return int(raw)


def check_threads(threads: int | None) -> int | None:
    """``threads`` when it is None or a positive integer.

    Raises:
        ValueError: ``threads`` is anything else.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer number of threads per process, got {threads!r}")
    return threads


def rank_threads(environ: Mapping[str, str], cpus: int, threads: int | None = None,
                 ranks: int | None = None) -> tuple[int | None, bool]:
    """How many threads this rank should use, and whether the BLAS should be set to it.

    A pure function of its arguments, so that it can be tested with fake environments.

    Args:
        environ: The process's environment.
        cpus: Cores this machine gives the job (:func:`available_cpus`).
        threads: An explicit count (``init(threads=...)``); it wins over everything.
        ranks: Ranks on this machine when known otherwise (from MPI); by default
            :func:`local_ranks` reads them from ``environ``.

    Returns:
        ``(count, set_blas)``: ``count`` is None when nothing should change (no
        explicit count and not one of several MPI ranks); ``set_blas`` is False when
        the environment fixed the BLAS's count (``OMP_NUM_THREADS`` and the like) and
        no explicit count overrides it.

    Raises:
        ValueError: ``threads`` or ``NURINET_NUM_THREADS`` is not a positive integer.
    """
    if check_threads(threads) is not None:
        return threads, True
    if local_ranks(environ) is None:  # one process: the defaults are made for it
        return None, False
    blas_fixed = any(environ.get(name, "").strip() for name in BLAS_VARIABLES)
    chosen = _env_threads(environ)
    if chosen is None:
        chosen = thread_share(cpus, ranks if ranks is not None else local_ranks(environ) or 1)
    return chosen, not blas_fixed


def apply_thread_share(threads: int | None = None, ranks: int | None = None,
                       environ: Mapping[str, str] | None = None) -> int | None:
    """Set this rank's BLAS and elementwise thread counts to its share (see the module's notes).

    Args:
        threads: An explicit count per process; None for the rules above.
        ranks: Ranks on this machine when MPI said so; None to read the launcher's variables.
        environ: The environment; ``os.environ`` by default.

    Returns:
        The count applied to the elementwise threads (and to the BLAS unless the
        environment fixed it), or None when nothing was changed.
    """
    from nurinet import threads as thread_controls

    count, set_blas = rank_threads(os.environ if environ is None else environ, available_cpus(), threads, ranks)
    if count is None:
        return None
    thread_controls.set_elementwise_threads(count)
    if set_blas:
        thread_controls.set_num_threads(count)  # warns, and changes nothing, when no control is found
    return count
