"""Embedding layers: token lookup tables and positional encodings."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Parameter, Tensor, as_tensor
from nurinet.functional._util import check_input_dtype
from nurinet.functional.embedding import lookup
from nurinet.nn import init
from nurinet.nn.linear import _check_size, _float_dtype
from nurinet.nn.module import Module
from nurinet.random import Generator


class Embedding(Module):
    """A lookup table: index ``k`` maps to row ``k`` of ``weight``.

    Initialization (as PyTorch): weight ~ N(0, 1), with the ``padding_idx`` row zero.

    Args:
        num_embeddings: Number of rows (the vocabulary size).
        embedding_dim: Size of each row.
        padding_idx: A row kept at zero that receives no gradient (e.g. the padding token);
            negative values count from the end.
        dtype: Weight dtype (float32 by default).
        generator: Random source of the initialization.

    Shape:
        - Input: integer array or tensor ``(*)`` with values in ``0..num_embeddings - 1``.
        - Output: ``(*, embedding_dim)``.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype: Any = None, generator: Generator | None = None) -> None:
        super().__init__()
        self.num_embeddings = _check_size(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = _check_size(embedding_dim, "embedding_dim", "Embedding")
        if padding_idx is not None:
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"Embedding: padding_idx={padding_idx} must be within num_embeddings="
                                 f"{self.num_embeddings} (-{self.num_embeddings}..{self.num_embeddings - 1})")
            padding_idx %= self.num_embeddings
        self.padding_idx = padding_idx
        self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim),
                                         _float_dtype(dtype, "Embedding")))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """weight ~ N(0, 1); the padding row set to zero."""
        init.normal_(self.weight, 0.0, 1.0, generator)
        if self.padding_idx is not None:
            self.weight.array[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings: Any, freeze: bool = True, padding_idx: int | None = None) -> Embedding:
        """An Embedding holding a copy of ``embeddings`` (2-D); frozen (no gradient) by default."""
        values = np.array(embeddings.numpy() if isinstance(embeddings, Tensor) else embeddings, copy=True)
        if values.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D, got shape {values.shape}")
        layer = cls(values.shape[0], values.shape[1], padding_idx, dtype=values.dtype)
        layer.weight.array[...] = values
        layer.weight.requires_grad = not freeze
        return layer

    def forward(self, indices: Any) -> Tensor:
        return lookup(indices, self.weight, self.padding_idx, "Embedding")

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text if self.padding_idx is None else text + f", padding_idx={self.padding_idx}"


def sinusoidal_table(max_len: int, d_model: int, dtype: Any = np.float32) -> np.ndarray:
    """Vaswani et al.'s table: ``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(...)``."""
    position = np.arange(max_len, dtype=np.float64)[:, None]
    rates = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
    table = np.zeros((max_len, d_model), dtype=np.float64)
    table[:, 0::2] = np.sin(position * rates)
    table[:, 1::2] = np.cos(position * rates[: d_model // 2])
    return table.astype(dtype)


class _PositionalBase(Module):
    def _check(self, x: Tensor, param: Tensor | None) -> Tensor:
        """``x`` as a Tensor after checking its shape and its dtype against ``param`` (None: any float)."""
        x = as_tensor(x)
        name = type(self).__name__
        if x.ndim < 2 or x.shape[-1] != self.d_model:
            raise ValueError(f"{name}: expected input (N, T, {self.d_model}) or (T, {self.d_model}) "
                             f"(d_model={self.d_model}), got shape {x.shape}")
        if x.shape[-2] > self.max_len:
            raise ValueError(f"{name}: sequence length {x.shape[-2]} exceeds max_len={self.max_len}; "
                             "build the layer with a larger max_len")
        check_input_dtype(x, param, name)
        return x

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class SinusoidalPositionalEncoding(_PositionalBase):
    """Adds the fixed sine/cosine position code of Vaswani et al. (2017) to its input.

    ``PE[p, 2i] = sin(p / 10000^(2i / d_model))``, ``PE[p, 2i + 1] = cos(p / 10000^(2i / d_model))``.
    The table is a non-persistent buffer (recomputed, not saved in ``state_dict``).

    Args:
        d_model: Feature size of the input.
        max_len: Longest sequence supported.
        dtype: Dtype of the table (float32 by default).

    Shape:
        - Input: ``(N, T, d_model)`` or ``(T, d_model)``, T <= max_len (positions along dim -2).
        - Output: same as the input.
    """

    def __init__(self, d_model: int, max_len: int = 5000, dtype: Any = None) -> None:
        super().__init__()
        self.d_model = _check_size(d_model, "d_model", "SinusoidalPositionalEncoding")
        self.max_len = _check_size(max_len, "max_len", "SinusoidalPositionalEncoding")
        table = sinusoidal_table(self.max_len, self.d_model, _float_dtype(dtype, "SinusoidalPositionalEncoding"))
        self.register_buffer("pe", Tensor(table), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self._check(x, None)  # the table is a buffer, not a parameter: it follows a float input's dtype
        pe = self.pe.array[: x.shape[-2]]
        if pe.dtype != x.array.dtype:
            pe = pe.astype(x.array.dtype)
        return x + Tensor._wrap(backend.get_array_module(x.array).asarray(pe), False)


class LearnedPositionalEncoding(_PositionalBase):
    """Adds a learned vector per position (as in BERT and GPT) to its input.

    Initialization: weight ~ N(0, 0.02^2) (BERT's).

    Args:
        d_model: Feature size of the input.
        max_len: Number of positions (longest sequence supported).
        dtype: Weight dtype (float32 by default).
        generator: Random source of the initialization.

    Shape:
        - Input: ``(N, T, d_model)`` or ``(T, d_model)``, T <= max_len.
        - Output: same as the input.
    """

    def __init__(self, d_model: int, max_len: int = 512, dtype: Any = None,
                 generator: Generator | None = None) -> None:
        super().__init__()
        self.d_model = _check_size(d_model, "d_model", "LearnedPositionalEncoding")
        self.max_len = _check_size(max_len, "max_len", "LearnedPositionalEncoding")
        self.weight = Parameter(np.empty((self.max_len, self.d_model), _float_dtype(dtype, "LearnedPositionalEncoding")))
        init.normal_(self.weight, 0.0, 0.02, generator)

    def forward(self, x: Tensor) -> Tensor:
        x = self._check(x, self.weight)
        return x + self.weight[: x.shape[-2]]
