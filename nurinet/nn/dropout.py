"""Dropout layer: random zeroing while training, identity in evaluation."""

from __future__ import annotations

from nurinet.autograd.tensor import Tensor
from nurinet.functional.dropout import check_probability, dropout
from nurinet.nn.module import Module
from nurinet.random import Generator


class Dropout(Module):
    """Inverted dropout: while training, zero each element with probability ``p`` and scale
    the rest by ``1 / (1 - p)``; in evaluation mode (``model.eval()``) pass the input through.

    Args:
        p: Probability of zeroing an element, in [0, 1) (0.2 to 0.5 is typical).
        generator: Source of the random masks (default: the generator seeded by
            ``nurinet.manual_seed``); give one for a reproducible stream per layer.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``, the shape of the input
    """

    def __init__(self, p: float = 0.5, generator: Generator | None = None) -> None:
        super().__init__()
        self.p = check_probability(p, "Dropout")
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
