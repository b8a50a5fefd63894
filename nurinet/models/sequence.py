"""Recurrent networks for sequences: a sequence classifier (or regressor), a character-level
language model with sampling, and the small character vocabulary it reads.

The recurrent layer is ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` (``kind="rnn" | "lstm" | "gru"``),
always batch first: inputs are ``(N, T, features)`` or ``(N, T)`` token ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet import nn
from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.models._arguments import _KeepsArguments
from nurinet.nn.recurrent import _resolve_lengths
from nurinet.random import Generator, resolve

_KINDS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _recurrent(kind: str, owner: str, input_size: int, hidden_size: int, num_layers: int,
               bidirectional: bool, dropout: float, generator: Generator | None) -> nn.Module:
    if kind not in _KINDS:
        raise ValueError(f"{owner}: kind must be one of {sorted(_KINDS)}, got {kind!r}")
    return _KINDS[kind](input_size, hidden_size, num_layers=num_layers, batch_first=True, dropout=dropout,
                        bidirectional=bidirectional, generator=generator)


def _token_ids(tokens: Any, owner: str, vocab_size: int) -> Tensor:
    ids = as_tensor(tokens)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(f"{owner} expects integer token ids of shape (N, T), got shape {ids.shape} "
                         f"and dtype {ids.dtype}")
    values = ids.numpy()
    if values.size and (values.min() < 0 or values.max() >= vocab_size):
        raise ValueError(f"{owner}: token ids must be in 0..{vocab_size - 1} (vocab_size={vocab_size}), got "
                         f"values from {values.min()} to {values.max()}")
    return ids


class SequenceClassifier(_KeepsArguments):
    """A recurrent layer stack and a linear head on one vector per sequence.

    The inputs are either feature vectors (``input_size``) or token ids read through an
    ``nn.Embedding`` (``vocab_size`` and ``embedding_dim``). Each sequence is summarized by
    its last real step (``pooling="last"``: the final hidden state of the top layer, both
    directions concatenated when bidirectional; with ``lengths`` the forward direction stops at
    each sequence's last real step and the backward direction starts there) or by the mean of
    the top layer's outputs over the real steps (``pooling="mean"``). Padded steps beyond
    ``lengths`` therefore never change the scores. A right-padding ``mask`` ``(N, T)`` (True at
    real steps) may be given instead of ``lengths``. With ``num_classes=1`` and a mean-squared
    loss it is a sequence regressor.

    Args:
        kind: ``"lstm"``, ``"gru"`` or ``"rnn"`` (tanh).
        num_classes: Number of output scores.
        input_size: Features per step (feature inputs); exclusive with ``vocab_size``.
        vocab_size: Number of token ids (token inputs); needs ``embedding_dim``.
        embedding_dim: Width of the token embedding.
        hidden_size: Hidden units of each recurrent layer and direction.
        num_layers: Stacked recurrent layers.
        bidirectional: Also read each sequence backward.
        dropout: Dropout between recurrent layers and before the head (training only).
        pooling: ``"last"`` or ``"mean"``.
        padding_idx: Embedding row kept at zero (token inputs only).
        generator: Random source of the initialization and the dropout masks.

    Shape:
        - Input: ``(N, T, input_size)`` floats or ``(N, T)`` token ids; lengths: ``(N,)``
          integers in 1..T, or mask: ``(N, T)`` booleans, True then False in each row (optional).
        - Output: ``(N, num_classes)`` scores.
    """

    def __init__(self, kind: str = "lstm", num_classes: int = 2, input_size: int | None = None,
                 vocab_size: int | None = None, embedding_dim: int | None = None, hidden_size: int = 64,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 pooling: str = "last", padding_idx: int | None = None,
                 generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        if (input_size is None) == (vocab_size is None):
            raise ValueError("SequenceClassifier: give exactly one of input_size (feature inputs) or "
                             "vocab_size with embedding_dim (token inputs)")
        if vocab_size is not None and embedding_dim is None:
            raise ValueError("SequenceClassifier: token inputs (vocab_size) need embedding_dim")
        if pooling not in ("last", "mean"):
            raise ValueError(f"SequenceClassifier: pooling must be 'last' or 'mean', got {pooling!r}")
        self.kind, self.pooling, self.vocab_size = kind, pooling, vocab_size
        self.embedding = None
        if vocab_size is not None:
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx, generator=generator)
            input_size = embedding_dim
        self.rnn = _recurrent(kind, "SequenceClassifier", input_size, hidden_size, num_layers, bidirectional,
                              dropout, generator)
        self.dropout = nn.Dropout(dropout, generator)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes, generator=generator)

    def forward(self, x: Any, lengths: Any = None, mask: Any = None) -> Tensor:
        if self.embedding is not None:
            x = self.embedding(_token_ids(x, "SequenceClassifier", self.vocab_size))
        x = as_tensor(x)
        if mask is not None and x.ndim == 3:  # mean pooling needs the lengths; other inputs: the layer reports
            lengths = _resolve_lengths(lengths, mask, x.shape[1], x.shape[0], True, True,  # the layer is batch_first
                                       "SequenceClassifier")
            mask = None
        out, state = self.rnn(x, lengths=lengths, mask=mask)
        if self.pooling == "mean":
            pooled = _mean_over_steps(out, lengths)
        else:
            h_n = state[0] if self.kind == "lstm" else state
            directions = self.rnn.num_directions
            tops = [h_n[h_n.shape[0] - directions + d] for d in range(directions)]
            pooled = tops[0] if directions == 1 else F.concatenate(tops, axis=-1)
        return self.head(self.dropout(pooled))


def _mean_over_steps(out: Tensor, lengths: Any) -> Tensor:
    """Mean of ``(N, T, F)`` over the first ``lengths[i]`` steps (the recurrent layer already
    outputs zeros at padded steps, so a sum divided by the length is the masked mean)."""
    if lengths is None:
        return F.mean(out, axis=1)
    counts = np.asarray(lengths.numpy() if isinstance(lengths, Tensor) else lengths).reshape(-1, 1)
    scale = Tensor._wrap((1.0 / counts).astype(out.dtype), False)
    return F.sum(out, axis=1) * scale


class CharVocab:
    """The sorted set of characters of a text, with ``encode`` (text to ids) and ``decode``.

    Args:
        text: The text whose characters form the vocabulary.
    """

    def __init__(self, text: str) -> None:
        if not isinstance(text, str) or not text:
            raise ValueError("CharVocab: text must be a non-empty string")
        self.chars = sorted(set(text))
        self._index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """The ids of the characters of ``text`` (int64 array)."""
        unknown = sorted(set(text) - self._index.keys())
        if unknown:
            raise ValueError(f"CharVocab.encode: characters not in the vocabulary: {unknown[:10]!r}")
        return np.fromiter((self._index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids: Any) -> str:
        """The text of a sequence of ids."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.chars)):
            raise ValueError(f"CharVocab.decode: ids must be in 0..{len(self.chars) - 1}, got values from "
                             f"{ids.min()} to {ids.max()}")
        return "".join(self.chars[i] for i in ids)

    def __repr__(self) -> str:
        return f"CharVocab({len(self.chars)} characters)"


class CharLanguageModel(_KeepsArguments):
    """A character-level language model: embedding, recurrent stack, linear layer to the next
    character's scores at every step (train with ``F.cross_entropy`` on the inputs shifted by one).

    Args:
        vocab_size: Number of characters.
        embedding_dim: Width of the character embedding.
        hidden_size: Hidden units of each recurrent layer.
        num_layers: Stacked recurrent layers.
        kind: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        dropout: Dropout between recurrent layers and before the output layer (training only).
        generator: Random source of the initialization and the dropout masks.

    Shape:
        - Input: ``(N, T)`` character ids; state: the recurrent layer's ``hx`` (or None).
        - Output: ``(logits (N, T, vocab_size), state)``.
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 32, hidden_size: int = 128, num_layers: int = 1,
                 kind: str = "lstm", dropout: float = 0.0, generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        self.vocab_size, self.kind = vocab_size, kind
        self.embedding = nn.Embedding(vocab_size, embedding_dim, generator=generator)
        self.rnn = _recurrent(kind, "CharLanguageModel", embedding_dim, hidden_size, num_layers, False,
                              dropout, generator)
        self.dropout = nn.Dropout(dropout, generator)
        self.head = nn.Linear(hidden_size, vocab_size, generator=generator)

    def forward(self, tokens: Any, state: Any = None) -> tuple[Tensor, Any]:
        ids = _token_ids(tokens, "CharLanguageModel", self.vocab_size)
        out, state = self.rnn(self.embedding(ids), state)
        return self.head(self.dropout(out)), state

    def generate(self, start: str | Sequence[int] | np.ndarray, length: int, temperature: float = 1.0,
                 generator: Generator | None = None, vocab: CharVocab | None = None) -> str | np.ndarray:
        """Sample ``length`` characters that follow ``start``, one at a time.

        Args:
            start: The prompt: a string (needs ``vocab``) or a sequence of at least one id.
            length: Number of characters to sample.
            temperature: Divides the scores before the softmax: below 1 sharper, above 1 flatter;
                0 takes the most likely character (greedy).
            generator: Random source of the sampling (the default generator if None).
            vocab: Turns a string prompt into ids and the sample back into a string.

        Returns:
            The sampled continuation (without the prompt): a string when ``start`` is a string,
            else an int64 array of ``length`` ids.
        """
        ids = self._prompt(start, vocab)
        if not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"CharLanguageModel.generate: length must be a non-negative integer, got {length!r}")
        if temperature < 0:
            raise ValueError(f"CharLanguageModel.generate: temperature must be >= 0, got {temperature}")
        rng, was_training = resolve(generator), self.training
        self.eval()
        out = np.empty(length, np.int64)
        try:
            with no_grad():
                logits, state = self(ids[None])
                for i in range(length):
                    out[i] = _sample(logits.numpy()[0, -1], temperature, rng)
                    logits, state = self(out[i:i + 1][None], state)
        finally:
            self.train(was_training)
        return vocab.decode(out) if isinstance(start, str) else out

    def _prompt(self, start: Any, vocab: CharVocab | None) -> np.ndarray:
        if isinstance(start, str):
            if vocab is None:
                raise ValueError("CharLanguageModel.generate: a string prompt needs vocab= (a CharVocab)")
            ids = vocab.encode(start)
        else:
            ids = np.asarray(start, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            raise ValueError("CharLanguageModel.generate: the prompt must hold at least one character")
        return ids


def _sample(scores: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """One draw from softmax(scores / temperature) (argmax when the temperature is 0)."""
    if temperature == 0:
        return int(np.argmax(scores))
    z = scores.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(p) - 1))
