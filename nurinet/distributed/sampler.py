"""DistributedSampler: each process reads its own share of the dataset (PyTorch's semantics)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np


class DistributedSampler:
    """The indices of one process's share of a dataset, reshuffled each epoch.

    Every process draws the same permutation (from ``seed + epoch``) and takes
    every ``num_replicas``-th index starting at its ``rank``, so the shares never
    overlap and together cover the dataset. When the length is not a multiple
    of ``num_replicas``, the permutation is padded by repeating its first indices
    (every process gets the same number of samples, so all take the same number
    of steps), or, with ``drop_last=True``, cut to a multiple.

    Call :meth:`set_epoch` at the start of each epoch (``DistributedCallback``
    does it), or every epoch visits the same order.

    Args:
        dataset: A dataset (anything with ``len``) or its length.
        num_replicas: The number of processes; ``world_size()`` when omitted.
        rank: This process's rank; ``rank()`` when omitted.
        shuffle: Visit the samples in a new random order each epoch.
        seed: The seed of the shuffling; must be the same on every process.
        drop_last: Cut the tail instead of padding it.

    Example:
        >>> sampler = DistributedSampler(len(dataset), shuffle=True, seed=0)
        >>> loader = DataLoader(dataset, batch_size=32, sampler=sampler)
        >>> for epoch in range(epochs):
        ...     sampler.set_epoch(epoch)
        ...     for xb, yb in loader: ...
    """

    def __init__(self, dataset: Any, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        from nurinet.distributed import comm

        self.dataset_len = _length(dataset)
        self.num_replicas = comm.world_size() if num_replicas is None else num_replicas
        self.rank = comm.rank() if rank is None else rank
        if isinstance(self.num_replicas, bool) or not isinstance(self.num_replicas, (int, np.integer)) \
                or self.num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be a positive integer, got {num_replicas!r}")
        if isinstance(self.rank, bool) or not isinstance(self.rank, (int, np.integer)) \
                or not 0 <= self.rank < self.num_replicas:
            raise ValueError(
                f"DistributedSampler: rank must lie in [0, {self.num_replicas - 1}] for num_replicas="
                f"{self.num_replicas}, got {rank!r}"
            )
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"DistributedSampler: seed must be an integer, got {seed!r}")
        self.num_replicas, self.rank, self.seed = int(self.num_replicas), int(self.rank), int(seed)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n, r = self.dataset_len, self.num_replicas
        if self.drop_last and n % r:
            self.num_samples = n // r
        else:
            self.num_samples = math.ceil(n / r)
        self.total_size = self.num_samples * r
        if self.total_size == 0 and n:
            raise ValueError(
                f"DistributedSampler: drop_last=True leaves no sample for each of {r} processes out of {n}; "
                "use drop_last=False or fewer processes"
            )

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch, and so the shuffling order (the same on every process)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"DistributedSampler.set_epoch: epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        """This process's indices for the current epoch, as an int64 array."""
        n = self.dataset_len
        if self.shuffle:
            order = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            order = np.arange(n, dtype=np.int64)
        if self.total_size > n:  # pad by repeating the start (several times over if n < num_replicas)
            order = np.resize(order, self.total_size)
        else:
            order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas].astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (f"DistributedSampler({self.dataset_len} samples, rank={self.rank} of {self.num_replicas}, "
                f"shuffle={self.shuffle}, seed={self.seed}, drop_last={self.drop_last}, epoch={self.epoch})")


def _length(dataset: Any) -> int:
    if isinstance(dataset, (int, np.integer)) and not isinstance(dataset, bool):
        if dataset < 0:
            raise ValueError(f"DistributedSampler: the dataset length must be >= 0, got {dataset}")
        return int(dataset)
    if hasattr(dataset, "__len__"):
        return len(dataset)
    raise TypeError(f"DistributedSampler expects a dataset or its length, got {type(dataset).__name__}")
