"""Activity regularization (Keras's): a penalty on what a layer outputs, added to the training loss.

A weight penalty (``nn.regularizers.L1``) makes the weights small or sparse; an activity
penalty makes the *activations* sparse: few units respond to each input, the code of a
sparse autoencoder. :class:`ActivityRegularization` penalizes whatever passes through it;
``nn.Linear`` and the conv layers take the same penalty as ``activity_regularizer=``.
"""

from __future__ import annotations

from typing import Any

from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.nn.module import Module
from nurinet.nn.regularizers import L1L2, record_activity


class ActivityRegularization(Module):
    """The identity, which records ``l1 * sum|x| + l2 * sum x^2`` (divided by the batch size) as
    a penalty that ``Model.fit`` adds to the loss and logs as ``"regularization"``.

    As Keras's ``ActivityRegularization``: place it after the layer whose outputs should be
    small or sparse. In a plain training loop add
    ``nn.regularizers.add_activity_penalties(model)`` to the loss after the forward.

    Args:
        l1: L1 coefficient (>= 0): pushes activations to exactly zero.
        l2: L2 coefficient (>= 0): keeps activations small.

    Shape:
        - Input: ``(N, *)``
        - Output: ``(N, *)``, the input itself
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        super().__init__()
        self.penalty = L1L2(l1, l2)  # checks the coefficients
        self.l1, self.l2 = self.penalty.l1, self.penalty.l2

    def forward(self, x: Any) -> Tensor:
        x = as_tensor(x)
        record_activity(self, x, self.penalty)
        return x

    def extra_repr(self) -> str:
        return f"l1={self.l1:g}, l2={self.l2:g}"
