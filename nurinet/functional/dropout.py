"""Dropout: zero random elements while training, scaling the survivors (inverted dropout)."""

from __future__ import annotations

from typing import Any

from nurinet import backend
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.random import Generator, keep_mask


class Dropout(Function):
    """``x * mask`` for a fixed mask of zeros and ``1 / (1 - p)``; the gradient is ``gy * mask``.

    The mask has the shape of ``x`` (``dropout``) or one that broadcasts to it (``dropout2d``: one
    value per sample and channel, ``(N, C, 1, 1)``), so one op serves both.

    backward_arrays: the CNN and Transformer benchmarks.
    """

    def __init__(self, mask: Any) -> None:
        self.mask = mask

    def forward(self, x: Any) -> Any:
        return x * self.mask

    def backward(self, gy: Tensor) -> Tensor:
        return gy * Tensor._wrap(self.mask, False)

    def backward_arrays(self, gy: Any) -> Any:
        return gy * self.mask


def check_probability(p: Any, where: str) -> float:
    """``p`` as a float after checking it is a drop probability in [0, 1)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(
            f"{where}: the drop probability p must be a number in [0, 1), got {p!r} "
            "(p is the fraction of elements zeroed; p=1 would zero everything)"
        )
    return float(p)


def check_floating(x: Tensor, where: str) -> None:
    """Raises a TypeError unless ``x`` holds floating-point numbers (a mask of ``1 / (1 - p)`` needs them)."""
    if x.array.dtype.kind != "f":
        raise TypeError(f"{where} needs a floating-point tensor, got dtype {x.dtype}")


def apply_mask(x: Tensor, keep: Any, p: float) -> Tensor:
    """``x`` with the elements where the boolean array ``keep`` (``x``'s shape, or one that broadcasts to
    it) is False zeroed and the others scaled by ``1 / (1 - p)``, through the ``Dropout`` op."""
    # One pass from the boolean mask to the float one (bool * a scalar of x's dtype keeps that dtype).
    mask = backend.get_array_module(keep).multiply(keep, x.array.dtype.type(1.0 / (1.0 - p)))
    if x.device != "cpu":
        mask = backend.to_device(mask, x.device)
    return Dropout(mask)(x)


def dropout(x: Tensor, p: float = 0.5, training: bool = True, generator: Generator | None = None) -> Tensor:
    """Inverted dropout: while training, zero each element with probability ``p`` and
    multiply the others by ``1 / (1 - p)``, so the expected value is unchanged and
    evaluation needs no rescaling.

    Args:
        x: Input tensor.
        p: Probability of zeroing an element, in [0, 1).
        training: Apply dropout; when False (evaluation) ``x`` is returned as it is.
        generator: Source of the random mask (default: the generator seeded by
            ``nurinet.manual_seed``).

    Shape:
        Output has the shape of ``x``.
    """
    p = check_probability(p, "dropout")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    check_floating(x, "dropout")
    return apply_mask(x, keep_mask(generator, x.shape, p), p)
