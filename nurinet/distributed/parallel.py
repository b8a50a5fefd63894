"""DistributedDataParallel: a module wrapper for data-parallel training in a hand-written loop."""

from __future__ import annotations

from typing import Any

from nurinet.distributed.collectives import (
    DEFAULT_BUCKET_CAP_MB,
    GradientReducer,
    LayoutCache,
    broadcast_buffers,
    broadcast_parameters,
)
from nurinet.distributed.comm import Communicator, get_communicator
from nurinet.nn.module import Module


class DistributedDataParallel(Module):
    """Wrap a module so that every process trains the same model on its own share of the data.

    Construction gives every process ``root``'s parameters and buffers. The
    forward pass is the wrapped module's. After ``loss.backward()``, call
    :meth:`sync_gradients`: it averages the gradients over the processes (in
    buckets, see :class:`GradientReducer`), so that ``optimizer.step()`` makes
    the same update on every process, the one of the mean loss over the
    combined batch.

    Why an explicit call and not gradient hooks firing during ``backward``:
    one call after the backward pass reduces complete, accumulated gradients,
    keeps the engine's hook-free fast path, and makes gradient accumulation
    trivial (call it only on the steps that update).

    Args:
        module: The model.
        root: The rank whose initial parameters every process takes.
        broadcast_buffers: Before each forward pass in training mode, give
            every process ``root``'s buffers (BatchNorm running statistics), as
            PyTorch does; a model without buffers skips it.
        bucket_cap_mb: The largest gradient bucket, in megabytes.
        comm: The communicator; the process group of :func:`init` by default.

    Shape:
        Those of the wrapped module.

    Example:
        >>> dist.init()
        >>> model = DistributedDataParallel(build_model())
        >>> optimizer = optim.Adam(model.parameters())
        >>> loss = F.cross_entropy(model(xb), yb)
        >>> optimizer.zero_grad(); loss.backward()
        >>> model.sync_gradients(); optimizer.step()
    """

    def __init__(self, module: Module, root: int = 0, broadcast_buffers: bool = True,
                 bucket_cap_mb: float = DEFAULT_BUCKET_CAP_MB, comm: Communicator | None = None) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a Module, got {type(module).__name__}")
        self.module = module
        self.comm = get_communicator() if comm is None else comm
        self.root = self.comm.check_root(root)
        self.broadcast_buffers = bool(broadcast_buffers)
        self.reducer = GradientReducer(bucket_cap_mb, self.comm)
        self._buffer_layouts = LayoutCache(bucket_cap_mb, "the buffers to broadcast")
        broadcast_parameters(module, self.root, self.comm)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.broadcast_buffers and self.training and self.comm.size > 1:
            broadcast_buffers(self.module, self.root, self.comm, cache=self._buffer_layouts)
        return self.module(*args, **kwargs)

    def sync_gradients(self) -> None:
        """Average the gradients of the trainable parameters over all processes (after ``backward``)."""
        self.reducer.allreduce(self.module.parameters(), average=True)

    def extra_repr(self) -> str:
        return f"rank={self.comm.rank}, world_size={self.comm.size}, backend={self.comm.backend!r}"
