"""Attention: scaled dot-product attention as one fused op, and the head split/merge ops
that multi-head attention uses around it.

``Attention`` computes ``softmax(q k^T * scale + mask) @ v`` (with an optional dropout
of the weights) in one ``Function``: forward keeps the softmax weights, and the array
backward reuses them, so a training step makes no node or temporary Tensor for the
score matrix. The batched products run through NumPy's stacked ``matmul`` on the
(batch, heads, L, S) scores only; the projections around attention are 2-D GEMMs (see
``nurinet.nn.attention``). ``SplitHeads``/``MergeHeads`` move between the packed
``(N, L, parts * E)`` projection and ``(N, heads, L, head_dim)`` views without a copy
in forward.

The row softmax of float32 scores, its backward, and large NumPy attention cut along a batch axis
into pieces that each run the whole chain (:func:`_attend`, :func:`_attend_backward`) on their own
thread are the fast routines of :mod:`nurinet._runtime.fast.attention`; each element is computed by
the same code either way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nurinet import backend
from nurinet._runtime import gemm
from nurinet._runtime.fast import attention as fast_attention
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional import reduction as rd
from nurinet.functional._util import xp_of
from nurinet.functional.activation import softmax
from nurinet.functional.dropout import check_probability
from nurinet.functional.linalg import matmul
from nurinet.functional.shape import permute, reshape, swapaxes
from nurinet.random import Generator, keep_mask


def _const(array: Any) -> Tensor:
    return Tensor._wrap(array, False)


def _softmax_rows(s: Any, dead: Any = None) -> tuple[Any, Any]:
    """Softmax over the last axis, in place; rows that are entirely ``-inf`` become zeros.

    A query that may attend to no key (every key masked) gets all-zero weights, hence a
    zero output and zero gradients, instead of NaN (as PyTorch's math attention since 2.5).
    Returns the weights and the bool (*, L, 1) array of such rows (None when there is none).
    ``dead``, when given, is that (*, L, 1) array to fill (a slice of a larger one), filled in
    every case.
    """
    if s.shape[-1] == 0:  # no keys: no weights, and the output (a sum over no values) is zero, as in PyTorch
        if dead is not None:
            dead[...] = False
        return s, None
    done = fast_attention.softmax_rows(s, dead)
    if done is not None:
        return done
    xp = xp_of(s)
    m = s.max(axis=-1, keepdims=True)
    dead = xp.isneginf(m) if dead is None else xp.isneginf(m, out=dead)
    if not dead.any():
        dead = None
    else:
        m = xp.where(dead, 0.0, m).astype(s.dtype)
    s -= m
    xp.exp(s, out=s)
    total = s.sum(axis=-1, keepdims=True)
    if dead is not None:
        total[dead] = 1.0
    s /= total
    return s, dead


def _softmax_grad_(gp: Any, p: Any) -> None:
    """The softmax backward ``gp = (gp - sum(gp * p)) * p`` over the last axis, in place on ``gp``."""
    if fast_attention.softmax_rows_backward_(gp, p) is not None:
        return
    gp -= xp_of(gp).einsum("...s,...s->...", gp, p)[..., None]
    gp *= p


def _attend(q: Any, k: Any, v: Any, scale: float, mask: Any, drop: Any, s: Any = None, dead: Any = None,
            pd: Any = None, out: Any = None) -> tuple[Any, Any, Any, Any]:
    """The forward chain on arrays: the scores, their row softmax ``p``, the dropped weights ``pd``
    and the weighted sum; written into ``s``, ``dead``, ``pd`` and ``out`` where given (the slices
    of one piece of a split run). Returns ``(p, dead rows or None, pd, out)``."""
    s = gemm.matmul(q, k.swapaxes(-1, -2), out=s)
    s *= s.dtype.type(scale)
    if mask is not None:
        s += mask
    p, dead = _softmax_rows(s, dead)
    pd = p if drop is None else xp_of(p).multiply(p, drop, out=pd)
    return p, dead, pd, gemm.matmul(pd, v, out=out)


def _attend_backward(q: Any, k: Any, v: Any, p: Any, pd: Any, drop: Any, gout: Any, gw: Any, scale: float,
                     needs: tuple[bool, ...], gq: Any = None, gk: Any = None, gv: Any = None) -> tuple[Any, Any, Any]:
    """The backward chain on arrays, into ``gq``, ``gk`` and ``gv`` where given (one piece's slices)."""
    gv = gemm.matmul(pd.swapaxes(-1, -2), gout, out=gv) if needs[2] else None
    if not (needs[0] or needs[1]):
        return None, None, gv
    gp = gemm.matmul(gout, v.swapaxes(-1, -2))
    if gw is not None:
        gp += gw
    if drop is not None:
        gp *= drop
    # Softmax backward dS = P * (dP - sum(dP * P)), in place on dP (a fresh array); the
    # score scale is applied to the (smaller) query and key gradients instead.
    _softmax_grad_(gp, p)
    factor = gp.dtype.type(scale)
    gq = gemm.matmul(gp, k, out=gq) if needs[0] else None
    gk = gemm.matmul(gp.swapaxes(-1, -2), q, out=gk) if needs[1] else None
    if gq is not None:
        gq *= factor
    if gk is not None:
        gk *= factor
    return gq, gk, gv


class Attention(Function):
    """``out = dropout(softmax(q @ k^T * scale + mask)) @ v`` over the last two axes.

    ``q``: (*, L, E), ``k``: (*, S, E), ``v``: (*, S, Ev), batch dims broadcasting.
    ``mask`` (an additive float array broadcastable to (*, L, S), ``-inf`` where a key is
    excluded) and ``drop`` (the dropout multiplier, zeros and ``1 / (1 - p)``) are
    constants. With ``need_weights`` the op has a second output, the weights after
    dropout (what multiplies ``v``), as PyTorch's multi-head attention returns them.

    backward_arrays: the Transformer benchmark.
    """

    def __init__(self, scale: float, mask: Any = None, drop: Any = None, need_weights: bool = False) -> None:
        self.scale, self.mask, self.drop, self.need_weights = scale, mask, drop, need_weights

    def forward(self, q: Any, k: Any, v: Any) -> Any:
        done = fast_attention.attend_split(_attend, q, k, v, self.scale, self.mask, self.drop)
        if done is None:
            done = _attend(q, k, v, self.scale, self.mask, self.drop)
        self.p, self.dead, self.pd, out = done
        return (out, self.pd) if self.need_weights else out

    def backward_arrays(self, gout: Any, gw: Any = None) -> tuple[Any, Any, Any]:
        q, k, v = (x.array for x in self.inputs)
        chain = (q, k, v, self.p, self.pd, self.drop, gout, gw, self.scale, self.needs_input_grad)
        grads = fast_attention.attend_backward_split(_attend_backward, *chain)
        return _attend_backward(*chain) if grads is None else grads

    def backward(self, gout: Tensor, gw: Tensor | None = None) -> tuple[Tensor | None, ...]:
        # The weights are rebuilt from q and k with Tensor ops, so this gradient can be
        # differentiated again.
        q, k, v = self.inputs
        scores = matmul(q, swapaxes(k, -1, -2)) * self.scale
        mask = self.mask
        if self.dead is not None:  # Unmask rows with every key masked, then zero their weights.
            mask = xp_of(mask).where(self.dead, 0.0, mask).astype(mask.dtype)
        if mask is not None:
            scores = scores + _const(mask)
        p = softmax(scores, axis=-1)
        if self.dead is not None:
            p = p * _const((~self.dead).astype(p.dtype))
        pd = p if self.drop is None else p * _const(self.drop)
        needs = self.needs_input_grad
        gv = matmul(swapaxes(pd, -1, -2), gout) if needs[2] else None
        gp = matmul(gout, swapaxes(v, -1, -2))
        if gw is not None:
            gp = gp + gw
        if self.drop is not None:
            gp = gp * _const(self.drop)
        gs = p * (gp - rd.sum(gp * p, axis=-1, keepdims=True)) * self.scale
        gq = matmul(gs, k) if needs[0] else None
        gk = matmul(swapaxes(gs, -1, -2), q) if needs[1] else None
        return gq, gk, gv


class SplitHeads(Function):
    """Split a packed projection ``(N, L, parts * H * D)`` (``(L, N, ...)`` unless
    ``batch_first``) into ``parts`` arrays of shape ``(N, H, L, D)``.

    Forward makes one transposing copy: NumPy's matmul reads strided views too, but the
    score products on contiguous heads are faster by more than the copy costs. Backward
    writes the head gradients back into one packed array.

    backward_arrays: the Transformer benchmark.
    """

    def __init__(self, heads: int, parts: int, batch_first: bool) -> None:
        self.heads, self.parts, self.batch_first = heads, parts, batch_first

    def forward(self, y: Any) -> Any:
        a, b, width = y.shape
        d = width // (self.parts * self.heads)
        y5 = y.reshape(a, b, self.parts, self.heads, d)
        order = (2, 0, 3, 1, 4) if self.batch_first else (2, 1, 3, 0, 4)
        packed = xp_of(y).ascontiguousarray(y5.transpose(order))  # (parts, N, H, L, D)
        return tuple(packed) if self.parts > 1 else packed[0]

    def backward_arrays(self, *gs: Any) -> Any:
        y = self.inputs[0].array
        a, b, width = y.shape
        g5 = xp_of(y).empty((a, b, self.parts, self.heads, width // (self.parts * self.heads)), y.dtype)
        axes = (0, 2, 1, 3) if self.batch_first else (2, 0, 1, 3)
        for i, g in enumerate(gs):
            g5[:, :, i] = g.transpose(axes)
        return g5.reshape(y.shape)

    def backward(self, *gs: Tensor) -> Tensor:
        from nurinet.functional.shape import concatenate

        y = self.inputs[0]
        axes = (0, 2, 1, 3) if self.batch_first else (2, 0, 1, 3)
        parts = [reshape(permute(g, axes), y.shape[:2] + (-1,)) for g in gs]
        return concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]


class MergeHeads(Function):
    """``(N, H, L, D)`` to ``(N, L, H * D)`` (``(L, N, H * D)`` unless ``batch_first``), contiguous.

    backward_arrays: the Transformer benchmark.
    """

    def __init__(self, batch_first: bool) -> None:
        self.batch_first = batch_first

    def forward(self, x: Any) -> Any:
        n, h, length, d = x.shape
        axes = (0, 2, 1, 3) if self.batch_first else (2, 0, 1, 3)
        shape = (n, length, h * d) if self.batch_first else (length, n, h * d)
        return xp_of(x).ascontiguousarray(x.transpose(axes)).reshape(shape)

    def _split_axes(self) -> tuple[int, ...]:
        return (0, 2, 1, 3) if self.batch_first else (1, 2, 0, 3)

    def backward_arrays(self, g: Any) -> Any:
        h, d = self.inputs[0].array.shape[1::2]
        return g.reshape(g.shape[:2] + (h, d)).transpose(self._split_axes())

    def backward(self, g: Tensor) -> Tensor:
        h, d = self.inputs[0].shape[1::2]
        return permute(reshape(g, g.shape[:2] + (h, d)), self._split_axes())


# ----- masks -------------------------------------------------------------------------

_CAUSAL: dict[tuple, Any] = {}


def causal_mask(length: int, source_length: int | None = None, dtype: Any = np.float32,
                device: str = "cpu") -> Any:
    """The additive causal mask ``(L, S)``: 0 on and below the diagonal, ``-inf`` above it
    (query ``i`` may attend to keys ``0..i``). Cached per shape, dtype and device; read only.
    """
    source_length = length if source_length is None else source_length
    key = (length, source_length, np.dtype(dtype).str, device)
    mask = _CAUSAL.get(key)
    if mask is None:
        upper = np.triu(np.ones((length, source_length), dtype=bool), k=1)
        mask = np.where(upper, -np.inf, 0.0).astype(dtype)
        mask.flags.writeable = False
        if device != "cpu":
            mask = backend.to_device(mask, device)
        _CAUSAL[key] = mask
    return mask


def additive_mask(mask: Any, dtype: Any, true_means_masked: bool, where: str, device: str = "cpu") -> Any:
    """A mask as an additive float array: bool masks become 0 / ``-inf``; float masks are
    added as they are (cast to ``dtype``). Masks are constants: no gradient flows into them.

    Args:
        mask: Bool or float array or Tensor.
        dtype: The dtype of the scores.
        true_means_masked: For a bool mask, whether ``True`` marks a position to exclude
            (PyTorch's MultiheadAttention) or one that takes part (PyTorch's SDPA).
        where: Name used in error messages.
        device: The device of the scores: a mask made on the host (NumPy) is moved there,
            as the causal mask and the dropout multipliers are.
    """
    array = backend.to_device(mask.array if isinstance(mask, Tensor) else mask, device)
    xp = xp_of(array)
    if array.dtype == bool:
        excluded = array if true_means_masked else ~array
        return xp.where(excluded, -np.inf, 0.0).astype(dtype)
    if array.dtype.kind != "f":
        raise TypeError(f"{where}: a mask must be bool or floating point, got dtype {array.dtype}")
    return array.astype(dtype, copy=False)


def dropout_multiplier(shape: tuple[int, ...], p: float, dtype: Any, generator: Generator | None,
                       device: str = "cpu") -> Any:
    """Inverted-dropout multipliers: 0 with probability ``p``, else ``1 / (1 - p)``."""
    drop = np.multiply(keep_mask(generator, shape, p), np.dtype(dtype).type(1.0 / (1.0 - p)))
    return drop if device == "cpu" else backend.to_device(drop, device)


# ----- wrapper -----------------------------------------------------------------------


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(
            "scaled_dot_product_attention: query, key and value need at least 2 dims (*, L, E), got "
            f"shapes {q.shape}, {k.shape}, {v.shape}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"scaled_dot_product_attention: query (shape {q.shape}) and key (shape {k.shape}) must "
            f"have the same size in the last dim, got {q.shape[-1]} and {k.shape[-1]}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"scaled_dot_product_attention: key (shape {k.shape}) and value (shape {v.shape}) must "
            f"have the same sequence length (dim -2), got {k.shape[-2]} and {v.shape[-2]}"
        )
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(
            f"scaled_dot_product_attention: query, key and value must share a dtype, got "
            f"{q.dtype}, {k.dtype}, {v.dtype}"
        )


def _batch_shape(q: Tensor, k: Tensor, v: Tensor) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2]))
    except ValueError:
        raise ValueError(
            f"scaled_dot_product_attention: the batch dims of query {q.shape}, key {k.shape} and "
            f"value {v.shape} (all but the last two) do not broadcast"
        ) from None


def check_mask_shape(mask: Any, scores_shape: tuple[int, ...], where: str, expected: str) -> None:
    """Raise a clear error when ``mask`` does not broadcast to the scores' shape."""
    shape = tuple(mask.shape)
    try:
        ok = np.broadcast_shapes(shape, scores_shape) == tuple(scores_shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{where}: the mask has shape {shape}, which does not broadcast to the attention "
            f"scores' shape {tuple(scores_shape)}; expected {expected}"
        )


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    need_weights: bool = False,
    generator: Generator | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    """``softmax(query @ key^T * scale + mask) @ value`` (Vaswani et al. 2017), as PyTorch's
    ``F.scaled_dot_product_attention``.

    Args:
        query: ``(*, L, E)``.
        key: ``(*, S, E)``.
        value: ``(*, S, Ev)``.
        attn_mask: Broadcastable to ``(*, L, S)``: a bool mask where ``True`` means the key
            *takes part* (PyTorch's SDPA convention), or a float mask added to the scores
            (``-inf`` excludes). Masks get no gradient.
        dropout_p: Dropout probability of the attention weights (0 when evaluating: this
            function has no training flag, pass 0.0 yourself).
        is_causal: Add the causal mask (query ``i`` sees keys ``0..i``); combines with
            ``attn_mask`` if both are given.
        scale: Score scale; default ``1 / sqrt(E)``.
        need_weights: Also return the attention weights (after dropout).
        generator: Source of the dropout mask (default: ``nurinet.manual_seed``'s).

    Returns:
        The output ``(*, L, Ev)``, or ``(output, weights)`` with weights ``(*, L, S)``. A
        query whose keys are all masked gets zero weights and a zero output.
    """
    q, k, v = as_tensor(query), as_tensor(key), as_tensor(value)
    _check_qkv(q, k, v)
    p = check_probability(dropout_p, "scaled_dot_product_attention")
    batch = _batch_shape(q, k, v)
    length, source = q.shape[-2], k.shape[-2]
    scores = batch + (length, source)
    mask = None
    if attn_mask is not None:
        mask = additive_mask(attn_mask, q.dtype, False, "scaled_dot_product_attention", q.device)
        check_mask_shape(mask, scores, "scaled_dot_product_attention",
                         f"a mask broadcastable to (*, L, S) = {scores}")
    if is_causal:
        causal = causal_mask(length, source, q.dtype, q.device)
        mask = causal if mask is None else mask + causal
    drop = dropout_multiplier(scores, p, q.dtype, generator, q.device) if p > 0.0 else None
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return Attention(scale, mask, drop, need_weights)(q, k, v)


def split_heads(y: Tensor, num_heads: int, parts: int = 1, batch_first: bool = True) -> Any:
    """Split a packed projection ``(N, L, parts * E)`` (``(L, N, ...)`` unless ``batch_first``)
    into ``parts`` tensors of shape ``(N, num_heads, L, E // num_heads)`` (one when parts is 1)."""
    y = as_tensor(y)
    if y.ndim != 3 or y.shape[-1] % (parts * num_heads):
        raise ValueError(
            f"split_heads: expected a 3-D input whose last dim is a multiple of parts * num_heads = "
            f"{parts * num_heads}, got shape {y.shape}"
        )
    return SplitHeads(num_heads, parts, batch_first)(y)


def merge_heads(x: Tensor, batch_first: bool = True) -> Tensor:
    """``(N, H, L, D)`` to ``(N, L, H * D)`` (``(L, N, H * D)`` unless ``batch_first``)."""
    x = as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"merge_heads: expected a 4-D input (N, H, L, D), got shape {x.shape}")
    return MergeHeads(batch_first)(x)
