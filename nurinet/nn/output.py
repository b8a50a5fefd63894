"""The output layer of Deeplearning4j's configurations: a fully connected layer that owns its loss."""

from __future__ import annotations

from typing import Any

from nurinet.functional.loss_registry import loss_info
from nurinet.nn.linear import Linear


class OutputLayer(Linear):
    """A fully connected layer with an output activation and the loss it is trained with,
    as DL4J's ``OutputLayer(LossFunction.NEGATIVELOGLIKELIHOOD).activation(SOFTMAX)``.

    The layer outputs what its activation says (probabilities after a softmax or a sigmoid).
    Its loss, given by any DL4J, Keras or PyTorch name (see ``docs/losses.md``), computes the
    stable logit form of those probabilities, so softmax + ``MCXENT`` or
    ``NEGATIVELOGLIKELIHOOD`` trains the log-likelihood, never a double softmax. A pairing
    that makes no sense (softmax before a hinge loss, sigmoid before a softmax
    cross-entropy) is refused when the layer is built.

    Args:
        in_features: Input width.
        units: Number of outputs (classes, or labels for a multi-label sigmoid output).
        activation: Output activation name (``"softmax"``, ``"sigmoid"``, ``"identity"``...).
        loss: Loss name.
        bias: Learn an additive bias.
        dtype: Parameter dtype.
        generator: Random source of the initialization.

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, units)``

    Raises:
        ValueError: an unknown loss name, or a loss that makes no sense after the activation.
    """

    def __init__(self, in_features: int, units: int, activation: str | None = None,
                 loss: str = "cross_entropy", bias: bool = True, dtype: Any = None,
                 generator: Any = None) -> None:
        info = loss_info(loss)
        if info is None:
            raise TypeError(f"OutputLayer: loss must be a name (see docs/losses.md), got {loss!r}")
        info.check_pairing(activation, "OutputLayer")
        super().__init__(in_features, units, bias=bias, activation=activation, dtype=dtype,
                         generator=generator)
        self.units, self.output_activation, self.loss = self.out_features, activation, loss

    def get_config(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "units": self.units,
                "activation": self.output_activation, "loss": self.loss, "bias": self.bias is not None}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.output_activation!r}, loss={self.loss!r}"
