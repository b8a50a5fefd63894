"""An encoder-decoder Transformer for sequence-to-sequence tasks (token ids to token ids)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nurinet import nn
from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.models._arguments import _KeepsArguments
from nurinet.random import Generator


class Seq2SeqTransformer(_KeepsArguments):
    """Vaswani et al.'s encoder-decoder: token embeddings (scaled by ``sqrt(d_model)``) plus
    sinusoidal positions, ``nn.TransformerEncoder`` over the source, ``nn.TransformerDecoder``
    over the shifted target with a causal mask and attention to the encoder's output, and a
    linear layer to the next target token's scores.

    Padding tokens (``padding_idx``) of the source are masked out of the encoder's attention
    and of the decoder's cross-attention; padding of the target is masked out of the decoder's
    self-attention (give the padded target positions ``ignore_index`` in the loss). Training uses
    teacher forcing: ``model(src, tgt[:, :-1])`` scores ``tgt[:, 1:]``.

    Args:
        src_vocab: Number of source token ids.
        tgt_vocab: Number of target token ids.
        d_model: Model width.
        nhead: Attention heads (must divide ``d_model``).
        num_encoder_layers: Encoder layers.
        num_decoder_layers: Decoder layers.
        dim_feedforward: Hidden width of each layer's feed-forward network.
        dropout: Dropout probability in the layers and after the embeddings.
        max_len: Longest source or target sequence supported.
        padding_idx: Token id used for padding in both vocabularies (None: no padding).
        norm_first: Pre-norm layers (with final LayerNorms), else post-norm (the paper's).
        generator: Random source of the initialization and the dropout masks.

    Shape:
        - src: ``(N, S)`` and tgt: ``(N, T)`` integer ids, S, T <= max_len
        - Output: ``(N, T, tgt_vocab)`` logits
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, d_model: int = 64, nhead: int = 4,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2, dim_feedforward: int = 128,
                 dropout: float = 0.1, max_len: int = 128, padding_idx: int | None = 0, norm_first: bool = True,
                 generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.d_model, self.padding_idx, self.max_len = d_model, padding_idx, max_len
        self.src_embedding = nn.Embedding(src_vocab, d_model, padding_idx=padding_idx, generator=generator)
        self.tgt_embedding = nn.Embedding(tgt_vocab, d_model, padding_idx=padding_idx, generator=generator)
        self.positions = nn.SinusoidalPositionalEncoding(d_model, max_len)
        self.dropout = nn.Dropout(dropout, generator)
        kwargs = {"batch_first": True, "norm_first": norm_first, "generator": generator}
        encoder_layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, **kwargs)
        decoder_layer = nn.TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, **kwargs)
        self.encoder = nn.TransformerEncoder(encoder_layer, num_encoder_layers,
                                             norm=nn.LayerNorm(d_model) if norm_first else None)
        self.decoder = nn.TransformerDecoder(decoder_layer, num_decoder_layers,
                                             norm=nn.LayerNorm(d_model) if norm_first else None)
        self.generator_head = nn.Linear(d_model, tgt_vocab, generator=generator)

    def forward(self, src: Any, tgt: Any) -> Tensor:
        memory, src_padding = self.encode(src)
        return self.decode(tgt, memory, src_padding)

    def encode(self, src: Any) -> tuple[Tensor, np.ndarray | None]:
        """The encoder's output ``(N, S, d_model)`` and the source padding mask ``(N, S)`` (or None)."""
        ids = self._ids(src, "src", self.src_vocab)
        padding = self._padding(ids)
        x = self.dropout(self.positions(self.src_embedding(ids) * math.sqrt(self.d_model)))
        return self.encoder(x, src_key_padding_mask=padding), padding

    def decode(self, tgt: Any, memory: Tensor, memory_padding: np.ndarray | None = None) -> Tensor:
        """Next-token scores ``(N, T, tgt_vocab)`` for the target prefix ``tgt`` (causally masked)."""
        ids = self._ids(tgt, "tgt", self.tgt_vocab)
        x = self.dropout(self.positions(self.tgt_embedding(ids) * math.sqrt(self.d_model)))
        h = self.decoder(x, memory, tgt_key_padding_mask=self._padding(ids),
                         memory_key_padding_mask=memory_padding, tgt_is_causal=True)
        return self.generator_head(h)

    def greedy_decode(self, src: Any, max_len: int, bos: int, eos: int) -> np.ndarray:
        """Decode by taking the most likely token at each step (in eval mode, without gradients).

        Args:
            src: ``(N, S)`` source ids.
            max_len: Most tokens to generate per sequence (besides ``bos``).
            bos: Start token fed to the decoder first.
            eos: End token: a sequence stops after producing it.

        Returns:
            ``(N, L)`` int64 generated ids (``bos`` not included, ``eos`` included), ``L <= max_len``;
            the positions after a sequence's ``eos`` hold ``padding_idx`` (``eos`` if there is none).
            Decoding stops early once every sequence has produced ``eos``.
        """
        if not isinstance(max_len, (int, np.integer)) or not 1 <= max_len < self.max_len:
            raise ValueError(f"Seq2SeqTransformer.greedy_decode: max_len must be in 1..{self.max_len - 1} "
                             f"(the model's max_len minus the bos position), got {max_len!r}")
        fill = eos if self.padding_idx is None else self.padding_idx
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                memory, padding = self.encode(src)
                ys = np.full((memory.shape[0], 1), bos, np.int64)
                done = np.zeros(memory.shape[0], bool)
                for _ in range(max_len):
                    step = self.decode(ys, memory, padding).numpy()[:, -1].argmax(-1)
                    step = np.where(done, fill, step)
                    ys = np.concatenate([ys, step[:, None]], axis=1)
                    done |= step == eos
                    if done.all():
                        break
        finally:
            self.train(was_training)
        return ys[:, 1:]

    def _padding(self, ids: Tensor) -> np.ndarray | None:
        if self.padding_idx is None:
            return None
        mask = np.asarray(ids.numpy() == self.padding_idx)
        return mask if mask.any() else None

    def _ids(self, tokens: Any, name: str, vocab: int) -> Tensor:
        ids = as_tensor(tokens)
        where = "Seq2SeqTransformer"
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"{where}: {name} must be integer token ids of shape (N, length), got shape "
                             f"{ids.shape} and dtype {ids.dtype}")
        if ids.shape[1] > self.max_len:
            raise ValueError(f"{where}: {name} has {ids.shape[1]} positions, more than max_len={self.max_len}; "
                             "build the model with a larger max_len")
        values = ids.numpy()
        if values.size and (values.min() < 0 or values.max() >= vocab):
            raise ValueError(f"{where}: {name} ids must be in 0..{vocab - 1}, got values from {values.min()} "
                             f"to {values.max()}")
        return ids
