"""Channel dropout (``dropout2d``): zero whole feature maps while training.

Neighbouring pixels of a feature map are strongly correlated, so zeroing single
pixels (plain dropout) barely regularizes a convolutional layer; zeroing entire
channels does (Tompson et al. 2015).
"""

from __future__ import annotations

from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional.dropout import apply_mask, check_floating, check_probability
from nurinet.random import Generator, keep_mask


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
    check_floating(x, "dropout2d")
    mask_shape = x.shape[: x.ndim - 2] + (1, 1)  # one draw per (sample, channel), broadcast over H and W
    return apply_mask(x, keep_mask(generator, mask_shape, p), p)
