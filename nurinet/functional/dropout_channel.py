"""Channel dropout (``dropout2d``): zero whole feature maps while training.

Neighbouring pixels of a feature map are strongly correlated, so zeroing single
pixels (plain dropout) barely regularizes a convolutional layer; zeroing entire
channels does (Tompson et al. 2015).
"""

from __future__ import annotations

from typing import Any

from nurinet import backend
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional.dropout import check_probability
from nurinet.random import Generator, resolve


class ChannelDropout(Function):
    """``x * mask`` for a fixed per-channel mask (zeros and ``1 / (1 - p)``) broadcast over positions."""

    def __init__(self, mask: Any) -> None:
        self.mask = mask

    def forward(self, x: Any) -> Any:
        return x * self.mask

    def backward(self, gy: Tensor) -> Tensor:
        return gy * Tensor._wrap(self.mask, False)

    def backward_arrays(self, gy: Any) -> Any:
        return gy * self.mask


def dropout2d(x: Tensor, p: float = 0.5, training: bool = True, generator: Generator | None = None) -> Tensor:
    """Channel dropout: while training, zero each whole channel with probability ``p`` and
    scale the kept channels by ``1 / (1 - p)``.

    Args:
        x: Input ``(N, C, H, W)``, or ``(C, H, W)`` for one unbatched sample.
        p: Probability of zeroing a channel, in [0, 1).
        training: Apply dropout; when False ``x`` is returned as it is.
        generator: Source of the random mask (default: the generator seeded by
            ``nurinet.manual_seed``).

    Shape:
        - Input: ``(N, C, H, W)`` or ``(C, H, W)``
        - Output: the shape of the input
    """
    p = check_probability(p, "dropout2d")
    x = as_tensor(x)
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d expects an input of shape (N, C, H, W) or (C, H, W), got shape {x.shape}")
    if not training or p == 0.0:
        return x
    if x.data.dtype.kind != "f":
        raise TypeError(f"dropout2d needs a floating-point tensor, got dtype {x.dtype}")
    mask_shape = x.shape[: x.ndim - 2] + (1, 1)  # one draw per (sample, channel)
    keep = resolve(generator).random(mask_shape) >= p
    mask = backend.get_array_module(keep).multiply(keep, x.data.dtype.type(1.0 / (1.0 - p)))
    if x.device != "cpu":
        mask = backend.to_device(mask, x.device)
    return ChannelDropout(mask)(x)
