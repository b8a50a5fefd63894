"""Transformer encoder and decoder layers and stacks (Vaswani et al. 2017), post-norm as in
the paper or pre-norm (``norm_first``), with PyTorch's parameter names and state_dict keys.

Unlike PyTorch, ``batch_first=True`` is the default: inputs are ``(N, L, d_model)``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional._util import check_input_dtype
from nurinet.functional.dropout import check_probability
from nurinet.nn.attention import MultiheadAttention, check_divisible_heads
from nurinet.nn.container import ModuleList
from nurinet.nn.dropout import Dropout
from nurinet.nn.linear import Linear, _check_size
from nurinet.nn.module import Module
from nurinet.nn.normalization import LayerNorm
from nurinet.random import Generator

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {"relu": F.relu, "gelu": F.gelu}


def _activation(activation: Any, owner: str) -> Callable[[Tensor], Tensor]:
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"{owner}: activation must be 'relu', 'gelu' or a callable, got {activation!r}")
        return _ACTIVATIONS[activation]
    if not callable(activation):
        raise TypeError(f"{owner}: activation must be 'relu', 'gelu' or a callable, "
                        f"got {type(activation).__name__}")
    return activation


class _Layer(Module):
    """What the encoder and decoder layers share: sizes, feed-forward block, dropouts."""

    def _setup(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, activation: Any,
               layer_norm_eps: float, batch_first: bool, norm_first: bool, bias: bool, dtype: Any,
               generator: Generator | None, norms: int) -> None:
        owner = type(self).__name__
        d_model = _check_size(d_model, "d_model", owner)
        check_divisible_heads(d_model, _check_size(nhead, "nhead", owner), owner, "d_model", "nhead")
        dim_feedforward = _check_size(dim_feedforward, "dim_feedforward", owner)
        p = check_probability(dropout, owner)
        # Constructor arguments, kept so nurinet.save can rebuild the layer (see get_config).
        self._init_config = {
            "d_model": d_model, "nhead": nhead, "dim_feedforward": dim_feedforward, "dropout": p,
            "activation": activation, "layer_norm_eps": layer_norm_eps, "batch_first": bool(batch_first),
            "norm_first": bool(norm_first), "bias": bool(bias),
        }
        self.batch_first, self.norm_first = bool(batch_first), bool(norm_first)
        self.activation = _activation(activation, owner)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=p, bias=bias, batch_first=batch_first,
                                            dtype=dtype, generator=generator)
        if norms == 3:
            self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=p, bias=bias,
                                                     batch_first=batch_first, dtype=dtype, generator=generator)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, generator=generator)
        self.dropout = Dropout(p, generator)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, generator=generator)
        for i in range(1, norms + 1):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        for i in range(1, norms + 1):
            setattr(self, f"dropout{i}", Dropout(p, generator))

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (the activation as given: a name or a callable)."""
        return dict(self._init_config)

    def _ff_block(self, x: Tensor, dropout: Dropout) -> Tensor:
        # With a ReLU, linear1 and the activation run as one op when nothing watches either (as in
        # Sequential): the same values, and the pre-activation array is never kept for the backward.
        if type(self.linear1) is Linear and self.linear1.runs_fused_with(self.activation):
            hidden = self.linear1.forward_with_relu(x)
        else:
            hidden = self.activation(self.linear1(x))
        return dropout(self.linear2(self.dropout(hidden)))

    def _check(self, x: Tensor, name: str) -> Tensor:
        x = as_tensor(x)
        d = self.linear1.in_features
        if x.ndim not in (2, 3) or x.shape[-1] != d:
            layout = "(N, L, d_model)" if self.batch_first else "(L, N, d_model)"
            raise ValueError(f"{type(self).__name__}: {name} must have shape {layout} with d_model={d}, "
                             f"got shape {x.shape}")
        check_input_dtype(x, self.linear1.weight, type(self).__name__, name)
        return x

    def _batch_and_length(self, x: Tensor) -> tuple[int | None, int]:
        """``(N, L)`` of a checked input (``N`` is None for an unbatched ``(L, d_model)`` input)."""
        if x.ndim == 2:
            return None, x.shape[0]
        return (x.shape[0], x.shape[1]) if self.batch_first else (x.shape[1], x.shape[0])

    def _check_padding(self, mask: Any, name: str, x: Tensor, what: str) -> None:
        """A key padding mask must be ``(N, L)`` for the sequence ``x`` it marks (``(L,)`` unbatched)."""
        if mask is None:
            return
        n, length = self._batch_and_length(x)
        expected = (length,) if n is None else (n, length)
        shape = _shape_of(mask)
        if shape != expected:
            raise ValueError(
                f"{type(self).__name__}: {name} has shape {shape}, expected {expected} (batch size, {what} "
                f"length), True at padded positions; from lengths: np.arange(L)[None, :] >= lengths[:, None]"
            )

    def _check_attn_mask(self, mask: Any, name: str, queries: Tensor, keys: Tensor) -> None:
        """An attention mask must be ``(L, S)`` or ``(N * nhead, L, S)``."""
        if mask is None:
            return
        (n, length), (_, source) = self._batch_and_length(queries), self._batch_and_length(keys)
        heads = self.self_attn.num_heads
        allowed = [(length, source)] + ([] if n is None else [(n * heads, length, source)])
        shape = _shape_of(mask)
        if shape not in allowed:
            raise ValueError(
                f"{type(self).__name__}: {name} has shape {shape}, expected (L, S) = {allowed[0]}"
                + ("" if n is None else f" or (N * nhead, L, S) = {allowed[1]}")
                + " (query length, key length); one mask shared by the batch is (L, S)"
            )

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}, batch_first={self.batch_first}"


class TransformerEncoderLayer(_Layer):
    """Self-attention and a feed-forward network, each with a residual connection and
    layer normalization: post-norm ``x = norm(x + block(x))`` (the paper's) or, with
    ``norm_first``, pre-norm ``x = x + block(norm(x))`` (more stable in deep stacks).

    Args:
        d_model: Model width.
        nhead: Attention heads (must divide ``d_model``).
        dim_feedforward: Hidden width of the feed-forward network.
        dropout: Dropout probability (attention weights, feed-forward and residual branches).
        activation: ``"relu"``, ``"gelu"`` or a callable.
        layer_norm_eps: LayerNorm epsilon.
        batch_first: Inputs are ``(N, L, d_model)`` (default); else ``(L, N, d_model)``.
        norm_first: Pre-norm instead of post-norm.
        bias: Learn biases in the linear layers and the layer norms.
        dtype: Parameter dtype (float32 by default).
        generator: Random source of the initialization and the dropout masks.

    Shape:
        - src: ``(N, L, d_model)`` (``(L, N, d_model)`` unless batch_first)
        - src_mask: ``(L, L)`` or ``(N * nhead, L, L)``; src_key_padding_mask: ``(N, L)``
        - Output: the shape of ``src``
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Any = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = True,
                 norm_first: bool = False, bias: bool = True, dtype: Any = None,
                 generator: Generator | None = None) -> None:
        super().__init__()
        self._setup(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                    norm_first, bias, dtype, generator, norms=2)

    def forward(self, src: Tensor, src_mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool = False) -> Tensor:
        x = self._check(src, "src")
        self._check_attn_mask(src_mask, "src_mask", x, x)
        self._check_padding(src_key_padding_mask, "src_key_padding_mask", x, "source")
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x), self.dropout2)
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x, self.dropout2))

    def _sa_block(self, x: Tensor, mask: Any, padding: Any, is_causal: bool) -> Tensor:
        out, _ = self.self_attn(x, x, x, key_padding_mask=padding, need_weights=False, attn_mask=mask,
                                is_causal=is_causal)
        return self.dropout1(out)


class TransformerDecoderLayer(_Layer):
    """Masked self-attention, attention over the encoder's output (``memory``) and a
    feed-forward network, each with a residual connection and layer normalization
    (post-norm, or pre-norm with ``norm_first``).

    Args: as :class:`TransformerEncoderLayer`.

    Shape:
        - tgt: ``(N, T, d_model)``; memory: ``(N, S, d_model)`` (time first unless batch_first)
        - tgt_mask: ``(T, T)``; memory_mask: ``(T, S)``; tgt_key_padding_mask: ``(N, T)``;
          memory_key_padding_mask: ``(N, S)``
        - Output: the shape of ``tgt``
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Any = "relu", layer_norm_eps: float = 1e-5, batch_first: bool = True,
                 norm_first: bool = False, bias: bool = True, dtype: Any = None,
                 generator: Generator | None = None) -> None:
        super().__init__()
        self._setup(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                    norm_first, bias, dtype, generator, norms=3)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Any = None, memory_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None,
                tgt_is_causal: bool = False, memory_is_causal: bool = False) -> Tensor:
        x, memory = self._check(tgt, "tgt"), self._check(memory, "memory")
        if (x.ndim == 3) != (memory.ndim == 3) or (x.ndim == 3 and self._batch_and_length(x)[0]
                                                   != self._batch_and_length(memory)[0]):
            raise ValueError(f"TransformerDecoderLayer: tgt {x.shape} and memory {memory.shape} must both be "
                             "batched with the same batch size, or both unbatched")
        self._check_attn_mask(tgt_mask, "tgt_mask", x, x)
        self._check_attn_mask(memory_mask, "memory_mask", x, memory)
        self._check_padding(tgt_key_padding_mask, "tgt_key_padding_mask", x, "target")
        self._check_padding(memory_key_padding_mask, "memory_key_padding_mask", memory, "memory")
        self_args = (tgt_mask, tgt_key_padding_mask, tgt_is_causal)
        cross_args = (memory_mask, memory_key_padding_mask, memory_is_causal)
        if self.norm_first:
            x = x + self._attend(self.self_attn, self.norm1(x), None, self.dropout1, *self_args)
            x = x + self._attend(self.multihead_attn, self.norm2(x), memory, self.dropout2, *cross_args)
            return x + self._ff_block(self.norm3(x), self.dropout3)
        x = self.norm1(x + self._attend(self.self_attn, x, None, self.dropout1, *self_args))
        x = self.norm2(x + self._attend(self.multihead_attn, x, memory, self.dropout2, *cross_args))
        return self.norm3(x + self._ff_block(x, self.dropout3))

    @staticmethod
    def _attend(attn: MultiheadAttention, x: Tensor, memory: Tensor | None, dropout: Dropout, mask: Any,
                padding: Any, is_causal: bool) -> Tensor:
        kv = x if memory is None else memory
        out, _ = attn(x, kv, kv, key_padding_mask=padding, need_weights=False, attn_mask=mask,
                      is_causal=is_causal)
        return dropout(out)


def _shape_of(mask: Any) -> tuple[int, ...]:
    return tuple((mask.array if isinstance(mask, Tensor) else np.asarray(mask)).shape)


class TransformerEncoder(Module):
    """A stack of ``num_layers`` copies of an encoder layer, and an optional final norm.

    Args:
        encoder_layer: The layer to copy (each copy has its own parameters; as PyTorch,
            the copies start equal).
        num_layers: Number of layers.
        norm: Applied to the output (e.g. a LayerNorm after a pre-norm stack), or None.

    Shape:
        As :class:`TransformerEncoderLayer`.
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(_check_size(
            num_layers, "num_layers", "TransformerEncoder"))])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src: Tensor, mask: Any = None, src_key_padding_mask: Any = None,
                is_causal: bool = False) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        return x if self.norm is None else self.norm(x)


class TransformerDecoder(Module):
    """A stack of ``num_layers`` copies of a decoder layer, and an optional final norm.

    Args:
        decoder_layer: The layer to copy.
        num_layers: Number of layers.
        norm: Applied to the output, or None.

    Shape:
        As :class:`TransformerDecoderLayer`.
    """

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None) -> None:
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(_check_size(
            num_layers, "num_layers", "TransformerDecoder"))])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Any = None, memory_mask: Any = None,
                tgt_key_padding_mask: Any = None, memory_key_padding_mask: Any = None,
                tgt_is_causal: bool = False, memory_is_causal: bool = False) -> Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
        return x if self.norm is None else self.norm(x)
