"""Samplers: which sample indices an epoch visits, and in what order (``torch.utils.data``'s).

A sampler is an iterable of indices into a map-style dataset; a :class:`BatchSampler` groups a
sampler's indices into lists, one per batch. Give either to :class:`~nurinet.data.DataLoader`
(``sampler=`` / ``batch_sampler=``). The random samplers draw from a ``nurinet.Generator``
(``generator=``), else from nurinet's default generator (seeded by ``nurinet.manual_seed``), and
draw anew at each ``iter()``, so each epoch gets a new order; NumPy's global state is never used.

Example:
    >>> weights = [0.1 if label == 0 else 0.9 for label in labels]
    >>> sampler = WeightedRandomSampler(weights, num_samples=len(labels), generator=nurinet.Generator(0))
    >>> loader = DataLoader(dataset, batch_size=32, sampler=sampler)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from nurinet.random import Generator, resolve


class Sampler:
    """The base of the samplers: subclasses define ``__iter__`` (and usually ``__len__``).

    Args:
        data_source: Accepted for PyTorch's signature and ignored.
    """

    def __init__(self, data_source: Any = None) -> None:
        del data_source  # PyTorch's base class ignores it too

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


def _positive_int(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{where}: {name} should be a positive integer value, got {name}={value!r}")
    return int(value)


def _flag(value: Any, name: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{where}: {name} should be a boolean value, got {name}={value!r}")
    return value


class SequentialSampler(Sampler):
    """The indices ``0, 1, ..., len(data_source) - 1``, in order.

    Args:
        data_source: The dataset (only its length is used).
    """

    def __init__(self, data_source: Any) -> None:
        self.data_source = data_source

    def _index_array(self) -> np.ndarray:
        """The epoch's indices as one array (the DataLoader slices batches out of it)."""
        return np.arange(len(self.data_source))

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """The indices in a random order: a permutation, or draws with replacement.

    Without replacement, ``num_samples`` above ``len(data_source)`` chains whole permutations
    (and a part of one), as PyTorch does.

    Args:
        data_source: The dataset (only its length is used).
        replacement: Draw each index independently (uniformly) instead of permuting.
        num_samples: Indices per epoch; ``len(data_source)`` by default.
        generator: Source of randomness; the default generator when omitted.

    Raises:
        TypeError: If ``replacement`` is not a bool.
        ValueError: If ``num_samples`` is given and is not a positive integer.
    """

    def __init__(self, data_source: Any, replacement: bool = False, num_samples: int | None = None,
                 generator: Generator | None = None) -> None:
        self.data_source = data_source
        self.replacement = _flag(replacement, "replacement", "RandomSampler")
        self._num_samples = num_samples
        self.generator = generator
        if num_samples is not None:  # (an empty dataset yields nothing, as DataLoader(shuffle=True) always did)
            _positive_int(num_samples, "num_samples", "RandomSampler")

    @property
    def num_samples(self) -> int:
        """Indices per epoch (follows the dataset's length when not given)."""
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _index_array(self) -> np.ndarray:
        """The epoch's indices as one array, drawn anew on each call."""
        n, rng = len(self.data_source), resolve(self.generator)
        if n == 0:
            return np.empty(0, dtype=np.int64)
        if self.replacement:
            return rng.integers(0, n, size=self.num_samples, dtype=np.int64)
        whole, rest = divmod(self.num_samples, n)
        if whole == 1 and rest == 0:  # the common case: exactly the draws of DataLoader(shuffle=True)
            return rng.permutation(n)
        parts = [rng.permutation(n) for _ in range(whole)] + [rng.permutation(n)[:rest]]
        return np.concatenate(parts)

    def __iter__(self) -> Iterator[int]:
        return iter(self._index_array().tolist())

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices, in a new random order each epoch, without replacement.

    Args:
        indices: The indices to sample from.
        generator: Source of randomness; the default generator when omitted.
    """

    def __init__(self, indices: Sequence[int], generator: Generator | None = None) -> None:
        self.indices = indices
        self.generator = generator

    def _index_array(self) -> np.ndarray:
        order = resolve(self.generator).permutation(len(self.indices))
        return np.asarray(self.indices, dtype=np.int64).reshape(-1)[order]

    def __iter__(self) -> Iterator[int]:
        return iter(self._index_array().tolist())

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """Indices ``0..len(weights)-1`` drawn with probabilities proportional to ``weights``.

    The usual cure for class imbalance: give each sample the weight ``1 / count(its class)``.
    The weights need not sum to 1.

    Args:
        weights: One non-negative weight per index (a 1-d sequence, array or Tensor).
        num_samples: Indices per epoch.
        replacement: Draw with replacement (an index can recur); without it, ``num_samples``
            must not exceed the number of non-zero weights.
        generator: Source of randomness; the default generator when omitted.

    Raises:
        ValueError: If ``num_samples`` is not a positive integer, the weights are not 1-d,
            finite and non-negative with a positive sum, or there are too few non-zero
            weights to draw ``num_samples`` without replacement.
        TypeError: If ``replacement`` is not a bool.
    """

    def __init__(self, weights: Sequence[float] | Any, num_samples: int, replacement: bool = True,
                 generator: Generator | None = None) -> None:
        self.num_samples = _positive_int(num_samples, "num_samples", "WeightedRandomSampler")
        self.replacement = _flag(replacement, "replacement", "WeightedRandomSampler")
        self.weights = _check_weights(weights)
        nonzero = int(np.count_nonzero(self.weights))
        if not replacement and self.num_samples > nonzero:
            raise ValueError(
                f"WeightedRandomSampler: cannot draw {self.num_samples} samples without replacement "
                f"from {nonzero} non-zero weights; lower num_samples or pass replacement=True"
            )
        self.generator = generator

    def _index_array(self) -> np.ndarray:
        p = self.weights / self.weights.sum()
        draws = resolve(self.generator).choice(len(p), size=self.num_samples, replace=self.replacement, p=p)
        return draws.astype(np.int64, copy=False)

    def __iter__(self) -> Iterator[int]:
        return iter(self._index_array().tolist())

    def __len__(self) -> int:
        return self.num_samples


def _check_weights(weights: Any) -> np.ndarray:
    """``weights`` as a float64 array, or a ValueError saying what is wrong with them."""
    data = getattr(weights, "array", weights)  # a Tensor's array
    w = np.asarray(data.get() if hasattr(data, "get") else data, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"WeightedRandomSampler: weights must be a non-empty 1-d sequence, got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("WeightedRandomSampler: weights must be finite and non-negative")
    if w.sum() <= 0:
        raise ValueError("WeightedRandomSampler: the weights sum to 0; at least one must be positive")
    return w


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``.

    Args:
        sampler: Any iterable of indices (a :class:`Sampler`, a list, a range).
        batch_size: Indices per batch.
        drop_last: Drop the last batch when it is shorter than ``batch_size``.

    Raises:
        ValueError: If ``batch_size`` is not a positive integer.
        TypeError: If ``drop_last`` is not a bool.

    Example:
        >>> list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False))
        [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    """

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        self.sampler = sampler
        self.batch_size = _positive_int(batch_size, "batch_size", "BatchSampler")
        self.drop_last = _flag(drop_last, "drop_last", "BatchSampler")

    def _index_batches(self) -> Iterator[np.ndarray]:
        """The batches as arrays, sliced out of one index array when the sampler can give one."""
        indices = index_array(self.sampler)
        for start in range(0, len(indices), self.batch_size):
            batch = indices[start:start + self.batch_size]
            if self.drop_last and len(batch) < self.batch_size:
                return
            yield batch

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._index_batches():
            yield batch.tolist()

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


_ARRAY_SAMPLERS = (SequentialSampler, RandomSampler, SubsetRandomSampler, WeightedRandomSampler)


def index_array(sampler: Iterable[int]) -> np.ndarray:
    """One epoch of ``sampler``'s indices as an int64 array.

    nurinet's samplers hand over the array they drew (no Python ints in between); any other
    iterable of indices is read one index at a time.
    """
    if type(sampler) in _ARRAY_SAMPLERS:  # exact types: a subclass may override __iter__
        return sampler._index_array()  # type: ignore[attr-defined]
    return np.fromiter((int(i) for i in sampler), dtype=np.int64)


def index_batches(batch_sampler: Iterable[Any]) -> Iterator[np.ndarray]:
    """One epoch of ``batch_sampler``'s batches, each as an int64 array."""
    if type(batch_sampler) is BatchSampler:  # a subclass may override __iter__
        yield from batch_sampler._index_batches()
        return
    for batch in batch_sampler:
        yield np.asarray(batch, dtype=np.int64).reshape(-1)
