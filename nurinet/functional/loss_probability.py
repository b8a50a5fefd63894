"""Losses on probabilities, as Keras and Deeplearning4j define them.

Keras's ``categorical_crossentropy``, ``sparse_categorical_crossentropy``,
``binary_crossentropy`` and ``kl_divergence`` (``from_logits=False``) and DL4J's ``MCXENT``,
``NEGATIVELOGLIKELIHOOD``, ``XENT`` and ``KL_DIVERGENCE`` take the output of a softmax or a
sigmoid. When their input is such an output (it carries an
:class:`~nurinet.functional.activation.ActivationSource`), they compute the stable logit
form from the logits it remembers: never a second softmax, never the log of a probability
rounded to 0. Otherwise they clip the probabilities to ``[EPSILON, 1 - EPSILON]`` as Keras
does. With ``from_logits=True`` the input is taken as logits.

PyTorch's losses (``cross_entropy`` on logits, ``nll_loss`` on log-probabilities,
``binary_cross_entropy`` on probabilities) keep PyTorch's meaning in
:mod:`nurinet.functional.loss_classification`.
"""

from __future__ import annotations

from typing import Any

from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional import elementwise as ew
from nurinet.functional import reduction as rd
from nurinet.functional._util import normalize_axis
from nurinet.functional.activation import activation_source, log_softmax
from nurinet.functional.comparison import one_hot
from nurinet.functional.loss import check_reduction, pair, reduce
from nurinet.functional.loss_classification import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    nll_loss,
)
from nurinet.functional.shape import permute, reshape

EPSILON = 1e-7  # Keras's backend epsilon: probabilities are clipped to [EPSILON, 1 - EPSILON].


# ----- targets ------------------------------------------------------------------------------
def class_targets(input: Tensor, target: Any, axis: int, op: str) -> Tensor:
    """Class targets for ``input`` (classes on ``axis``): class indices or one-hot rows.

    Indices have the input's shape without ``axis`` (a trailing axis of 1 is dropped, as
    Keras allows); whole-number float indices are cast to int64, as Keras casts them.
    Rows of the input's shape (one-hot or class probabilities) come back in its dtype.

    The range of the indices is checked where they are used (``cross_entropy``, ``nll_loss``,
    ``one_hot``), once.

    Raises:
        TypeError: indices that are not whole numbers.
        ValueError: a shape that fits neither form.
    """
    t = as_tensor(target)
    classes = input.shape[axis]
    if t.shape == input.shape and classes > 1:
        return t if t.dtype == input.dtype else ew.astype(t, input.dtype)
    expected = input.shape[:axis] + input.shape[axis + 1 :]
    if t.shape == expected + (1,) and classes > 1:
        t = reshape(t, expected)
    if t.shape != expected:
        raise ValueError(
            f"{op}: input of shape {input.shape} has {classes} classes on axis {axis}; the target "
            f"must be class indices of shape {expected} or one-hot rows of shape {input.shape}, "
            f"got shape {t.shape}"
        )
    return _whole_indices(t, op)


def _whole_indices(t: Tensor, op: str) -> Tensor:
    data = t.array
    if data.dtype.kind == "f":
        if data.size and not bool((data == t.xp.floor(data)).all()):
            raise TypeError(f"{op}: class-index targets must be whole numbers, got {data.dtype} values "
                            "such as 0.5; give integer labels (or one-hot rows of the output's shape)")
        data = data.astype("int64")
    elif data.dtype.kind not in "iu":
        raise TypeError(f"{op}: class-index targets must be integers, got dtype {data.dtype}")
    return Tensor._wrap(data, False)


def binary_targets(input: Tensor, target: Any) -> Tensor:
    """Targets of ``input``'s shape for a per-element loss: ``(N,)`` fits an ``(N, 1)`` output."""
    t = as_tensor(target)
    if t.shape != input.shape and t.numel() == input.numel() and t.ndim and input.ndim \
            and (t.shape + (1,) == input.shape or t.shape == input.shape + (1,)):
        t = reshape(t, input.shape)
    return t


# ----- the logits behind an input ------------------------------------------------------------
def source_logits(input: Tensor, activations: tuple[str, ...], axis: int | None = None) -> Tensor | None:
    """The logits ``input`` was computed from by one of ``activations`` (along ``axis``), or None."""
    source = activation_source(input)
    if source is None or source.activation not in activations:
        return None
    if axis is not None and source.axis is not None and source.axis != axis:
        return None
    return source.logits


def _class_axis(input: Tensor, axis: int, op: str) -> int:
    if input.ndim == 0:
        raise ValueError(f"{op}: the input must have a class axis, got a 0-d tensor")
    return normalize_axis(axis, input.ndim)[0]


def _to_class_axis_one(x: Tensor, axis: int) -> Tensor:
    """``x`` with ``axis`` moved to position 1, where :func:`cross_entropy` takes the classes."""
    if x.ndim <= 2 or axis == 1:
        return x
    order = [0, axis, *[a for a in range(1, x.ndim) if a != axis]]
    return permute(x, *order)


def _logit_cross_entropy(logits: Tensor, t: Tensor, axis: int, reduction: str,
                         label_smoothing: float) -> Tensor:
    if t.shape == logits.shape:
        t = _to_class_axis_one(t, axis)
    return cross_entropy(_to_class_axis_one(logits, axis), t, reduction=reduction,
                         label_smoothing=label_smoothing)


def _probability_cross_entropy(logp: Tensor, t: Tensor, axis: int, reduction: str,
                               label_smoothing: float) -> Tensor:
    classes = logp.shape[axis]
    if t.shape != logp.shape and not label_smoothing:  # class indices: gather, as nll_loss does
        return nll_loss(_to_class_axis_one(logp, axis), t, reduction=reduction)
    if t.shape != logp.shape:
        t = one_hot(t, classes, dtype=logp.dtype)
        if axis != logp.ndim - 1:
            t = Tensor._wrap(logp.xp.moveaxis(t.array, -1, axis), False)
    if label_smoothing:
        t = t * (1.0 - label_smoothing) + label_smoothing / classes
    return reduce(-rd.sum(t * logp, axis=axis), reduction)


# ----- the losses ----------------------------------------------------------------------------
def categorical_crossentropy(input: Tensor, target: Any, from_logits: bool = False, axis: int = -1,
                             reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Keras's categorical cross-entropy ``-sum_c t_c log p_c`` per sample (DL4J's MCXENT).

    Args:
        input: Probabilities along ``axis`` (the output of a softmax), or logits with
            ``from_logits=True``. The output of :func:`softmax` or :func:`log_softmax` along
            ``axis`` is computed from its logits.
        target: One-hot rows (or class probabilities) of the input's shape, or class indices.
        from_logits: The input holds logits.
        axis: The class axis (Keras's default, the last one).
        reduction: ``"mean"`` over the samples, ``"sum"`` or ``"none"``.
        label_smoothing: ``e`` in [0, 1]: the target becomes ``(1 - e) t + e / C``.
    """
    return _categorical(input, target, from_logits, axis, reduction, label_smoothing,
                        "categorical_crossentropy")


def sparse_categorical_crossentropy(input: Tensor, target: Any, from_logits: bool = False,
                                    axis: int = -1, reduction: str = "mean") -> Tensor:
    """Keras's sparse categorical cross-entropy: :func:`categorical_crossentropy` of class
    indices (one-hot rows are accepted as well, since the output's shape tells them apart)."""
    return _categorical(input, target, from_logits, axis, reduction, 0.0,
                        "sparse_categorical_crossentropy")


def _categorical(input: Any, target: Any, from_logits: bool, axis: int, reduction: str,
                 label_smoothing: float, op: str) -> Tensor:
    check_reduction(reduction, op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    input = as_tensor(input)
    ax = _class_axis(input, axis, op)
    t = class_targets(input, target, ax, op)
    logits = input if from_logits else source_logits(input, ("softmax", "log_softmax"), ax)
    if logits is not None:
        return _logit_cross_entropy(logits, t, ax, reduction, label_smoothing)
    p = input / rd.sum(input, axis=ax, keepdims=True)  # Keras rescales rows to sum to 1
    logp = ew.log(ew.clip(p, EPSILON, 1.0 - EPSILON))
    return _probability_cross_entropy(logp, t, ax, reduction, label_smoothing)


def negative_log_likelihood(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """The negative log-likelihood of the targets, whichever framework's input it gets.

    * After a softmax (DL4J's ``NEGATIVELOGLIKELIHOOD`` with ``activation(SOFTMAX)``): the
      input holds probabilities; computed from their logits, the same as MCXENT.
    * After a log-softmax, or any log-probabilities (PyTorch's ``nll_loss``):
      ``-log p`` picked at the targets.

    Raises:
        ValueError: the input is neither (values above 0 that no softmax produced): logits
            belong in :func:`cross_entropy`.
    """
    input = as_tensor(input)
    if source_logits(input, ("softmax", "log_softmax"), _class_axis(input, -1, "negative_log_likelihood")) \
            is not None:  # computed from the logits: the same value, stable, and no check needed
        return _categorical(input, target, False, -1, reduction, 0.0, "negative_log_likelihood")
    if input.numel() and float(input.array.max()) > 0.0:
        raise ValueError(
            "negative_log_likelihood: the input must be log-probabilities (from log_softmax, all "
            f"<= 0) or the output of a softmax; found values up to {float(input.array.max()):.4g}. "
            "For logits use cross_entropy; for a softmax output computed another way, use "
            "categorical_crossentropy")
    check_reduction(reduction, "negative_log_likelihood")
    ax = _class_axis(input, 1, "negative_log_likelihood") if input.ndim >= 2 else 0
    t = class_targets(input, target, ax, "negative_log_likelihood")
    return _probability_cross_entropy(input, t, ax, reduction, 0.0)


def binary_crossentropy(input: Tensor, target: Any, from_logits: bool = False,
                        reduction: str = "mean") -> Tensor:
    """Keras's binary cross-entropy (DL4J's XENT) of probabilities, elementwise.

    The output of :func:`sigmoid` (or ``from_logits=True``) is computed by
    :func:`binary_cross_entropy_with_logits`; other probabilities by
    :func:`binary_cross_entropy`. Targets of shape ``(N,)`` fit an ``(N, 1)`` output.
    """
    check_reduction(reduction, "binary_crossentropy")
    input = as_tensor(input)
    t = binary_targets(input, target)
    logits = input if from_logits else source_logits(input, ("sigmoid",))
    if logits is not None:
        return binary_cross_entropy_with_logits(logits, t, reduction=reduction)
    return binary_cross_entropy(input, t, reduction=reduction)


def kl_divergence(input: Tensor, target: Any, from_logits: bool = False, axis: int = -1,
                  reduction: str = "mean") -> Tensor:
    """Keras's and DL4J's Kullback-Leibler divergence ``sum_c t_c log(t_c / p_c)`` per sample.

    The input holds probabilities (the output of a softmax along ``axis`` is computed from
    its logits); both sides are clipped to ``[EPSILON, 1]`` as Keras does.
    ``"mean"`` averages over the samples (PyTorch's ``kl_div`` is :func:`kl_div`).
    """
    check_reduction(reduction, "kl_divergence")
    input = as_tensor(input)
    ax = _class_axis(input, axis, "kl_divergence")
    input, t = pair(input, target, "kl_divergence")
    logits = input if from_logits else source_logits(input, ("softmax", "log_softmax"), ax)
    logp = log_softmax(logits, axis=ax) if logits is not None else ew.log(ew.clip(input, EPSILON, 1.0))
    t = ew.clip(t, EPSILON, 1.0)
    return reduce(rd.sum(t * (ew.log(t) - logp), axis=ax), reduction)
