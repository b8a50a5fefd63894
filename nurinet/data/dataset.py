"""Datasets (indexable collections of samples) and ways to split them.

A dataset is anything with ``__getitem__(i)`` and ``__len__()``; subclass
:class:`Dataset` to write one, or :class:`IterableDataset` for a stream of samples
read in order. :class:`TensorDataset` wraps arrays that share their first
dimension, :class:`Subset` views part of a dataset, :class:`ConcatDataset` joins
datasets end to end, and :func:`random_split` / :func:`train_val_test_split`
split data with a seedable generator.
"""

from __future__ import annotations

import abc
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Tensor, _to_array
from nurinet.data.tabular import to_array
from nurinet.random import Generator, resolve


class Dataset(abc.ABC):
    """An indexable collection of samples: subclasses define ``__getitem__`` and ``__len__``.

    Example:
        >>> class Squares(Dataset):
        ...     def __len__(self):
        ...         return 10
        ...     def __getitem__(self, i):
        ...         return np.float32(i), np.float32(i * i)
    """

    @abc.abstractmethod
    def __getitem__(self, index: int) -> Any:
        """The sample at position ``index``."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of samples."""

    def __add__(self, other: Dataset) -> ConcatDataset:
        """``a + b`` is ``ConcatDataset([a, b])``, as in PyTorch."""
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A stream of samples: subclasses define ``__iter__``, which yields them in order.

    For data read in sequence (a large file, a generator, a socket) rather than by index.
    The :class:`~nurinet.data.DataLoader` batches what ``__iter__`` yields; it cannot shuffle or
    use a sampler, since there are no indices. With ``num_workers > 0`` each worker process runs
    its own copy of the dataset, so without care every sample comes ``num_workers`` times: call
    :func:`~nurinet.data.get_worker_info` inside ``__iter__`` to take only this worker's share.
    ``__len__`` is optional (``len()`` raises TypeError unless a subclass defines it).

    Example:
        >>> class Range(IterableDataset):
        ...     def __init__(self, n):
        ...         self.n = n
        ...     def __iter__(self):
        ...         info = get_worker_info()
        ...         if info is None:                      # in the main process: everything
        ...             return iter(range(self.n))
        ...         return iter(range(info.id, self.n, info.num_workers))   # this worker's share
    """

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Any]:
        """The samples, in order."""

    def __getitem__(self, index: int) -> Any:
        raise TypeError(f"{type(self).__name__} is an IterableDataset: iterate over it, it has no indices")

    def __len__(self) -> int:
        # TypeError is what len() raises for an object without a length; list() relies on it.
        raise TypeError(f"{type(self).__name__} is an IterableDataset without __len__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        raise TypeError("ConcatDataset does not support IterableDataset; chain the iterables instead")


class ConcatDataset(Dataset):
    """Map-style datasets joined end to end: the samples of the first, then of the second, ...

    Args:
        datasets: The datasets (each with ``__getitem__`` and ``__len__``), in order.

    Attributes:
        datasets: The datasets, as a list.
        cumulative_sizes: ``cumulative_sizes[k]`` is the number of samples in datasets
            ``0..k``; the last entry is ``len(self)``.

    Raises:
        ValueError: If ``datasets`` is empty.
        TypeError: If one of them is an :class:`IterableDataset`.

    Example:
        >>> both = ConcatDataset([train, extra])      # or train + extra
        >>> first_of_extra = both[len(train)]
        >>> last_of_extra = both[-1]
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = self.cumsum(self.datasets)

    @staticmethod
    def cumsum(sequence: Sequence[Any]) -> list[int]:
        """The running totals of the lengths of ``sequence``'s datasets."""
        return [int(v) for v in np.cumsum([len(d) for d in sequence])]

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        index = _check_index(index, len(self), "ConcatDataset")
        which = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = 0 if which == 0 else self.cumulative_sizes[which - 1]
        return self.datasets[which][index - start]

    def __repr__(self) -> str:
        return f"ConcatDataset({len(self.datasets)} datasets, {len(self)} samples)"


class TensorDataset(Dataset):
    """Samples made of rows of arrays that share their first dimension.

    ``dataset[i]`` is a tuple holding row ``i`` of each array, as Tensors.
    Arrays keep their dtype; Python lists of floats become float32.
    :class:`~nurinet.data.DataLoader` slices whole batches out of a
    TensorDataset at once, so it is the fastest way to feed arrays in memory.

    Args:
        *arrays: NumPy (or CuPy) arrays, Tensors, nested lists or pandas DataFrames /
            Series (as their ``to_numpy()``, dtype kept), each with the samples along the
            first axis.

    Raises:
        ValueError: If no array is given, one is 0-d, or the first dimensions differ.
    """

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset needs at least one array, e.g. TensorDataset(x, y)")
        data = [_to_array(a.array if isinstance(a, Tensor) else to_array(a)) for a in arrays]
        for i, a in enumerate(data):
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: array {i} is 0-d; each array needs the samples along axis 0")
        lengths = [a.shape[0] for a in data]
        if len(set(lengths)) > 1:
            raise ValueError(
                f"TensorDataset: all arrays must have the same first dimension (number of samples), "
                f"got lengths {lengths} for shapes {[a.shape for a in data]}"
            )
        self.tensors = tuple(Tensor._wrap(a, False) for a in data)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        index = _check_index(index, len(self), "TensorDataset")
        return tuple(Tensor._wrap(t.xp.asarray(t.array[index]), False) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{t.shape} {t.dtype}" for t in self.tensors)
        return f"TensorDataset({shapes})"


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    Args:
        dataset: The dataset to view.
        indices: Positions in ``dataset`` (negative positions count from the end).

    Raises:
        IndexError: If an index is out of range for ``dataset``.
    """

    def __init__(self, dataset: Any, indices: Sequence[int] | np.ndarray) -> None:
        n = len(dataset)
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        bad = (indices < -n) | (indices >= n)
        if bad.any():
            raise IndexError(
                f"Subset: index {int(indices[bad][0])} is out of range for a dataset of {n} samples"
            )
        self.dataset = dataset
        self.indices = np.where(indices < 0, indices + n, indices)

    def __getitem__(self, index: int) -> Any:
        index = _check_index(index, len(self), "Subset")
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"Subset({len(self)} of {type(self.dataset).__name__} with {len(self.dataset)} samples)"


def _check_index(index: Any, n: int, where: str) -> int:
    """``index`` as a non-negative int below ``n``, or an error naming ``where``."""
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise TypeError(
            f"{where} indices must be integers, got {type(index).__name__}; "
            "use Subset(dataset, indices) or a DataLoader for several samples"
        )
    if not -n <= index < n:
        raise IndexError(f"{where}: index {index} is out of range for {n} samples")
    return int(index) + n if index < 0 else int(index)


def _split_sizes(n: int, lengths: Sequence[float]) -> list[int]:
    """Turn ``lengths`` (counts summing to ``n`` or fractions summing to 1) into counts."""
    if any(v < 0 for v in lengths):
        raise ValueError(f"random_split: lengths must be non-negative, got {list(lengths)}")
    if all(isinstance(v, (int, np.integer)) for v in lengths):
        if sum(lengths) != n:
            raise ValueError(
                f"random_split: the lengths {list(lengths)} sum to {sum(lengths)}, but the dataset has "
                f"{n} samples; give counts that sum to {n} or fractions that sum to 1"
            )
        return [int(v) for v in lengths]
    if abs(sum(lengths) - 1.0) > 1e-6:
        raise ValueError(
            f"random_split: the fractions {list(lengths)} sum to {sum(lengths)}, not 1; "
            f"give fractions that sum to 1 or counts that sum to {n}"
        )
    sizes = [int(np.floor(n * f)) for f in lengths]
    # Hand the samples lost to rounding down out one at a time, first split first (as PyTorch does).
    for i in range(n - sum(sizes)):
        sizes[i % len(sizes)] += 1
    return sizes


def random_split(
    dataset: Any, lengths: Sequence[float], generator: Generator | None = None
) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets.

    Args:
        dataset: Any dataset (``__getitem__`` and ``__len__``).
        lengths: Sizes of the parts, as counts that sum to ``len(dataset)`` or as
            fractions that sum to 1 (rounded down, the remainder handed out one by
            one from the first part).
        generator: Source of randomness; the default generator when omitted.

    Returns:
        One :class:`Subset` per entry of ``lengths``.

    Example:
        >>> train, val = random_split(dataset, [0.8, 0.2], generator=nurinet.Generator(0))
    """
    n = len(dataset)
    sizes = _split_sizes(n, list(lengths))
    order = resolve(generator).permutation(n)
    bounds = np.cumsum([0, *sizes])
    return [Subset(dataset, order[a:b]) for a, b in itertools.pairwise(bounds)]


def _indexable(a: Any) -> Any:
    """Arrays and Tensors as they are; lists and other sequences as arrays (floats as float32)."""
    if isinstance(a, (Tensor, np.ndarray)) or backend.is_cupy_array(a):
        return a
    return _to_array(a)


def _take(a: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of an array or Tensor, keeping its type and device."""
    if isinstance(a, Tensor):
        return Tensor._wrap(a.array[a.xp.asarray(index)], False)
    return a[backend.get_array_module(a).asarray(index)]


def _apportion(counts: np.ndarray, total: int, room: np.ndarray) -> np.ndarray:
    """Share ``total`` among classes in proportion to ``counts``, at most ``room`` each (largest remainder)."""
    quota = counts * (total / max(counts.sum(), 1))
    share = np.minimum(np.floor(quota).astype(np.int64), room)
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")
    while share.sum() < total:
        for c in order:
            if share.sum() < total and share[c] < room[c]:
                share[c] += 1
    return share


def _stratified_indices(
    labels: np.ndarray, n_val: int, n_test: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    test_share = _apportion(counts, n_test, counts)
    val_share = _apportion(counts, n_val, counts - test_share)
    parts: tuple[list, list, list] = ([], [], [])
    for c in range(len(classes)):
        members = rng.permutation(np.flatnonzero(inverse == c))
        t, v = test_share[c], val_share[c]
        parts[2].append(members[:t])
        parts[1].append(members[t:t + v])
        parts[0].append(members[t + v:])
    # Shuffle within each part so the classes are interleaved rather than in blocks.
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"train_val_test_split: {name} must be in [0, 1), got {f}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"train_val_test_split: val_fraction + test_fraction = {val_fraction + test_fraction} "
            "leaves no training data; their sum must be below 1"
        )


def train_val_test_split(
    x: Any,
    y: Any,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    shuffle: bool = True,
    stratify: bool = False,
    generator: Generator | None = None,
) -> tuple[tuple[Any, Any], tuple[Any, Any], tuple[Any, Any]]:
    """Split arrays of features and targets into training, validation and test parts.

    The validation and test parts get ``n * fraction`` samples each (rounded half up); the
    training part gets the rest. Without shuffling the parts are consecutive
    (train first, test last), which suits time series.

    Args:
        x: Features, samples along axis 0 (array or Tensor; the parts keep its type).
        y: Targets with the same number of samples.
        val_fraction: Share of the samples for validation, in [0, 1).
        test_fraction: Share of the samples for testing, in [0, 1).
        shuffle: Draw the parts at random (with ``generator``).
        stratify: Keep the class proportions of ``y`` in every part (needs
            ``shuffle=True``); each class is shared out by largest remainder.
        generator: Source of randomness; the default generator when omitted.

    Returns:
        ``(x_train, y_train), (x_val, y_val), (x_test, y_test)``.

    Example:
        >>> (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = train_val_test_split(
        ...     x, y, val_fraction=0.15, test_fraction=0.15, stratify=True, generator=nurinet.Generator(0))
    """
    n, n_y = len(x), len(y)
    if n != n_y:
        raise ValueError(f"train_val_test_split: x has {n} samples but y has {n_y}; they must match")
    _check_fractions(val_fraction, test_fraction)
    if stratify and not shuffle:
        raise ValueError("train_val_test_split: stratify=True needs shuffle=True")
    x, y = _indexable(x), _indexable(y)
    # Round half up (Python's round() rounds half to even, which surprises here).
    n_val, n_test = int(np.floor(n * val_fraction + 0.5)), int(np.floor(n * test_fraction + 0.5))
    if stratify:
        labels = backend.to_numpy(y.array if isinstance(y, Tensor) else np.asarray(y))
        if labels.ndim != 1:
            raise ValueError(
                f"train_val_test_split: stratify=True needs 1-d class labels y, got shape {labels.shape}"
            )
        parts = _stratified_indices(labels, n_val, n_test, resolve(generator))
    else:
        order = resolve(generator).permutation(n) if shuffle else np.arange(n)
        n_train = n - n_val - n_test
        parts = (order[:n_train], order[n_train:n_train + n_val], order[n_train + n_val:])
    return tuple((_take(x, p), _take(y, p)) for p in parts)
