"""Multi-head attention (Vaswani et al. 2017), with PyTorch's parameters and state_dict keys."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet.autograd.tensor import Parameter, Tensor, as_tensor
from nurinet.functional._util import check_input_dtype
from nurinet.functional.attention import (
    Attention,
    additive_mask,
    causal_mask,
    check_mask_shape,
    dropout_multiplier,
    merge_heads,
    split_heads,
)
from nurinet.functional.dropout import check_probability
from nurinet.nn import init
from nurinet.nn.linear import Linear, _check_size, _float_dtype
from nurinet.nn.module import Module
from nurinet.random import Generator


class MultiheadAttention(Module):
    """Multi-head attention: ``concat(head_1..head_h) W_o`` with
    ``head_i = softmax(q W_qi (k W_ki)^T / sqrt(d)) v W_vi`` and ``d = embed_dim / num_heads``.

    Parameters and ``state_dict`` keys are PyTorch's (``in_proj_weight`` (3E, E) packing
    the query, key and value projections, ``in_proj_bias``, ``out_proj.weight``,
    ``out_proj.bias``; ``q_proj_weight``/``k_proj_weight``/``v_proj_weight`` when ``kdim``
    or ``vdim`` differ from ``embed_dim``), so a PyTorch state_dict loads as it is.
    Self-attention (``query is key is value``) projects with one GEMM on ``(N * L, E)``.

    Unlike PyTorch, ``batch_first=True`` is the default: inputs are ``(N, L, E)``.

    Args:
        embed_dim: Model width ``E`` (the query's feature size and the output's).
        num_heads: Number of heads; must divide ``embed_dim``.
        dropout: Dropout probability of the attention weights while training.
        bias: Learn biases for the input and output projections.
        kdim: Feature size of the key (default ``embed_dim``).
        vdim: Feature size of the value (default ``embed_dim``).
        batch_first: Inputs and outputs are ``(N, L, E)``; else ``(L, N, E)``.
        dtype: Parameter dtype (float32 by default).
        generator: Random source of the initialization and of the dropout masks.

    Shape:
        - query: ``(N, L, E)`` (``(L, N, E)`` unless batch_first; ``(L, E)`` unbatched)
        - key: ``(N, S, kdim)``; value: ``(N, S, vdim)``
        - key_padding_mask: ``(N, S)``, bool (``True`` = padding, ignored) or additive float
        - attn_mask: ``(L, S)`` or ``(N * num_heads, L, S)``, bool (``True`` = not allowed)
          or additive float
        - Output: ``(N, L, E)``, and weights ``(N, L, S)`` averaged over heads or
          ``(N, num_heads, L, S)``
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = True,
                 dtype: Any = None, generator: Generator | None = None) -> None:
        super().__init__()
        self.embed_dim = _check_size(embed_dim, "embed_dim", "MultiheadAttention")
        self.num_heads = _check_size(num_heads, "num_heads", "MultiheadAttention")
        check_divisible_heads(embed_dim, num_heads, "MultiheadAttention", "embed_dim", "num_heads")
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else _check_size(kdim, "kdim", "MultiheadAttention")
        self.vdim = embed_dim if vdim is None else _check_size(vdim, "vdim", "MultiheadAttention")
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout = check_probability(dropout, "MultiheadAttention")
        self.batch_first = bool(batch_first)
        self.generator = generator
        dtype = _float_dtype(dtype, "MultiheadAttention")
        e = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * e, e), dtype))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(np.empty((e, e), dtype))
            self.k_proj_weight = Parameter(np.empty((e, self.kdim), dtype))
            self.v_proj_weight = Parameter(np.empty((e, self.vdim), dtype))
        self.register_parameter("in_proj_bias", Parameter(np.empty(3 * e, dtype)) if bias else None)
        self.out_proj = Linear(e, e, bias=bias, dtype=dtype, generator=generator)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """PyTorch's initialization: Xavier-uniform projections, zero biases, and the
        output projection's weight as a Linear layer's."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight, generator=generator)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w, generator=generator)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    # ----- forward ---------------------------------------------------------------------
    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Any = None,
                need_weights: bool = True, attn_mask: Any = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query, key, value: See ``Shape`` in the class docstring.
            key_padding_mask: Marks padded keys of each sequence (``True`` = ignore).
            need_weights: Also return the attention weights (after dropout, as PyTorch).
            attn_mask: Positions a query may not attend to (bool ``True`` = not allowed) or
                an additive float mask.
            average_attn_weights: Average the returned weights over the heads.
            is_causal: Apply the causal mask (query ``i`` sees keys ``0..i``); used when
                ``attn_mask`` is None, else ``attn_mask`` is taken to be that mask already.

        Returns:
            ``(output, weights)``; ``weights`` is None unless ``need_weights``.
        """
        self_attention = query is key and key is value
        query, key, value = as_tensor(query), as_tensor(key), as_tensor(value)
        unbatched = query.ndim == 2
        self._check_inputs(query, key, value, unbatched)
        if unbatched:  # Add a batch dim of 1 where batch_first would put it.
            axis = 0 if self.batch_first else 1
            query, key, value = (F.unsqueeze(t, axis) for t in (query, key, value))
            key_padding_mask = None if key_padding_mask is None else _expand(key_padding_mask)
        batch_axis = 0 if self.batch_first else 1
        n, length, source = query.shape[batch_axis], query.shape[1 - batch_axis], key.shape[1 - batch_axis]
        q, k, v = self._project(query, key, value, self_attention)
        mask = self._mask(key_padding_mask, attn_mask, is_causal, n, length, source, query)
        drop = None
        if self.training and self.dropout > 0.0:
            drop = dropout_multiplier((n, self.num_heads, length, source), self.dropout, query.dtype,
                                      self.generator, query.device)
        result = Attention(1.0 / math.sqrt(self.head_dim), mask, drop, need_weights)(q, k, v)
        out, weights = result if need_weights else (result, None)
        out = self.out_proj(merge_heads(out, self.batch_first))
        if weights is not None and average_attn_weights:
            weights = F.mean(weights, axis=1)
        if unbatched:
            out = F.squeeze(out, batch_axis)
            weights = None if weights is None else F.squeeze(weights, 0)
        return out, weights

    def _project(self, query: Tensor, key: Tensor, value: Tensor, self_attention: bool) -> tuple:
        """The (N, H, L, D) query, key and value heads, with as few GEMMs as possible."""
        e, h, bf = self.embed_dim, self.num_heads, self.batch_first
        b = self.in_proj_bias
        if self._qkv_same_embed_dim:
            if self_attention:
                return split_heads(F.linear(query, self.in_proj_weight, b), h, 3, bf)
            w = self.in_proj_weight
            q = split_heads(F.linear(query, w[:e], None if b is None else b[:e]), h, 1, bf)
            if key is value:  # Encoder-decoder attention: one GEMM for key and value.
                k, v = split_heads(F.linear(key, w[e:], None if b is None else b[e:]), h, 2, bf)
                return q, k, v
            wk, wv = w[e:2 * e], w[2 * e:]
        else:
            q = split_heads(F.linear(query, self.q_proj_weight, None if b is None else b[:e]), h, 1, bf)
            wk, wv = self.k_proj_weight, self.v_proj_weight
        k = split_heads(F.linear(key, wk, None if b is None else b[e:2 * e]), h, 1, bf)
        v = split_heads(F.linear(value, wv, None if b is None else b[2 * e:]), h, 1, bf)
        return q, k, v

    def _mask(self, key_padding_mask: Any, attn_mask: Any, is_causal: bool, n: int, length: int,
              source: int, query: Tensor) -> Any:
        """One additive mask broadcastable to the (N, H, L, S) scores, or None."""
        where, dtype = "MultiheadAttention", query.dtype
        h, mask = self.num_heads, None
        if attn_mask is not None:
            mask = additive_mask(attn_mask, dtype, True, where + " attn_mask", query.device)
            if mask.shape == (n * h, length, source):
                mask = mask.reshape(n, h, length, source)
            elif mask.shape != (length, source):
                raise ValueError(
                    f"{where}: attn_mask has shape {tuple(mask.shape)}, expected (L, S) = "
                    f"{(length, source)} or (N * num_heads, L, S) = {(n * h, length, source)}"
                )
        elif is_causal:
            mask = causal_mask(length, source, dtype, query.device)
        if key_padding_mask is not None:
            padding = additive_mask(key_padding_mask, dtype, True, where + " key_padding_mask", query.device)
            if padding.shape != (n, source):
                raise ValueError(
                    f"{where}: key_padding_mask has shape {tuple(padding.shape)}, expected (N, S) = "
                    f"{(n, source)} (batch size, key sequence length)"
                )
            padding = padding.reshape(n, 1, 1, source)
            mask = padding if mask is None else mask + padding
        if mask is not None:
            check_mask_shape(mask, (n, h, length, source), where, "(N, H, L, S)")
        return mask

    def _check_inputs(self, query: Tensor, key: Tensor, value: Tensor, unbatched: bool) -> None:
        where = "MultiheadAttention"
        layout = "(L, E)" if unbatched else ("(N, L, E)" if self.batch_first else "(L, N, E)")
        ndim = 2 if unbatched else 3
        for name, t, size in (("query", query, self.embed_dim), ("key", key, self.kdim),
                              ("value", value, self.vdim)):
            if t.ndim != ndim:
                raise ValueError(f"{where}: {name} must be {ndim}-D {layout} like the query, got shape {t.shape}")
            if t.shape[-1] != size:
                raise ValueError(
                    f"{where}: {name} has {t.shape[-1]} features (shape {t.shape}) but the layer expects "
                    f"{size} ({'embed_dim' if name == 'query' else name[0] + 'dim'})"
                )
        seq = 0 if unbatched or not self.batch_first else 1
        if key.shape[seq] != value.shape[seq]:
            raise ValueError(f"{where}: key {key.shape} and value {value.shape} must have the same "
                             "sequence length")
        if not unbatched and not query.shape[1 - seq] == key.shape[1 - seq] == value.shape[1 - seq]:
            raise ValueError(f"{where}: query {query.shape}, key {key.shape} and value {value.shape} "
                             "must have the same batch size")
        for name, t in (("query", query), ("key", key), ("value", value)):
            check_input_dtype(t, self.out_proj.weight, where, name)

    def extra_repr(self) -> str:
        text = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}"
        if not self._qkv_same_embed_dim:
            text += f", kdim={self.kdim}, vdim={self.vdim}"
        return text + f", batch_first={self.batch_first}"


def check_divisible_heads(width: int, heads: int, owner: str, width_name: str, heads_name: str) -> None:
    """Raise a ValueError naming ``owner`` and the valid head counts unless ``heads`` divides ``width``."""
    if width % heads:
        divisors = [d for d in range(1, width + 1) if width % d == 0]
        raise ValueError(
            f"{owner}: {width_name} ({width}) must be divisible by {heads_name} ({heads}); each head gets "
            f"{width_name} // {heads_name} features. Use a {heads_name} among {divisors[:12]} or change "
            f"{width_name} to a multiple of {heads}"
        )


def _expand(mask: Any) -> Any:
    array = mask.array if isinstance(mask, Tensor) else np.asarray(mask)
    return array[None]
