"""Losses for regression, distributions and embeddings: mse, l1 (mae), huber, smooth-l1,
kl_div, hinge, squared hinge, cosine-embedding, pairwise distance and contrastive loss.

Classification losses (cross-entropy, nll, binary cross-entropy) are in
``loss_classification``; losses by name in ``loss_registry``. Every loss takes
``reduction`` in ``{"mean", "sum", "none"}`` as PyTorch does. A custom loss needs no
registration or base class: any function of Tensors built from nurinet ops that returns
a scalar Tensor works, and autograd gives its gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional import elementwise as ew
from nurinet.functional import reduction as rd
from nurinet.functional._util import on_device_of, xp_of
from nurinet.functional.activation import relu

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction: str, op: str, allowed: tuple[str, ...] = REDUCTIONS) -> None:
    """Raise a ValueError naming ``op`` when ``reduction`` is not one of ``allowed``."""
    if reduction not in allowed:
        names = ", ".join(repr(r) for r in allowed)
        raise ValueError(f"{op}: reduction must be one of {names}, got {reduction!r}")


def reduce(loss: Tensor, reduction: str) -> Tensor:
    """Apply a validated ``reduction`` to an elementwise loss."""
    if reduction == "mean":
        return rd.mean(loss)
    if reduction == "sum":
        return rd.sum(loss)
    return loss


def pair(input: Any, target: Any, op: str) -> tuple[Tensor, Tensor]:
    """``input`` and ``target`` as Tensors of one shape, the target in the input's dtype.

    Raises:
        ValueError: the shapes differ (nurinet does not broadcast a loss's target).
    """
    input = as_tensor(input)
    target = as_tensor(on_device_of(target, input))  # a NumPy target meets GPU outputs
    if input.shape != target.shape:
        raise ValueError(
            f"{op}: input shape {input.shape} and target shape {target.shape} differ; "
            "give the target the input's shape (reshape it, or check the model's output)"
        )
    if input.dtype.kind == "f" and target.dtype != input.dtype:
        target = ew.astype(target, input.dtype)
    return input, target


def constant_like(values: Any, like: Tensor) -> Tensor:
    """A constant (no-gradient) tensor of ``values`` in ``like``'s dtype and device."""
    data = values.array if isinstance(values, Tensor) else values
    return Tensor._wrap(like.xp.asarray(data, dtype=like.dtype), False)


class MeanSquaredError(Function):
    """``mean((a - b)^2)`` or its sum, as one node (the hot path of regression training).

    backward_arrays: the XOR benchmark.
    """

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def forward(self, a: Any, b: Any) -> Any:
        diff = self.diff = a - b
        # vdot: one call instead of a product and a sum (a small network's loss is mostly calls).
        if type(diff) is not np.ndarray:
            total = xp_of(diff).vdot(diff, diff)
            return total / diff.size if self.reduction == "mean" else total
        total = np.vdot(diff, diff)
        # vdot gives a NumPy scalar; ops return 0-d arrays (Function would convert it after the call).
        return np.asarray(total / diff.size if self.reduction == "mean" else total)

    def _scale(self) -> float:
        return 2.0 / self.diff.size if self.reduction == "mean" else 2.0

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        g = (a - b) * (gy * self._scale())
        return (g if self.needs_input_grad[0] else None), (-g if self.needs_input_grad[1] else None)

    def backward_arrays(self, gy: Any) -> tuple[Any, Any]:
        g = self.diff * (gy * self._scale())
        return (g if self.needs_input_grad[0] else None), (-g if self.needs_input_grad[1] else None)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)^2`` (fused into one op unless reduction="none")."""
    if (reduction == "mean" or reduction == "sum") and isinstance(input, Tensor) and isinstance(target, Tensor):
        a, b = input.array, target.array
        if a.shape == b.shape and a.dtype == b.dtype and a.dtype.kind == "f":  # what pair() would give
            return MeanSquaredError(reduction)(input, target)
    check_reduction(reduction, "mse_loss")
    input, target = pair(input, target, "mse_loss")
    if reduction != "none" and input.dtype.kind == "f":
        return MeanSquaredError(reduction)(input, target)
    diff = input - target
    return diff * diff


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean absolute error ``|input - target|`` (MAE)."""
    check_reduction(reduction, "l1_loss")
    input, target = pair(input, target, "l1_loss")
    return reduce(ew.abs(input - target), reduction)


def huber_loss(
    input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0
) -> Tensor:
    """Huber loss: ``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``."""
    check_reduction(reduction, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    input, target = pair(input, target, "huber_loss")
    d = input - target
    ad = ew.abs(d)
    loss = ew.where(ad.array < delta, d * d * 0.5, (ad - 0.5 * delta) * float(delta))
    return reduce(loss, reduction)


def smooth_l1_loss(
    input: Tensor, target: Tensor, reduction: str = "mean", beta: float = 1.0
) -> Tensor:
    """Smooth L1: ``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``.

    Equal to ``huber_loss(delta=beta) / beta``; ``beta=0`` gives the L1 loss.
    """
    check_reduction(reduction, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    input, target = pair(input, target, "smooth_l1_loss")
    d = input - target
    ad = ew.abs(d)
    if beta == 0:
        return reduce(ad, reduction)
    loss = ew.where(ad.array < beta, d * d * (0.5 / beta), ad - 0.5 * beta)
    return reduce(loss, reduction)


def _xlogx(t: Tensor) -> Tensor:
    """``t * log(t)`` with ``0 log 0 = 0`` and no NaN in the gradient at 0."""
    positive = t.array > 0
    return t * ew.log(ew.where(positive, t, 1.0))


def kl_div(
    input: Tensor, target: Tensor, reduction: str = "mean", log_target: bool = False
) -> Tensor:
    """Kullback-Leibler divergence ``KL(target || exp(input))``, pointwise as PyTorch.

    Args:
        input: Log-probabilities (e.g. from :func:`log_softmax`).
        target: Probabilities, or log-probabilities when ``log_target``.
        reduction: ``"batchmean"`` (the sum divided by the batch size, the true KL
            divergence per sample), ``"sum"``, ``"mean"`` (over all elements) or ``"none"``.
        log_target: The target is given as log-probabilities.
    """
    check_reduction(reduction, "kl_div", REDUCTIONS + ("batchmean",))
    input, target = pair(input, target, "kl_div")
    if not log_target and target.numel() and not float(target.array.min()) >= 0.0:
        raise ValueError(f"kl_div: the target must hold probabilities (>= 0), found "
                         f"{float(target.array.min())}; give log-probabilities with log_target=True")
    if log_target:
        loss = ew.exp(target) * (target - input)
    else:
        loss = _xlogx(target) - target * input
    if reduction == "batchmean":
        batch = input.shape[0] if input.ndim else 1
        return rd.sum(loss) * (1.0 / batch)
    return reduce(loss, reduction)


def _signed_labels(target: Tensor, like: Tensor, op: str) -> Tensor:
    """Binary labels as -1/+1 constants (0/1 labels are mapped to -1/+1, as Keras does)."""
    values = set(target.xp.unique(target.array).tolist())
    if values <= {0, 1}:
        return constant_like(target.array * 2 - 1, like)
    if not values <= {-1, 1}:
        bad = sorted(values - {-1, 1})
        raise ValueError(f"{op}: targets must be -1 or 1 (or 0 and 1), found {bad}")
    return constant_like(target.array, like)


def hinge_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Binary hinge loss ``max(0, 1 - y * s)`` for scores ``s`` and labels ``y`` in {-1, 1}.

    Keras's ``hinge``: labels given as 0/1 are mapped to -1/+1. With ``"mean"`` this is
    Keras's value (the mean over the last axis, then over the batch, equals the mean
    of all elements); ``"none"`` returns one loss per element.
    """
    check_reduction(reduction, "hinge_loss")
    input, target = pair(input, target, "hinge_loss")
    y = _signed_labels(target, input, "hinge_loss")
    return reduce(relu(1.0 - y * input), reduction)


def squared_hinge_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Squared hinge loss ``max(0, 1 - y * s)^2`` (Keras's ``squared_hinge``); see :func:`hinge_loss`."""
    check_reduction(reduction, "squared_hinge_loss")
    input, target = pair(input, target, "squared_hinge_loss")
    y = _signed_labels(target, input, "squared_hinge_loss")
    margin = relu(1.0 - y * input)
    return reduce(margin * margin, reduction)


def cosine_embedding_loss(
    input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """``1 - cos(x1, x2)`` for pairs labelled 1, ``max(0, cos(x1, x2) - margin)`` for -1.

    Args:
        input1: Embeddings ``(N, D)`` or ``(D,)``.
        input2: Embeddings of the same shape.
        target: Labels ``(N,)`` (or a scalar), each 1 (similar) or -1 (dissimilar).
        margin: Cosine similarity that dissimilar pairs may keep without penalty.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    check_reduction(reduction, "cosine_embedding_loss")
    x1, x2 = pair(input1, input2, "cosine_embedding_loss")
    target = as_tensor(target)
    if x1.ndim not in (1, 2) or target.shape != x1.shape[:-1]:
        raise ValueError(
            f"cosine_embedding_loss: inputs of shape {x1.shape} need a target of shape "
            f"{x1.shape[:-1]}, got {target.shape} (inputs are (N, D) or (D,))"
        )
    if not set(target.xp.unique(target.array).tolist()) <= {-1, 1}:
        raise ValueError("cosine_embedding_loss: targets must be 1 or -1")
    eps = 1e-12  # As PyTorch: keeps the cosine finite for zero vectors.
    dot = rd.sum(x1 * x2, axis=-1)
    norms = ew.sqrt((rd.sum(x1 * x1, axis=-1) + eps) * (rd.sum(x2 * x2, axis=-1) + eps))
    cos = dot / norms
    loss = ew.where(target.array == 1, 1.0 - cos, relu(cos - float(margin)))
    return reduce(loss, reduction)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """The ``p``-norm of ``x1 - x2 + eps`` along the last axis (as PyTorch; ``eps``
    keeps the gradient finite for identical vectors)."""
    x1, x2 = as_tensor(x1), as_tensor(x2)
    d = x1 - x2 + float(eps)
    if p == 2:
        return ew.sqrt(rd.sum(d * d, axis=-1, keepdims=keepdim))
    if p <= 0:
        raise ValueError(f"pairwise_distance: p must be positive, got {p}")
    return rd.sum(ew.abs(d) ** float(p), axis=-1, keepdims=keepdim) ** (1.0 / p)


def contrastive_loss(
    distance: Tensor, label: Tensor, margin: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Contrastive loss for Siamese networks (Hadsell, Chopra and LeCun 2006).

    ``label * d^2 + (1 - label) * max(0, margin - d)^2``, where ``label`` is 1 for a
    similar pair (pulled together) and 0 for a dissimilar pair (pushed beyond
    ``margin``). The paper writes Y=0 for similar pairs and a factor 1/2; this function
    uses the now common 1 = similar convention and no 1/2.

    Args:
        distance: Distances ``d >= 0`` between the two embeddings of each pair, e.g.
            ``pairwise_distance(f(a), f(b))`` (``nn.ContrastiveLoss`` takes the
            embeddings and does this itself).
        label: 1 (similar) or 0 (dissimilar), of ``distance``'s shape.
        margin: Distance beyond which dissimilar pairs cost nothing.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    check_reduction(reduction, "contrastive_loss")
    d, y = pair(distance, label, "contrastive_loss")
    if not set(y.xp.unique(y.array).tolist()) <= {0, 1}:
        raise ValueError("contrastive_loss: labels must be 1 (similar) or 0 (dissimilar)")
    gap = relu(float(margin) - d)
    return reduce(y * d * d + (1.0 - y) * gap * gap, reduction)
