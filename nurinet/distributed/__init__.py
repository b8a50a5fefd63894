"""Data-parallel training over several processes (and machines) with MPI.

Each process holds a full copy of the model and trains on its own share of the
data; after every backward pass the gradients are averaged over the processes,
so every copy makes the same update and the copies stay identical. Launch a
script with ``mpiexec -n 2 python train.py``; run without ``mpiexec`` it is a
world of one process and behaves like ordinary training.

MPI is optional: install it with ``pip install 'nurinet[distributed]'``
(mpi4py and MPICH). Importing this package does not import mpi4py; :func:`init`
does, when the process was started by an MPI launcher (or ``backend="mpi"``).

Example:
    >>> import nurinet.distributed as dist
    >>> dist.init()
    >>> sampler = dist.DistributedSampler(len(dataset), shuffle=True, seed=0)
    >>> loader = DataLoader(dataset, batch_size=32, sampler=sampler)
    >>> model.fit(loader, epochs=10, verbose=1 if dist.is_root() else 0,
    ...           callbacks=[dist.DistributedCallback(sampler)])

See docs/distributed.md.
"""

from nurinet.distributed.callback import DistributedCallback, root_only
from nurinet.distributed.collectives import (
    BucketLayout,
    GradientReducer,
    LayoutCache,
    agree_on_stop,
    allreduce_gradients,
    any_process,
    average_logs,
    broadcast_buffers,
    broadcast_optimizer_state,
    broadcast_parameters,
    broadcast_tensors,
    check_agreement,
)
from nurinet.distributed.comm import (
    Communicator,
    MPICommunicator,
    backend,
    barrier,
    get_communicator,
    init,
    is_initialized,
    is_root,
    launched_by_mpi,
    mpi_available,
    rank,
    shutdown,
    world_size,
)
from nurinet.distributed.parallel import DistributedDataParallel
from nurinet.distributed.sampler import DistributedSampler

__all__ = [
    "BucketLayout",
    "Communicator",
    "DistributedCallback",
    "DistributedDataParallel",
    "DistributedSampler",
    "GradientReducer",
    "LayoutCache",
    "MPICommunicator",
    "agree_on_stop",
    "allreduce_gradients",
    "any_process",
    "average_logs",
    "backend",
    "barrier",
    "broadcast_buffers",
    "broadcast_optimizer_state",
    "broadcast_parameters",
    "broadcast_tensors",
    "check_agreement",
    "get_communicator",
    "init",
    "is_initialized",
    "is_root",
    "launched_by_mpi",
    "mpi_available",
    "rank",
    "root_only",
    "shutdown",
    "world_size",
]
