"""Embedding lookup: rows of a weight matrix picked by integer indices.

The gradient of a lookup is a scatter-add of the output gradient's rows into the
rows of the weight (a row used k times receives the sum of k gradients). ``np.add.at``
does that slowly; here the indices are sorted once and the rows of each run of equal
indices summed with ``np.add.reduceat``, faster than ``np.add.at`` and, above about a hundred rows,
than a one-hot GEMM (figures in docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional._util import xp_of


def scatter_rows(gy: Any, indices: Any, num_rows: int, padding_idx: int | None = None) -> Any:
    """Sum the rows of ``gy`` (shape ``(*indices.shape, D)``) into ``num_rows`` rows by index."""
    xp = xp_of(gy)
    flat = indices.reshape(-1)
    rows = gy.reshape(flat.shape[0], gy.shape[-1])
    out = xp.zeros((num_rows, gy.shape[-1]), dtype=gy.dtype)
    if flat.shape[0] == 0:
        return out
    if xp is not np:  # CuPy's scatter_add is atomic on the GPU and fast there.
        xp.add.at(out, flat, rows)
    else:
        order = np.argsort(flat, kind="stable")
        ordered = flat[order]
        starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
        out[ordered[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    if padding_idx is not None:
        out[padding_idx] = 0
    return out


class Embedding(Function):
    """``weight[indices]`` (input: the weight); the padding row gets no gradient.

    backward_arrays: common layer, no benchmark runs it yet: the sequence and transformer models.
    """

    def __init__(self, indices: Any, padding_idx: int | None = None) -> None:
        self.indices, self.padding_idx = indices, padding_idx

    def forward(self, weight: Any) -> Any:
        self.num_rows = weight.shape[0]
        return weight.take(self.indices, axis=0) if xp_of(weight) is np else weight[self.indices]

    def backward_arrays(self, gy: Any) -> Any:
        return scatter_rows(gy, self.indices, self.num_rows, self.padding_idx)

    def backward(self, gy: Tensor) -> Tensor:
        return EmbeddingScatter(self.indices, self.num_rows, self.padding_idx)(gy)


class EmbeddingScatter(Function):
    """The backward of :class:`Embedding`: rows of ``gy`` summed by index; its backward is the lookup."""

    def __init__(self, indices: Any, num_rows: int, padding_idx: int | None) -> None:
        self.indices, self.num_rows, self.padding_idx = indices, num_rows, padding_idx

    def forward(self, gy: Any) -> Any:
        return scatter_rows(gy, self.indices, self.num_rows, self.padding_idx)

    def backward(self, ggw: Tensor) -> Tensor:
        if self.padding_idx is not None:  # the padding row was zeroed: no gradient flows from it
            keep = np.ones((self.num_rows, 1), dtype=ggw.array.dtype)
            keep[self.padding_idx] = 0
            ggw = ggw * Tensor._wrap(keep, False)
        return Embedding(self.indices)(ggw)


def check_indices(indices: Any, num_embeddings: int, where: str = "embedding") -> Any:
    """The indices as an integer array, after checking they are in range (negative ones rejected)."""
    if isinstance(indices, Tensor):
        indices = indices.array
    xp = xp_of(indices) if hasattr(indices, "dtype") else np
    indices = xp.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{where}: indices must be integers, got dtype {indices.dtype}")
    if indices.size:
        low, high = int(indices.min()), int(indices.max())
        if low < 0 or high >= num_embeddings:
            bad = low if low < 0 else high
            raise IndexError(f"{where}: index {bad} is out of range for num_embeddings={num_embeddings} "
                             f"(valid indices are 0..{num_embeddings - 1})")
    return indices


def embedding(indices: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Look up rows of ``weight``: ``output[..., :] = weight[indices[...], :]``.

    Args:
        indices: Integer array or tensor of any shape, values in ``0..num_embeddings - 1``.
        weight: ``(num_embeddings, embedding_dim)``.
        padding_idx: A row whose gradient is kept at zero.

    Shape:
        Output: ``(*indices.shape, embedding_dim)``.
    """
    return lookup(indices, weight, padding_idx, "embedding")


def lookup(indices: Any, weight: Tensor, padding_idx: int | None, where: str) -> Tensor:
    """:func:`embedding`, with error messages that start with ``where`` (a layer's class name)."""
    weight = as_tensor(weight)
    if weight.ndim != 2:
        raise ValueError(f"{where}: weight must be 2-D (num_embeddings, embedding_dim), got {weight.shape}")
    indices = check_indices(indices, weight.shape[0], where)
    if weight.device != "cpu" and xp_of(indices) is np:
        from nurinet import backend

        indices = backend.to_device(indices, weight.device)
    return Embedding(indices, padding_idx)(weight)
