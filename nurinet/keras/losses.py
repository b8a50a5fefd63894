"""Keras's ``keras.losses``: loss objects under Keras's names, with Keras's ``from_logits``.

``compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))`` compiles with
nurinet's loss of that name (``docs/losses.md``) and the object's ``from_logits``, so saving
stores it by name. As in Keras, the cross-entropies take probabilities unless
``from_logits=True``; after a softmax/sigmoid output layer they are computed from its logits.
Called directly, a loss object takes Keras's argument order ``loss(y_true, y_pred)`` and
returns the mean over the batch.
"""

from __future__ import annotations

from typing import Any

from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.training.outputs import Objective

__all__ = [
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "Loss",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "compile_arguments",
]


class Loss:
    """A Keras loss object: nurinet's loss ``loss_name``, applied as Keras applies it.

    Args:
        name: Keras's ``name`` argument (accepted; the logs call the loss ``loss``).
    """

    loss_name = ""
    takes_logits = False  # whether the loss has Keras's from_logits argument

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        self.name = name or self.loss_name
        self.from_logits: bool | None = None

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Tensor:
        if sample_weight is not None:
            raise NotImplementedError(f"{type(self).__name__}: sample_weight on a direct call; pass "
                                      "sample_weight to fit instead")
        return Objective(self.loss_name, self.from_logits)(as_tensor(y_pred), as_tensor(y_true))

    def __repr__(self) -> str:
        logits = f"from_logits={self.from_logits}" if self.takes_logits else ""
        return f"{type(self).__name__}({logits})"


class _ProbabilisticLoss(Loss):
    """A cross-entropy: probabilities by default, logits with ``from_logits=True`` (Keras's)."""

    takes_logits = True

    def __init__(self, from_logits: bool = False, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name)
        if from_logits not in (True, False):
            raise TypeError(f"{type(self).__name__}: from_logits must be True or False, got {from_logits!r}")
        self.from_logits = bool(from_logits)


class SparseCategoricalCrossentropy(_ProbabilisticLoss):
    """Integer class labels against class scores (probabilities, or logits with ``from_logits=True``)."""

    loss_name = "sparse_categorical_crossentropy"


class CategoricalCrossentropy(_ProbabilisticLoss):
    """One-hot (or soft) labels against class scores."""

    loss_name = "categorical_crossentropy"


class BinaryCrossentropy(_ProbabilisticLoss):
    """0/1 labels against probabilities (or logits with ``from_logits=True``)."""

    loss_name = "binary_crossentropy"


class MeanSquaredError(Loss):
    loss_name = "mean_squared_error"


class MeanAbsoluteError(Loss):
    loss_name = "mean_absolute_error"


class MeanAbsolutePercentageError(Loss):
    loss_name = "mean_absolute_percentage_error"


class MeanSquaredLogarithmicError(Loss):
    loss_name = "mean_squared_logarithmic_error"


class Huber(Loss):
    loss_name = "huber"


class LogCosh(Loss):
    loss_name = "log_cosh"


class Hinge(Loss):
    loss_name = "hinge"


class SquaredHinge(Loss):
    loss_name = "squared_hinge"


class CategoricalHinge(Loss):
    loss_name = "categorical_hinge"


class Poisson(Loss):
    loss_name = "poisson"


class KLDivergence(Loss):
    loss_name = "kl_divergence"


def compile_arguments(loss: Any, from_logits: bool | None) -> tuple[Any, bool | None]:
    """``(loss, from_logits)`` for ``nurinet.training.Model.compile``: a Keras loss object becomes
    its name and its ``from_logits`` (a value given to ``compile`` itself must agree)."""
    if not isinstance(loss, Loss):
        return loss, from_logits
    if from_logits is not None and loss.from_logits is not None and from_logits != loss.from_logits:
        raise ValueError(f"compile: from_logits={from_logits} contradicts the loss {loss!r}")
    return loss.loss_name, loss.from_logits if loss.from_logits is not None else from_logits
