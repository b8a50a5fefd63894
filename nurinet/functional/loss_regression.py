"""More losses of Keras, Deeplearning4j and PyTorch: percentage, logarithmic, Poisson, log-cosh,
cosine proximity, per-sample sums of squares, Wasserstein and the categorical hinge.

Each is a few differentiable ops (autograd gives the gradient) and takes ``reduction`` in
``{"mean", "sum", "none"}``; ``"mean"`` averages over the samples (the first axis) of
the per-sample value that Keras and DL4J define.
"""

from __future__ import annotations

import math
from typing import Any

from nurinet.autograd.tensor import Tensor
from nurinet.functional import elementwise as ew
from nurinet.functional import reduction as rd
from nurinet.functional.activation import relu, softplus
from nurinet.functional.loss import check_reduction, pair, reduce
from nurinet.functional.loss_probability import EPSILON


def _per_sample(loss: Tensor, how: str = "mean") -> Tensor:
    """Reduce an elementwise loss over every axis but the first (one value per sample)."""
    if loss.ndim <= 1:
        return loss
    axes = tuple(range(1, loss.ndim))
    return rd.mean(loss, axis=axes) if how == "mean" else rd.sum(loss, axis=axes)


def _prepared(input: Any, target: Any, reduction: str, op: str) -> tuple[Tensor, Tensor]:
    check_reduction(reduction, op)
    return pair(input, target, op)


def mean_absolute_percentage_error(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``100 |t - p| / max(|t|, EPSILON)`` averaged per sample (Keras's ``mape``, DL4J's MAPE)."""
    p, t = _prepared(input, target, reduction, "mean_absolute_percentage_error")
    loss = ew.abs(t - p) / ew.clip(ew.abs(t), EPSILON, None) * 100.0
    return reduce(_per_sample(loss), reduction)


def mean_squared_logarithmic_error(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``(log(1 + p) - log(1 + t))^2`` averaged per sample, both clipped at ``EPSILON`` below
    (Keras's ``msle``, DL4J's MEAN_SQUARED_LOGARITHMIC_ERROR)."""
    p, t = _prepared(input, target, reduction, "mean_squared_logarithmic_error")
    d = ew.log1p(ew.clip(p, EPSILON, None)) - ew.log1p(ew.clip(t, EPSILON, None))
    return reduce(_per_sample(d * d), reduction)


def poisson(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``p - t log(p + EPSILON)`` averaged per sample, for a rate ``p > 0`` (Keras's and DL4J's
    ``poisson``; PyTorch's is :func:`poisson_nll_loss`)."""
    p, t = _prepared(input, target, reduction, "poisson")
    return reduce(_per_sample(p - t * ew.log(p + EPSILON)), reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     eps: float = 1e-8, reduction: str = "mean") -> Tensor:
    """PyTorch's Poisson negative log-likelihood: ``exp(x) - t x`` of log-rates ``x``
    (``log_input``), else ``x - t log(x + eps)``; ``full`` adds Stirling's term
    ``t log t - t + log(2 pi t) / 2`` where ``t > 1``. ``"mean"`` is over all elements."""
    x, t = _prepared(input, target, reduction, "poisson_nll_loss")
    loss = ew.exp(x) - t * x if log_input else x - t * ew.log(x + eps)
    if full:
        big = t.array > 1
        safe = ew.where(big, t, 1.0)
        stirling = safe * ew.log(safe) - safe + ew.log(safe * (2.0 * math.pi)) * 0.5
        loss = loss + ew.where(big, stirling, 0.0)
    return reduce(loss, reduction)


def log_cosh(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``log(cosh(p - t))`` averaged per sample, computed as ``d + softplus(-2d) - log 2``
    (no overflow; Keras's ``log_cosh``)."""
    p, t = _prepared(input, target, reduction, "log_cosh")
    d = p - t
    return reduce(_per_sample(d + softplus(d * -2.0, 1.0, math.inf) - math.log(2.0)), reduction)


def _l2_normalize(x: Tensor, axis: int) -> Tensor:
    squares = rd.sum(x * x, axis=axis, keepdims=True)
    return x / ew.sqrt(ew.clip(squares, 1e-12, None))


def cosine_proximity(input: Tensor, target: Tensor, axis: int = -1, reduction: str = "mean") -> Tensor:
    """Minus the cosine similarity of prediction and target along ``axis`` (Keras's
    ``cosine_similarity`` loss, DL4J's COSINE_PROXIMITY): -1 when they point the same way."""
    p, t = _prepared(input, target, reduction, "cosine_proximity")
    return reduce(-rd.sum(_l2_normalize(p, axis) * _l2_normalize(t, axis), axis=axis), reduction)


def sum_squared_error(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``sum (p - t)^2`` over each sample's outputs (DL4J's L2 loss; its MSE divides by the
    number of outputs)."""
    p, t = _prepared(input, target, reduction, "sum_squared_error")
    d = p - t
    return reduce(_per_sample(d * d, "sum"), reduction)


def wasserstein(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """``t * p`` averaged per sample (DL4J's WASSERSTEIN; the critic's score with labels -1/+1)."""
    p, t = _prepared(input, target, reduction, "wasserstein")
    return reduce(_per_sample(t * p), reduction)


def categorical_hinge(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Keras's ``categorical_hinge``: ``max(0, 1 + max_{c != y} s_c - s_y)`` per sample, with
    one-hot targets ``t`` (``s_y = sum t s``, the rest ``max (1 - t) s``)."""
    s, t = _prepared(input, target, reduction, "categorical_hinge")
    positive = rd.sum(t * s, axis=-1)
    negative = rd.max((1.0 - t) * s, axis=-1)
    return reduce(relu(negative - positive + 1.0), reduction)
