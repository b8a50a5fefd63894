"""Composite twins of the fused normalization ops, built from elementary Tensor ops.

They follow the textbook definitions step by step (mean, centered input, biased
variance, reciprocal square root, affine), so autograd differentiates them without
any hand-written gradient. Tests use them as oracles for the fused
:class:`~nurinet.functional.normalization.Normalize` op, including second-order
gradients. They are slower and are not meant for training.
"""

from __future__ import annotations

from collections.abc import Sequence

from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional import reduction as rd
from nurinet.functional.shape import reshape


def normalize_composite(x: Tensor, axes: Sequence[int], weight: Tensor | None = None,
                        bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over ``axes``, op by op."""
    x = as_tensor(x)
    axes = tuple(axes)
    centered = x - rd.mean(x, axis=axes, keepdims=True)
    var = rd.mean(centered * centered, axis=axes, keepdims=True)
    y = centered / (var + eps) ** 0.5
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def batch_norm_composite(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None,
                         eps: float = 1e-5) -> Tensor:
    """Training-mode batch norm of ``(N, C, *)`` with batch statistics (no running statistics)."""
    x = as_tensor(x)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    w = None if weight is None else reshape(weight, shape)
    b = None if bias is None else reshape(bias, shape)
    return normalize_composite(x, (0,) + tuple(range(2, x.ndim)), w, b, eps)


def layer_norm_composite(x: Tensor, normalized_shape: Sequence[int], weight: Tensor | None = None,
                         bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer norm over the trailing ``normalized_shape`` dims."""
    x = as_tensor(x)
    k = len(tuple(normalized_shape))
    return normalize_composite(x, tuple(range(x.ndim - k, x.ndim)), weight, bias, eps)


def group_norm_composite(x: Tensor, num_groups: int, weight: Tensor | None = None,
                         bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Group norm of ``(N, C, *)`` with ``num_groups`` groups of consecutive channels."""
    x = as_tensor(x)
    n, c = x.shape[0], x.shape[1]
    y = reshape(normalize_composite(reshape(x, (n, num_groups, -1)), (2,), eps=eps), x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * reshape(weight, shape)
    if bias is not None:
        y = y + reshape(bias, shape)
    return y
