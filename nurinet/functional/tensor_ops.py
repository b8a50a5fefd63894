"""Everyday tensor ops under PyTorch's names: clone, contiguous, masked_fill, diag, bmm, mm.

Built from the registered ops (``where``, indexing, ``matmul``) where they can be, so each is
differentiable without a new backward; ``Clone`` is the one new op.
"""

from __future__ import annotations

from typing import Any

from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional._util import xp_of


class Clone(Function):
    """A copy of the data that stays in the graph (the gradient passes through unchanged)."""

    def forward(self, x: Any) -> Any:
        return x.copy()

    def backward(self, gy: Tensor) -> Tensor:
        return gy


def clone(x: Any) -> Tensor:
    """A copy of ``x`` with its own data; differentiable, as ``torch.clone``."""
    return Clone()(as_tensor(x))


def contiguous(x: Tensor) -> Tensor:
    """``x`` itself when its data is C-contiguous, else a contiguous differentiable copy."""
    return x if x.array.flags.c_contiguous else clone(x)


def masked_fill(x: Tensor, mask: Any, value: Any) -> Tensor:
    """``x`` with ``value`` where ``mask`` is true (``mask`` broadcasts), as ``Tensor.masked_fill``."""
    from nurinet.functional.elementwise import where

    cond = mask.array if isinstance(mask, Tensor) else mask
    if xp_of(cond).asarray(cond).dtype != bool:
        raise TypeError(f"masked_fill: the mask must be boolean, got dtype {xp_of(cond).asarray(cond).dtype}")
    if isinstance(value, Tensor) and value.ndim == 0 and not value.requires_grad:
        value = value.item()
    return where(cond, value, x)


def diag(x: Any, diagonal: int = 0) -> Tensor:
    """A 1-D ``x`` as the ``diagonal``-th diagonal of a square matrix, or a matrix's diagonal as 1-D.

    Differentiable: built from indexing and broadcasting.
    """
    from nurinet.functional.indexing import getitem
    from nurinet.functional.shape import pad

    x = as_tensor(x)
    xp = xp_of(x.array)
    if x.ndim == 1:
        n = x.shape[0]
        square = xp.eye(n, dtype=x.dtype) * x  # row i, column j: v[j] where i == j
        k = abs(diagonal)
        width = ((0, k), (k, 0)) if diagonal > 0 else ((k, 0), (0, k))
        return pad(square, width) if k else square
    if x.ndim == 2:
        rows = xp.arange(max(0, -diagonal), min(x.shape[0], x.shape[1] - diagonal))
        return getitem(x, (rows, rows + diagonal))
    raise ValueError(f"diag expects a 1-D or 2-D tensor, got shape {x.shape}")


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched matrix product of two 3-D tensors ``(B, n, m) @ (B, m, p)``, as ``torch.bmm``."""
    from nurinet.functional.linalg import matmul

    if a.ndim != 3 or b.ndim != 3:
        raise ValueError(f"bmm expects two 3-D tensors, got shapes {a.shape} and {b.shape}; use matmul")
    return matmul(a, b)


def mm(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product of two 2-D tensors, as ``torch.mm``."""
    from nurinet.functional.linalg import matmul

    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"mm expects two 2-D tensors, got shapes {a.shape} and {b.shape}; use matmul")
    return matmul(a, b)


def is_tensor(obj: object) -> bool:
    """True when ``obj`` is a nurinet Tensor."""
    return isinstance(obj, Tensor)


def numel(x: Tensor) -> int:
    """The number of elements of ``x``."""
    return x.numel()
