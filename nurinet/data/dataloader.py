"""DataLoader: mini-batches from a dataset, optionally shuffled each epoch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Tensor, _to_array
from nurinet.data.dataset import Subset, TensorDataset
from nurinet.random import Generator, resolve


def _stack(arrays: list[Any]) -> Tensor:
    xp = backend.get_array_module(arrays[0])
    try:
        return Tensor._wrap(xp.stack(arrays), False)
    except ValueError as err:
        shapes = sorted({tuple(a.shape) for a in arrays})
        raise ValueError(
            f"default_collate: the samples in a batch have different shapes {shapes}; "
            "give them one shape (pad or crop) or pass a collate_fn to the DataLoader"
        ) from err


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch.

    Tensors and arrays are stacked along a new first axis and keep their dtype;
    Python numbers become a 1-d Tensor (floats float32, ints int64, bools bool).
    Tuples, lists, named tuples and dicts are batched field by field, so a
    dataset returning ``(image, label)`` gives ``(images, labels)``. Strings
    and ``None`` are returned as a list.

    Args:
        batch: The samples, as returned by ``dataset[i]``.

    Returns:
        The batch, with the structure of one sample.
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack([s.data if isinstance(s, Tensor) else s for s in batch])
    if isinstance(elem, (np.ndarray, np.generic)) or backend.is_cupy_array(elem):
        xp = backend.get_array_module(elem)
        return _stack([xp.asarray(s) for s in batch])
    if isinstance(elem, (bool, int, float)):
        return Tensor._wrap(_to_array(list(batch)), False)
    if isinstance(elem, (str, bytes)) or elem is None:
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([s[key] for s in batch]) for key in elem}
    if isinstance(elem, (tuple, list)):
        sizes = {len(s) for s in batch}
        if len(sizes) > 1:
            raise ValueError(
                f"default_collate: the samples in a batch have different numbers of fields {sorted(sizes)}; "
                "each sample must have the same structure"
            )
        fields = [default_collate(list(column)) for column in zip(*batch)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a named tuple
            return type(elem)(*fields)
        return tuple(fields) if isinstance(elem, tuple) else fields
    raise TypeError(
        f"default_collate: cannot batch samples of type {type(elem).__name__}; return Tensors, arrays, "
        "numbers or tuples/dicts of them from the dataset, or pass a collate_fn to the DataLoader"
    )


def _fast_source(dataset: Any) -> tuple[tuple[Tensor, ...], np.ndarray | None] | None:
    """The arrays behind a TensorDataset (or Subsets of one) and the index map into them."""
    if isinstance(dataset, TensorDataset):
        return dataset.tensors, None
    if isinstance(dataset, Subset):
        inner = _fast_source(dataset.dataset)
        if inner is not None:
            tensors, index = inner
            return tensors, dataset.indices if index is None else index[dataset.indices]
    return None


class DataLoader:
    """Iterate over a dataset in mini-batches.

    Each ``for batch in loader`` is one epoch. With ``shuffle=True`` every epoch
    draws a new permutation from ``generator``, so two loaders given generators
    with the same seed yield the same batches in the same order.

    A :class:`TensorDataset` (or a :class:`Subset` of one, as made by
    :func:`random_split`) is batched with one fancy index per array instead of
    one ``__getitem__`` per sample, which is much faster; the batches are the
    same either way.

    Args:
        dataset: Any dataset (``__getitem__`` and ``__len__``).
        batch_size: Samples per batch.
        shuffle: Visit the samples in a new random order each epoch.
        drop_last: Drop the last batch when it has fewer than ``batch_size``
            samples (by default it is kept).
        generator: Source of the shuffling; the default generator (seeded by
            ``nurinet.manual_seed``) when omitted.
        collate_fn: Turns a list of samples into a batch; :func:`default_collate`
            when omitted.
        sampler: An iterable of sample indices (with ``len``) that decides which
            samples an epoch visits and in what order, such as
            :class:`nurinet.distributed.DistributedSampler`; excludes ``shuffle``.

    Example:
        >>> loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
        ...                     generator=nurinet.Generator(0))
        >>> for xb, yb in loader:
        ...     loss = F.cross_entropy(model(xb), yb)
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: Generator | None = None,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        sampler: Iterable[int] | None = None,
    ) -> None:
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(
                f"DataLoader needs a dataset with __getitem__ and __len__, got {type(dataset).__name__}; "
                "wrap arrays in TensorDataset(x, y)"
            )
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        if sampler is not None and shuffle:
            raise ValueError(
                "DataLoader: sampler and shuffle=True exclude each other (the sampler decides the order); "
                "pass shuffle=False, or set the sampler's own shuffle option"
            )
        if sampler is not None and not (hasattr(sampler, "__iter__") and hasattr(sampler, "__len__")):
            raise TypeError(
                f"DataLoader: sampler must be an iterable of indices with __len__, got {type(sampler).__name__}"
            )
        self.sampler = sampler
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator
        self.collate_fn = collate_fn

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        if self.sampler is not None:
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        n = len(self.dataset)
        return resolve(self.generator).permutation(n) if self.shuffle else np.arange(n)

    def _batches(self) -> Iterator[np.ndarray]:
        """The sample positions of each batch of one epoch."""
        order = self._order()
        for start in range(0, len(order), self.batch_size):
            positions = order[start:start + self.batch_size]
            if self.drop_last and len(positions) < self.batch_size:
                return
            yield positions

    def __iter__(self) -> Iterator[Any]:
        fast = _fast_source(self.dataset) if self.collate_fn is None else None
        if fast is not None:
            tensors, index = fast
            for positions in self._batches():
                yield self._slice(tensors, positions if index is None else index[positions])
        else:
            collate = self.collate_fn or default_collate
            for positions in self._batches():
                yield collate([self.dataset[int(i)] for i in positions])

    @staticmethod
    def _slice(tensors: tuple[Tensor, ...], index: np.ndarray) -> tuple[Tensor, ...]:
        return tuple(Tensor._wrap(t.data[t.xp.asarray(index)], False) for t in tensors)

    def __repr__(self) -> str:
        return (
            f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last})"
        )
