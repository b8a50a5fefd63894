"""Dropout2d layer: zero whole channels of image feature maps while training."""

from __future__ import annotations

from nurinet.autograd.tensor import Tensor
from nurinet.functional.dropout import check_probability
from nurinet.functional.dropout_channel import dropout2d
from nurinet.nn.module import Module
from nurinet.random import Generator


class Dropout2d(Module):
    """Channel dropout: while training, zero each channel of each sample with probability ``p``
    and scale the kept channels by ``1 / (1 - p)``; in evaluation mode pass the input through.

    Args:
        p: Probability of zeroing a channel, in [0, 1).
        generator: Source of the random masks (default: the generator seeded by
            ``nurinet.manual_seed``); give one for a reproducible stream per layer.

    Shape:
        - Input: ``(N, C, H, W)`` or ``(C, H, W)``
        - Output: the shape of the input
    """

    def __init__(self, p: float = 0.5, generator: Generator | None = None) -> None:
        super().__init__()
        self.p = check_probability(p, "Dropout2d")
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        return dropout2d(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
