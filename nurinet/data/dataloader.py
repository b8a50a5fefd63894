"""DataLoader: mini-batches from a dataset, in order, shuffled or as a sampler says, in worker processes if asked."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Tensor, _to_array
from nurinet.data.dataset import IterableDataset, Subset, TensorDataset
from nurinet.data.samplers import (
    BatchSampler,
    RandomSampler,
    SequentialSampler,
    index_array,
    index_batches,
)
from nurinet.data.workers import WorkerPool
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
        return _stack([s.array if isinstance(s, Tensor) else s for s in batch])
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


def default_convert(data: Any) -> Any:
    """One sample as the DataLoader yields it without batching (``batch_size=None``).

    NumPy arrays become Tensors (dtype kept), inside tuples, lists and dicts too; anything
    else is returned as it is. PyTorch's ``default_convert``.
    """
    if isinstance(data, np.ndarray) or backend.is_cupy_array(data):
        return Tensor._wrap(data, False)
    if isinstance(data, Mapping):
        return {key: default_convert(value) for key, value in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # a named tuple
        return type(data)(*(default_convert(v) for v in data))
    if isinstance(data, (tuple, list)):
        return type(data)(default_convert(v) for v in data)
    return data


def _slice(tensors: tuple[Tensor, ...], index: np.ndarray) -> tuple[Tensor, ...]:
    return tuple(Tensor._wrap(t.array[t.xp.asarray(index)], False) for t in tensors)


class _MapFetcher:
    """Turns a batch's indices into the batch, for a map-style dataset.

    A TensorDataset (or Subsets of one) without a ``collate_fn`` is sliced with one fancy
    index per array, instead of one ``__getitem__`` per sample.
    """

    def __init__(self, dataset: Any, collate_fn: Callable[[Any], Any] | None, auto_batch: bool) -> None:
        self.dataset, self.collate_fn, self.auto_batch = dataset, collate_fn, auto_batch
        self.fast = _fast_source(dataset) if collate_fn is None and auto_batch else None

    def start_epoch(self) -> None:
        """Nothing to do: indices say which samples come."""

    def fetch(self, positions: Any) -> Any:
        """The batch of the samples at ``positions`` (one position without auto-batching)."""
        if not self.auto_batch:
            sample = self.dataset[int(positions)]
            return default_convert(sample) if self.collate_fn is None else self.collate_fn(sample)
        if self.fast is not None:
            tensors, index = self.fast
            return _slice(tensors, positions if index is None else index[positions])
        return (self.collate_fn or default_collate)([self.dataset[int(i)] for i in positions])


class _IterFetcher:
    """Takes the next batch from an IterableDataset's iterator (StopIteration when it runs out)."""

    def __init__(self, dataset: Any, collate_fn: Callable[[Any], Any] | None, batch_size: int | None,
                 drop_last: bool) -> None:
        self.dataset, self.collate_fn = dataset, collate_fn
        self.batch_size, self.drop_last = batch_size, drop_last
        self._samples: Iterator[Any] = iter(())

    def start_epoch(self) -> None:
        """Start the dataset's iterator over."""
        self._samples = iter(self.dataset)

    def fetch(self, _positions: Any = None) -> Any:
        """The next batch (the next sample without auto-batching)."""
        if self.batch_size is None:
            sample = next(self._samples)
            return default_convert(sample) if self.collate_fn is None else self.collate_fn(sample)
        samples = list(itertools.islice(self._samples, self.batch_size))
        if not samples or (self.drop_last and len(samples) < self.batch_size):
            raise StopIteration
        return (self.collate_fn or default_collate)(samples)


def _whole(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class DataLoader:
    """Iterate over a dataset in mini-batches, as ``torch.utils.data.DataLoader`` does.

    Each ``for batch in loader`` is one epoch. Which samples an epoch visits, and in what
    order, is the ``sampler``'s choice: :class:`SequentialSampler` by default, a
    :class:`RandomSampler` with ``shuffle=True`` (a new permutation from ``generator`` each
    epoch, so two loaders given generators with the same seed yield the same batches), or your
    own (:class:`WeightedRandomSampler`, :class:`~nurinet.distributed.DistributedSampler`, ...).
    A :class:`BatchSampler` groups the indices into batches; pass ``batch_sampler=`` to choose
    the batches yourself. An :class:`IterableDataset` is batched in the order it yields.

    A :class:`TensorDataset` (or a :class:`Subset` of one, as made by :func:`random_split`) is
    batched with one fancy index per array instead of one ``__getitem__`` per sample, which is
    much faster; the batches are the same either way.

    With ``num_workers > 0`` the batches are read and collated in that many worker processes
    (started with 'fork' where the platform has it, else 'spawn'), at most ``prefetch_factor``
    batches per worker ahead, and come back in order. Worth it when ``__getitem__`` is slow
    (files, decoding, augmentation); a TensorDataset is faster in the main process. The workers
    stop at the end of each epoch unless ``persistent_workers=True``. With 'spawn' the dataset,
    ``collate_fn`` and ``worker_init_fn`` must be picklable (no lambdas).

    Args:
        dataset: A map-style dataset (``__getitem__`` and ``__len__``) or an
            :class:`IterableDataset`.
        batch_size: Samples per batch; None yields the samples one by one, unbatched.
        shuffle: Visit the samples in a new random order each epoch (map-style datasets only).
        sampler: An iterable of sample indices (a :class:`Sampler`, a list) that decides which
            samples an epoch visits and in what order; excludes ``shuffle=True``.
        batch_sampler: An iterable of lists of indices, one list per batch; excludes
            ``batch_size``, ``shuffle``, ``sampler`` and ``drop_last``.
        num_workers: Worker processes; 0 reads the batches in the main process.
        collate_fn: Turns a list of samples into a batch; :func:`default_collate` when omitted
            (with ``batch_size=None``: applied to each sample, :func:`default_convert` when omitted).
        pin_memory: Accepted for PyTorch code; does nothing (there is no page-locked memory on
            the CPU, and device copies are made when a batch is moved with ``.to(device)``).
        drop_last: Drop the last batch when it has fewer than ``batch_size`` samples.
        timeout: Seconds to wait for a batch from the workers before raising RuntimeError;
            0 waits for ever.
        worker_init_fn: Called in each worker process with its id (``0..num_workers-1``)
            before its first batch.
        multiprocessing_context: A start method name ('fork', 'spawn', 'forkserver') or a
            ``multiprocessing`` context for the workers.
        generator: Source of the shuffling and of the workers' seeds; the default generator
            (seeded by ``nurinet.manual_seed``) when omitted.
        prefetch_factor: Batches each worker prepares ahead; 2 when omitted (workers only).
        persistent_workers: Keep the workers between epochs.
        pin_memory_device: Accepted for PyTorch code; ignored, as ``pin_memory``.

    Raises:
        TypeError: If the dataset is neither map-style nor an IterableDataset, or an argument
            has the wrong type.
        ValueError: For argument combinations PyTorch rejects (see the messages).

    Example:
        >>> loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
        ...                     generator=nurinet.Generator(0))
        >>> for xb, yb in loader:
        ...     loss = F.cross_entropy(model(xb), yb)
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Iterable[int] | None = None,
        batch_sampler: Iterable[Sequence[int]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[Any], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], Any] | None = None,
        multiprocessing_context: Any = None,
        generator: Generator | None = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
    ) -> None:
        iterable = isinstance(dataset, IterableDataset)
        if not iterable and not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(
                f"DataLoader needs a dataset with __getitem__ and __len__, got {type(dataset).__name__}; "
                "wrap arrays in TensorDataset(x, y), or subclass IterableDataset for a stream of samples"
            )
        if batch_size is not None and (not _whole(batch_size) or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size must be a positive integer or None, got {batch_size!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        _check_workers(num_workers, prefetch_factor, persistent_workers, timeout, worker_init_fn)
        self.dataset = dataset
        self.num_workers = int(num_workers)
        self.prefetch_factor = prefetch_factor if prefetch_factor is not None or not num_workers else 2
        self.persistent_workers = bool(persistent_workers)
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.pin_memory, self.pin_memory_device = bool(pin_memory), pin_memory_device  # no-ops on the CPU
        self.generator = generator
        self.collate_fn = collate_fn
        self.shuffle = bool(shuffle)
        self._pool: WorkerPool | None = None
        if iterable:
            _check_iterable_options(shuffle, sampler, batch_sampler)
            self.sampler, self.batch_sampler = None, None
            self.batch_size, self.drop_last = batch_size, bool(drop_last)
            return
        _check_sampler_options(batch_size, shuffle, sampler, batch_sampler, drop_last)
        custom_batches = batch_sampler is not None
        if sampler is None:
            # The default samplers draw exactly what DataLoader drew before samplers existed
            # (one permutation per epoch), and BatchSampler slices them as one array: no per-index cost.
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and not custom_batches:
            batch_sampler = BatchSampler(sampler, int(batch_size), bool(drop_last))
        self.sampler, self.batch_sampler = sampler, batch_sampler
        # With batch_sampler= the batch sampler decides both, so PyTorch reports None and False.
        self.batch_size = None if custom_batches or batch_size is None else int(batch_size)
        self.drop_last = False if custom_batches else bool(drop_last)

    def __len__(self) -> int:
        """The number of batches in one epoch (for an IterableDataset, from its ``__len__``)."""
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)  # type: ignore[arg-type]
        return len(self.sampler)  # type: ignore[arg-type]

    def _fetcher(self) -> _MapFetcher | _IterFetcher:
        if isinstance(self.dataset, IterableDataset):
            return _IterFetcher(self.dataset, self.collate_fn, self.batch_size, self.drop_last)
        return _MapFetcher(self.dataset, self.collate_fn, auto_batch=self.batch_sampler is not None)

    def _tasks(self) -> Iterator[Any]:
        """One epoch's work items: each batch's indices (each index when unbatched; None for
        each batch of an IterableDataset, whose samples come in their own order)."""
        if isinstance(self.dataset, IterableDataset):
            return itertools.repeat(None)
        if self.batch_sampler is not None:
            return index_batches(self.batch_sampler)
        return iter(index_array(self.sampler))  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        if self.num_workers == 0:
            return self._in_process()
        if not self.persistent_workers:
            return self._new_pool().epoch_iterator(self._tasks(), owns_pool=True)
        if self._pool is None or not self._pool.alive:
            self._pool = self._new_pool()
        return self._pool.epoch_iterator(self._tasks(), owns_pool=False)

    def _in_process(self) -> Iterator[Any]:
        fetcher = self._fetcher()
        fetcher.start_epoch()
        if isinstance(fetcher, _IterFetcher):
            while True:
                try:
                    batch = fetcher.fetch()
                except StopIteration:
                    return
                yield batch
        for positions in self._tasks():
            yield fetcher.fetch(positions)

    def _new_pool(self) -> WorkerPool:
        # The workers' seeds come from the generator's state, so a seeded run is reproducible, but
        # without drawing from it: the shuffled orders stay those of num_workers=0.
        state = repr(resolve(self.generator).bit_generator.state).encode()
        base_seed = int.from_bytes(hashlib.blake2b(state, digest_size=8).digest(), "little") >> 2
        return WorkerPool(self._fetcher(), self.num_workers, int(self.prefetch_factor), float(self.timeout),
                          self.worker_init_fn, self.multiprocessing_context, base_seed)

    def __del__(self) -> None:
        pool = self.__dict__.get("_pool")
        if pool is not None:
            pool.shutdown()

    def __repr__(self) -> str:
        size = f" of {len(self.dataset)}" if not isinstance(self.dataset, IterableDataset) else ""
        return (
            f"DataLoader({type(self.dataset).__name__}{size}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, num_workers={self.num_workers})"
        )


def _check_workers(num_workers: Any, prefetch_factor: Any, persistent_workers: bool, timeout: Any,
                   worker_init_fn: Any) -> None:
    """PyTorch's rules for the worker options."""
    if not _whole(num_workers) or num_workers < 0:
        raise ValueError(f"DataLoader: num_workers option should be non-negative, got {num_workers!r}; "
                         "use num_workers=0 to disable multiprocessing")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.integer, np.floating)) or timeout < 0:
        raise ValueError(f"DataLoader: timeout option should be non-negative, got {timeout!r}")
    if num_workers == 0 and prefetch_factor is not None:
        raise ValueError("DataLoader: prefetch_factor option could only be specified in multiprocessing; "
                         "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None")
    if prefetch_factor is not None and (not _whole(prefetch_factor) or prefetch_factor <= 0):
        raise ValueError(f"DataLoader: prefetch_factor must be a positive integer, got {prefetch_factor!r}")
    if persistent_workers and num_workers == 0:
        raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
    if worker_init_fn is not None and not callable(worker_init_fn):
        raise TypeError(f"DataLoader: worker_init_fn must be callable, got {type(worker_init_fn).__name__}")


def _check_iterable_options(shuffle: Any, sampler: Any, batch_sampler: Any) -> None:
    """An IterableDataset decides its own order: no shuffling, no sampler."""
    for name, value, unset in (("shuffle", shuffle, shuffle in (None, False)), ("sampler", sampler, sampler is None),
                               ("batch_sampler", batch_sampler, batch_sampler is None)):
        if not unset:
            raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} option, but got "
                             f"{name}={value!r}; the dataset's __iter__ decides the order")


def _check_sampler_options(batch_size: Any, shuffle: Any, sampler: Any, batch_sampler: Any, drop_last: Any) -> None:
    """PyTorch's rules on which of batch_size, shuffle, sampler, batch_sampler and drop_last go together."""
    if sampler is not None and shuffle:
        raise ValueError(
            "DataLoader: sampler and shuffle=True exclude each other (the sampler decides the order); "
            "pass shuffle=False, or set the sampler's own shuffle option"
        )
    if sampler is not None and not hasattr(sampler, "__iter__"):
        raise TypeError(f"DataLoader: sampler must be an iterable of indices, got {type(sampler).__name__}")
    if batch_sampler is not None:
        if batch_size != 1 or shuffle or sampler is not None or drop_last:
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                             "sampler, and drop_last (the batch sampler decides them all)")
        if not hasattr(batch_sampler, "__iter__"):
            raise TypeError("DataLoader: batch_sampler must be an iterable of lists of indices, "
                            f"got {type(batch_sampler).__name__}")
    elif batch_size is None and drop_last:
        raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually "
                         "exclusive with drop_last")
