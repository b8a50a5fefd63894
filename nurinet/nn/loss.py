"""Loss layers: a Module around each loss of ``nurinet.functional``, with PyTorch's names.

Each takes ``reduction`` in ``{"mean", "sum", "none"}`` (checked when the layer is
built) and calls the functional loss in ``forward(input, target)``. A custom loss needs
no class: any function of Tensors returning a scalar Tensor can be minimized.
"""

from __future__ import annotations

from typing import Any

import nurinet.functional as F
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional.loss import REDUCTIONS, check_reduction
from nurinet.nn.module import Module


class _Loss(Module):
    def __init__(self, reduction: str = "mean", allowed: tuple[str, ...] = REDUCTIONS) -> None:
        super().__init__()
        check_reduction(reduction, type(self).__name__, allowed)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    """A loss with optional constant weights, kept as a buffer (moves with ``.to()``)."""

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", None if weight is None else Tensor(as_tensor(weight).array))


class MSELoss(_Loss):
    """Mean squared error ``(input - target)^2``.

    Shape:
        - Input: ``(*)``
        - Target: ``(*)``, the input's shape
        - Output: a scalar, or ``(*)`` with ``reduction="none"``
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Mean absolute error ``|input - target|``.

    Shape:
        - Input: ``(*)``
        - Target: ``(*)``, the input's shape
        - Output: a scalar, or ``(*)`` with ``reduction="none"``
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, self.reduction)


class HuberLoss(_Loss):
    """Huber loss: quadratic within ``delta`` of the target, linear beyond.

    Shape:
        - Input: ``(*)``
        - Target: ``(*)``, the input's shape
        - Output: a scalar, or ``(*)`` with ``reduction="none"``
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = float(delta)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, self.reduction, self.delta)


class SmoothL1Loss(_Loss):
    """Smooth L1: ``0.5 d^2 / beta`` within ``beta``, ``|d| - 0.5 beta`` beyond.

    Shape:
        - Input: ``(*)``
        - Target: ``(*)``, the input's shape
        - Output: a scalar, or ``(*)`` with ``reduction="none"``
    """

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = float(beta)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy on probabilities (after a sigmoid); see
    :func:`nurinet.functional.binary_cross_entropy`. Prefer :class:`BCEWithLogitsLoss`.

    Shape:
        - Input: ``(*)``, probabilities
        - Target: ``(*)``, the input's shape, values in [0, 1]
        - Output: a scalar, or ``(*)`` with ``reduction="none"``
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Binary cross-entropy on logits, numerically stable.

    Args:
        weight: Optional constant weights broadcast against the input.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        pos_weight: Optional weight of positive examples (one per class, last axis).

    Shape:
        - Input: ``(*)``, logits
        - Target: ``(*)``, the input's shape, values in [0, 1]
        - Output: a scalar, or ``(*)`` with ``reduction="none"``
    """

    def __init__(self, weight: Any = None, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(weight, reduction)
        pos = None if pos_weight is None else Tensor(as_tensor(pos_weight).array)
        self.register_buffer("pos_weight", pos)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight
        )


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy of logits against class indices or class probabilities; see
    :func:`nurinet.functional.cross_entropy` (takes logits: no softmax before it).

    Args:
        weight: Optional per-class weights ``(C,)``.
        ignore_index: Class-index target value that is skipped.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        label_smoothing: In [0, 1]; mixes the uniform distribution into the target.

    Shape:
        - Input: ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``, logits
        - Target: ``(N,)`` / ``(N, d1, ...)`` / ``()`` class indices, or probabilities of
          the input's shape
        - Output: a scalar, or one loss per sample with ``reduction="none"``
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}"
            )
        self.ignore_index, self.label_smoothing = int(ignore_index), float(label_smoothing)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices under log-probabilities (after
    ``LogSoftmax``).

    Shape:
        - Input: ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``, log-probabilities
        - Target: ``(N,)`` / ``(N, d1, ...)`` / ``()``, class indices
        - Output: a scalar, or one loss per sample with ``reduction="none"``
    """

    def __init__(self, weight: Any = None, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(weight, reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence of ``target`` from ``exp(input)``; see
    :func:`nurinet.functional.kl_div`. ``reduction="batchmean"`` gives the true KL per sample.

    Shape:
        - Input: ``(*)``, log-probabilities
        - Target: ``(*)``, probabilities (log-probabilities with ``log_target``)
        - Output: a scalar, or ``(*)`` with ``reduction="none"``
    """

    def __init__(self, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(reduction, REDUCTIONS + ("batchmean",))
        self.log_target = bool(log_target)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.kl_div(input, target, self.reduction, self.log_target)


class HingeLoss(_Loss):
    """Binary hinge loss ``max(0, 1 - y * s)``, labels -1/+1 (or 0/1); Keras's ``hinge``.

    Shape:
        - Input: ``(*)``, scores
        - Target: ``(*)``, the input's shape
        - Output: a scalar, or ``(*)`` with ``reduction="none"``
    """

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.hinge_loss(input, target, self.reduction)


class SquaredHingeLoss(_Loss):
    """Squared hinge loss ``max(0, 1 - y * s)^2``; Keras's ``squared_hinge``.

    Shape:
        - Input: ``(*)``, scores
        - Target: ``(*)``, the input's shape
        - Output: a scalar, or ``(*)`` with ``reduction="none"``
    """

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.squared_hinge_loss(input, target, self.reduction)


class CosineEmbeddingLoss(_Loss):
    """``1 - cos`` for pairs labelled 1, ``max(0, cos - margin)`` for pairs labelled -1.

    Shape:
        - Input1: ``(N, D)`` or ``(D,)``
        - Input2: the shape of Input1
        - Target: ``(N,)`` or ``()``, each 1 or -1
        - Output: a scalar, or ``(N,)`` with ``reduction="none"``
    """

    def __init__(self, margin: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = float(margin)

    def forward(self, input1: Tensor, input2: Tensor, target: Any) -> Tensor:
        return F.cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


class ContrastiveLoss(_Loss):
    """Contrastive loss of a Siamese network on two batches of embeddings.

    ``label * d^2 + (1 - label) * max(0, margin - d)^2`` with ``d`` the Euclidean distance
    between the embeddings (:func:`nurinet.functional.pairwise_distance`) and ``label``
    1 for a similar pair, 0 for a dissimilar one (see
    :func:`nurinet.functional.contrastive_loss`, which takes distances).

    Args:
        margin: Distance beyond which dissimilar pairs cost nothing.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Shape:
        - Input1: ``(N, D)``, embeddings of the first items
        - Input2: ``(N, D)``, embeddings of the second items
        - Label: ``(N,)``, 1 (similar) or 0 (dissimilar)
        - Output: a scalar, or ``(N,)`` with ``reduction="none"``
    """

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.margin = float(margin)

    def forward(self, input1: Tensor, input2: Tensor, label: Any) -> Tensor:
        distance = F.pairwise_distance(input1, input2)
        return F.contrastive_loss(distance, label, self.margin, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


def get_loss(name_or_fn: Any) -> Any:
    """The loss function for a name (see :func:`nurinet.functional.get_loss`), or the callable."""
    return F.get_loss(name_or_fn)
