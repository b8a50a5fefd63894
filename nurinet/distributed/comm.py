"""The process group: which process this is, how many there are, and the collectives between them.

Two backends share one small interface (:class:`Communicator`):

- ``"mpi"``: mpi4py over MPI's ``COMM_WORLD``. Collectives go through mpi4py's
  buffer interface (upper-case ``Allreduce``/``Bcast`` on NumPy arrays), so
  nothing is pickled. mpi4py is imported here, on first use, never by
  ``import nurinet``.
- ``"local"``: one process, world size 1; every collective is a no-op. A
  script written for many processes runs unchanged as a single one.

``init()`` picks the backend: ``"auto"`` uses MPI when the process was started
by an MPI launcher (``mpiexec``, ``mpirun``, ``srun`` with PMI) and mpi4py is
installed, and the local backend otherwise.

A process that fails must not leave the others waiting in a collective for
ever. With more than one MPI process, ``init()`` therefore installs an
exception hook that prints the traceback and aborts the whole job
(``MPI_Abort``), and ``init(timeout=...)`` bounds every collective: a process
that waits longer than that for the others aborts the job too (a backstop for a
peer that exited or stopped calling the collectives without an exception).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any

import numpy as np

from nurinet.distributed import cores

INSTALL_HINT = "pip install 'nurinet[distributed]' (or: pip install mpi4py mpich)"

# Variables that MPI launchers set in every process they start, with the world size.
_LAUNCHER_SIZE_VARIABLES = (
    "PMI_SIZE",  # MPICH's Hydra, Intel MPI, srun --mpi=pmi2
    "OMPI_COMM_WORLD_SIZE",  # Open MPI
    "PMIX_SIZE",  # PMIx launchers
    "MV2_COMM_WORLD_SIZE",  # MVAPICH2
)


class Communicator:
    """The collectives a backend provides; this base class is the one-process (local) backend.

    Every method works in place on a contiguous NumPy array and must be called by
    every process of the group, in the same order, with arrays of the same
    shape and dtype (that is what makes them collective).
    """

    backend = "local"

    def __init__(self) -> None:
        self.rank = 0
        self.size = 1
        # Threads per process that init() set (nurinet.distributed.cores), or None when it left them.
        self.threads: int | None = None

    def local_size(self) -> int:
        """How many processes of the group run on this machine (this one alone here)."""
        return 1

    def allreduce_(self, array: np.ndarray, op: str = "sum") -> np.ndarray:
        """Combine ``array`` over all processes (``op`` is ``"sum"``, ``"max"`` or ``"min"``), in place."""
        _check_op(op)
        _check_buffer(array, "allreduce")
        return array

    def broadcast_(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite ``array`` on every process with the one on ``root``, in place."""
        self.check_root(root)
        _check_buffer(array, "broadcast")
        return array

    def barrier(self) -> None:
        """Wait until every process reaches this call."""

    def abort(self, code: int = 1) -> None:
        """End every process of the group now with exit status ``code`` (one process: this one)."""
        os._exit(code)

    def check_root(self, root: int) -> int:
        if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= root < self.size:
            raise ValueError(
                f"root must be a rank between 0 and {self.size - 1} (the world has {self.size} "
                f"process(es)), got {root!r}"
            )
        return int(root)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(backend={self.backend!r}, rank={self.rank}, size={self.size})"


class MPICommunicator(Communicator):
    """The MPI backend: ``COMM_WORLD`` (or a given communicator) through mpi4py's buffer interface.

    Args:
        comm: An mpi4py communicator; ``MPI.COMM_WORLD`` by default.
        timeout: The longest a collective may wait for the other processes, in
            seconds, before it aborts the job; None waits for ever (MPI's own
            blocking calls, the fastest).
    """

    backend = "mpi"

    def __init__(self, comm: Any = None, timeout: float | None = None) -> None:
        super().__init__()
        # The first import initializes MPI; mpi4py finalizes it when the process exits.
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timeout = _check_timeout(timeout)
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    def local_size(self) -> int:
        """How many processes of the group share this machine's memory (MPI-3's ``COMM_TYPE_SHARED``).

        A collective: every process of the group must call it.
        """
        try:
            node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
        except (AttributeError, NotImplementedError, self.MPI.Exception):  # an MPI before 3.0
            return self.size
        try:
            return node.Get_size()
        finally:
            node.Free()

    def allreduce_(self, array: np.ndarray, op: str = "sum") -> np.ndarray:
        _check_op(op)
        _check_buffer(array, "allreduce")
        # MPI.IN_PLACE: each process's array is both its contribution and the result (no copy).
        if self.timeout is None:
            self.comm.Allreduce(self.MPI.IN_PLACE, array, op=self._ops[op])
        else:
            self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self._ops[op]), "an allreduce")
        return array

    def broadcast_(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        root = self.check_root(root)
        _check_buffer(array, "broadcast")
        if self.timeout is None:
            self.comm.Bcast(array, root=root)
        else:
            self._wait(self.comm.Ibcast(array, root=root), "a broadcast")
        return array

    def barrier(self) -> None:
        if self.timeout is None:
            self.comm.Barrier()
        else:
            self._wait(self.comm.Ibarrier(), "a barrier")

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)

    def _wait(self, request: Any, what: str) -> None:
        """Wait for a non-blocking collective; abort the job when it takes longer than the timeout."""
        deadline = time.monotonic() + self.timeout
        polls = 0
        while not request.Test():
            if time.monotonic() > deadline:
                _report(f"rank {self.rank} of {self.size} waited more than {self.timeout:g} s for the other "
                        f"processes in {what}: one of them failed or stopped calling the collectives; "
                        "aborting the MPI job")
                self.abort(1)
            polls += 1
            if polls > 10_000:  # past a short spin (fast collectives), stop holding the core
                time.sleep(0.0005)


def _check_op(op: str) -> None:
    if op not in ("sum", "max", "min"):
        raise ValueError(f"unknown reduction op {op!r}: use 'sum', 'max' or 'min'")


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return float(timeout)


_ABORT_GRACE_S = 0.5


def _report(message: str) -> None:
    """Write ``message`` to stderr at once: an abort that follows ends the process without flushing."""
    print(f"nurinet.distributed: {message}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()


def _check_buffer(array: Any, what: str) -> None:
    if not isinstance(array, np.ndarray) or not array.flags.c_contiguous or not array.flags.writeable:
        raise TypeError(
            f"{what} needs a writable C-contiguous NumPy array (it works in place through MPI's "
            f"buffer interface), got {type(array).__name__}"
            + (f" with flags {array.flags!r}" if isinstance(array, np.ndarray) else "")
        )


# ----- the process group of this process --------------------------------------------------------
_current: Communicator | None = None


def launched_by_mpi() -> bool:
    """Whether an MPI launcher started this process with a world of more than one process."""
    for name in _LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return True
    return False


def mpi_available() -> bool:
    """Whether mpi4py can be imported (without importing it, so MPI is not initialized)."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def init(backend: str = "auto", abort_on_exception: bool = True, timeout: float | None = None,
         threads: int | None = None) -> Communicator:
    """Join the process group; call once per process before training (later calls return the same group).

    Args:
        backend: ``"auto"`` (MPI when launched by ``mpiexec`` with more than one
            process and mpi4py is installed, one local process otherwise),
            ``"mpi"`` (always MPI; without a launcher this is a world of one
            process) or ``"local"`` (one process, no MPI).
        abort_on_exception: With more than one MPI process, install an exception
            hook (``sys.excepthook``) that prints the traceback of an uncaught
            exception and then aborts the whole job (``MPI_Abort``, exit status
            1), so that the other processes do not wait for this one for ever.
        timeout: The longest an MPI collective may wait for the other processes,
            in seconds, before this process aborts the job; None (the default)
            waits for ever. It catches what the hook cannot: a process that
            exits without an exception or stops calling the collectives. Give
            it room for the slowest step, validation pass or checkpoint.
        threads: Threads per process for the BLAS and nurinet's elementwise work.
            None (the default): when an MPI launcher started several processes,
            each takes its share of this machine's cores, ``max(1, cpus // ranks
            on this machine)``, or ``NURINET_NUM_THREADS`` when it is set; a
            single process keeps its defaults. See :mod:`nurinet.distributed.cores`.

    Returns:
        The :class:`Communicator` (``.rank``, ``.size``, ``.backend``).

    Raises:
        ImportError: ``backend="mpi"`` and mpi4py is not installed.
        RuntimeError: the group is already initialized with another backend.
    """
    global _current
    if backend not in ("auto", "mpi", "local"):
        raise ValueError(f"unknown distributed backend {backend!r}: use 'auto', 'mpi' or 'local'")
    timeout = _check_timeout(timeout)
    cores.check_threads(threads)
    chosen = _choose_backend(backend)
    if _current is not None:
        if backend != "auto" and _current.backend != chosen:
            raise RuntimeError(
                f"nurinet.distributed is already initialized with the {_current.backend!r} backend; "
                f"call nurinet.distributed.shutdown() before init(backend={backend!r})"
            )
        if threads is not None:  # an explicit count applies even to a group that is already there
            _current.threads = cores.apply_thread_share(threads)
        return _current
    group = MPICommunicator(timeout=timeout) if chosen == "mpi" else Communicator()
    # Before anything else runs: with several ranks per machine, every rank's thread pools sized for the
    # whole machine oversubscribe the cores (docs/distributed.md, "Threads per process").
    ranks = None
    if group.size > 1 and cores.local_ranks(os.environ) is not None and cores.launcher_local_size(os.environ) is None:
        ranks = group.local_size()  # the launcher did not say how many ranks share this machine: ask MPI
    group.threads = cores.apply_thread_share(threads, ranks)
    _current = group
    if abort_on_exception and _current.size > 1:
        _install_abort_hook(_current)
    return _current


def _install_abort_hook(comm: Communicator) -> None:
    """Make an uncaught exception print its traceback, then abort every process of ``comm``.

    Without this, the failing process exits (or waits in ``MPI_Finalize``) while
    the others wait in their next collective for ever. The hook chains to the
    one it replaces, which prints the traceback; :func:`shutdown` restores it.
    :func:`init` calls this for a world of more than one MPI process.
    """
    _remove_abort_hook()
    previous = sys.excepthook

    def abort_on_exception(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
        try:
            previous(kind, error, traceback)
        finally:  # abort even if the previous hook fails
            _report(f"rank {comm.rank} of {comm.size} stopped on an uncaught {kind.__name__}; aborting the "
                    "MPI job so that the other processes do not wait for it")
            # The launcher forwards each rank's output on its own time, and MPI_Abort can stop it before
            # the traceback above got through (seen under load): give it a moment first.
            time.sleep(_ABORT_GRACE_S)
            comm.abort(1)

    abort_on_exception.aborts_mpi_job = True
    abort_on_exception.replaces = previous
    sys.excepthook = abort_on_exception


def _remove_abort_hook() -> None:
    """Put back the exception hook that :func:`_install_abort_hook` replaced, if it is installed."""
    if getattr(sys.excepthook, "aborts_mpi_job", False):
        sys.excepthook = sys.excepthook.replaces


def _choose_backend(backend: str) -> str:
    if backend == "local":
        return "local"
    if backend == "mpi":
        if not mpi_available():
            raise ImportError(
                "nurinet.distributed: backend='mpi' needs mpi4py and an MPI library, which are not "
                f"installed; install them with {INSTALL_HINT}, then launch with "
                "mpiexec -n 2 python your_script.py"
            )
        return "mpi"
    if not launched_by_mpi():
        return "local"
    if mpi_available():
        return "mpi"
    warnings.warn(
        "this process was started by an MPI launcher with more than one process, but mpi4py is not "
        f"installed, so every process trains alone as rank 0 of 1; install it with {INSTALL_HINT}",
        RuntimeWarning,
        stacklevel=3,
    )
    return "local"


def shutdown() -> None:
    """Leave the process group (the next call initializes again). MPI itself is finalized at exit."""
    global _current
    _remove_abort_hook()
    _current = None


def is_initialized() -> bool:
    """Whether :func:`init` has run (explicitly, or implicitly through :func:`rank` and friends)."""
    return _current is not None


def get_communicator() -> Communicator:
    """The process group, initialized with ``backend="auto"`` on first use."""
    return _current if _current is not None else init()


def rank() -> int:
    """This process's rank, 0 to ``world_size() - 1`` (0 in a single process)."""
    return get_communicator().rank


def world_size() -> int:
    """The number of processes training together (1 in a single process)."""
    return get_communicator().size


def is_root(root: int = 0) -> bool:
    """Whether this process is ``root`` (the one that prints, logs and saves)."""
    return rank() == root


def backend() -> str:
    """The backend in use: ``"mpi"`` or ``"local"``."""
    return get_communicator().backend


def barrier() -> None:
    """Wait until every process reaches this call."""
    get_communicator().barrier()
