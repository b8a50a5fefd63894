"""A small Transformer encoder for sequence classification (token ids to class scores)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet import nn
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.models._arguments import _KeepsArguments
from nurinet.random import Generator


class TransformerClassifier(_KeepsArguments):
    """Token embedding (scaled by ``sqrt(d_model)``) plus sinusoidal positions, a stack of
    Transformer encoder layers, mean pooling over the non-padding positions and a linear
    head: the encoder-only recipe for text classification.

    Padding tokens (``padding_idx``) are masked out of attention and out of the pooling,
    so appending padding never changes a sequence's scores.

    Args:
        vocab_size: Number of token ids.
        num_classes: Number of output scores.
        d_model: Model width.
        nhead: Attention heads (must divide ``d_model``).
        num_layers: Encoder layers.
        dim_feedforward: Hidden width of each layer's feed-forward network.
        dropout: Dropout probability in the encoder and after the embedding.
        max_len: Longest sequence supported.
        padding_idx: Token id used for padding (None: no padding).
        norm_first: Pre-norm encoder layers (with a final LayerNorm), else post-norm.
        generator: Random source of the initialization and the dropout masks.

    Shape:
        - Input: ``(N, T)`` integer token ids, T <= max_len
        - Output: ``(N, num_classes)`` logits
    """

    def __init__(self, vocab_size: int, num_classes: int, d_model: int = 64, nhead: int = 4,
                 num_layers: int = 2, dim_feedforward: int = 128, dropout: float = 0.1, max_len: int = 512,
                 padding_idx: int | None = 0, norm_first: bool = True, generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        self.d_model, self.padding_idx = d_model, padding_idx
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx, generator=generator)
        self.positions = nn.SinusoidalPositionalEncoding(d_model, max_len)
        self.dropout = nn.Dropout(dropout, generator)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True,
                                           norm_first=norm_first, generator=generator)
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model) if norm_first else None)
        self.head = nn.Linear(d_model, num_classes, generator=generator)

    def forward(self, tokens: Any) -> Tensor:
        ids = as_tensor(tokens)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"TransformerClassifier expects integer token ids of shape (N, T), got shape "
                             f"{ids.shape} and dtype {ids.dtype}")
        x = self.dropout(self.positions(self.embedding(ids) * math.sqrt(self.d_model)))
        padding = None if self.padding_idx is None else np.asarray(ids.numpy() == self.padding_idx)
        h = self.encoder(x, src_key_padding_mask=padding)
        return self.head(_masked_mean(h, padding))


def _masked_mean(h: Tensor, padding: np.ndarray | None) -> Tensor:
    """Mean over the time axis of the positions that are not padding (all when None)."""
    if padding is None:
        return F.mean(h, axis=1)
    keep = (~padding).astype(h.dtype)
    counts = np.maximum(keep.sum(axis=1, keepdims=True), 1.0)  # An all-padding row pools to 0.
    weights = Tensor._wrap(h.xp.asarray((keep / counts)[:, :, None]), False)  # on h's device
    return F.sum(h * weights, axis=1)
