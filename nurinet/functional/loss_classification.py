"""Classification losses: cross_entropy (on logits, fused with the softmax), nll_loss,
binary_cross_entropy (on probabilities) and binary_cross_entropy_with_logits.

Shapes follow PyTorch: logits ``(N, C)`` or ``(N, C, d1, ...)`` (or ``(C,)`` for a single
sample) with class axis 1, integer class targets ``(N,)`` / ``(N, d1, ...)``. The fused
:class:`SoftmaxCrossEntropy` keeps a slow composite twin,
:func:`cross_entropy_composite` (``log_softmax`` + :func:`nll_loss`), as its test oracle.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nurinet._runtime.fast import loss as fast_loss
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional import elementwise as ew
from nurinet.functional import reduction as rd
from nurinet.functional._util import xp_of
from nurinet.functional.activation import (
    log_softmax,
    sigmoid,
    softmax,
    softplus,
)
from nurinet.functional.indexing import take_along_axis
from nurinet.functional.loss import check_reduction, constant_like, pair, reduce
from nurinet.functional.shape import reshape

LOG_FLOOR = -100.0  # PyTorch clamps log(p) in binary_cross_entropy to >= -100.
_TINY = math.exp(LOG_FLOOR)


def _class_axis(input: Tensor, op: str) -> int:
    if input.ndim == 0:
        raise ValueError(f"{op}: input must have a class axis, got a 0-d tensor")
    return 1 if input.ndim >= 2 else 0


def _class_targets(input: Tensor, target: Any, ignore_index: int, op: str) -> Any:
    """Validate integer class indices for ``input`` and return them as an array.

    Raises:
        TypeError: the target is not integer.
        ValueError: its shape does not fit the input's, or an index is out of range.
    """
    axis = _class_axis(input, op)
    t = as_tensor(target).array
    expected = input.shape[:axis] + input.shape[axis + 1 :]
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: target must hold integer class indices, got dtype {t.dtype}; convert it "
            "with target.astype('int64') (for class probabilities use cross_entropy with a "
            "target of the input's shape)"
        )
    if t.shape != expected:
        raise ValueError(
            f"{op}: input of shape {input.shape} (classes on axis {axis}) needs a target of "
            f"shape {expected}, got target shape {t.shape}"
        )
    classes = input.shape[axis]
    valid = t[t != ignore_index]
    if valid.size and (int(valid.min()) < 0 or int(valid.max()) >= classes):
        bad = int(valid.min()) if int(valid.min()) < 0 else int(valid.max())
        raise ValueError(
            f"{op}: target contains class index {bad}, but the input has {classes} classes "
            f"(valid indices are 0 to {classes - 1}, or ignore_index={ignore_index})"
        )
    return input.xp.asarray(t)  # On the logits' device.


def _class_weights(weight: Any, input: Tensor, op: str) -> Any:
    """Per-class weights as an array in the input's dtype (``None`` when not given)."""
    if weight is None:
        return None
    classes = input.shape[_class_axis(input, op)]
    w = constant_like(weight, input).array
    if w.shape != (classes,):
        raise ValueError(f"{op}: weight must have shape ({classes},) (one per class), got {w.shape}")
    return w


def _along_class_axis(values: Any, ndim: int, axis: int) -> Any:
    """Reshape a ``(C,)`` array to broadcast along ``axis`` of an ``ndim``-d input."""
    return values.reshape((-1,) + (1,) * (ndim - axis - 1))


def _picked_weights(t: Any, weight: Any, ignore_index: int, dtype: Any) -> tuple[Any, Any]:
    """The target indices with ignored ones set to 0, and each target's weight (0 if ignored)."""
    xp = xp_of(t)
    valid = t != ignore_index
    safe = xp.where(valid, t, 0)
    wt = valid.astype(dtype) if weight is None else weight[safe] * valid
    return safe, wt


def _mean_divisor(wt: Any) -> float:
    """1 / (sum of target weights); NaN when every target is ignored (as PyTorch)."""
    total = float(wt.sum())
    return 1.0 / total if total else math.nan


class SoftmaxCrossEntropy(Function):
    """Fused ``log_softmax`` + negative log-likelihood for integer class targets.

    Without label smoothing the gradient of sample ``i`` is ``(softmax - onehot) * w[t_i]``
    (divided by the summed weights for ``"mean"``). With smoothing ``e`` it is
    ``p * a - c * onehot - e/C * w``, where ``c = (1-e) w[t]`` and ``a = c + e/C sum(w)``;
    ignored samples get 0. The array backward reuses ``exp`` from forward: one multiply
    over the logits and one subtraction per sample.

    backward_arrays: common layer, no benchmark runs it yet: cross_entropy with class weights,
    ignore_index or label smoothing.
    """

    def __init__(self, target: Any, weight: Any, ignore_index: int, reduction: str,
                 smoothing: float) -> None:
        self.target, self.weight, self.ignore_index = target, weight, ignore_index
        self.reduction, self.smoothing = reduction, smoothing

    def forward(self, x: Any) -> Any:
        xp = xp_of(x)
        ax = self.axis = 1 if x.ndim >= 2 else 0
        logp = x - x.max(axis=ax, keepdims=True)
        self.exp = xp.exp(logp)
        self.total = self.exp.sum(axis=ax, keepdims=True)
        logp -= xp.log(self.total)
        safe, self.wt = _picked_weights(self.target, self.weight, self.ignore_index, x.dtype)
        self.index = xp.expand_dims(safe, ax)
        picked = xp.take_along_axis(logp, self.index, axis=ax)
        loss = picked.reshape(self.wt.shape) * (self.wt * (self.smoothing - 1.0))
        if self.smoothing:
            uniform = (logp * self._class_weights(x)).sum(axis=ax) * self._valid(x.dtype)
            loss -= uniform * (self.smoothing / x.shape[ax])
        if self.reduction == "none":
            return loss
        self.scale = _mean_divisor(self.wt) if self.reduction == "mean" else 1.0
        return loss.sum() * self.scale

    def _valid(self, dtype: Any) -> Any:
        """1 for counted targets, 0 for ignored ones, in the logits' dtype."""
        return (self.target != self.ignore_index).astype(dtype)

    def _class_weights(self, x: Any) -> Any:
        """``w`` along the class axis (1.0 when there are no class weights)."""
        return 1.0 if self.weight is None else _along_class_axis(self.weight, x.ndim, self.axis)

    def _per_sample(self, x: Any) -> tuple[Any, Any]:
        """``a`` (the factor of p) and ``c`` (of the one-hot target), per sample, keepdims."""
        xp, e, classes = xp_of(x), self.smoothing, x.shape[self.axis]
        c = self.wt * (1.0 - e)
        a = c
        if e:
            w_sum = classes if self.weight is None else float(self.weight.sum())
            a = c + self._valid(x.dtype) * (w_sum * e / classes)
        return xp.expand_dims(a, self.axis), xp.expand_dims(c, self.axis)

    def _uniform(self, x: Any) -> Any:
        """The label-smoothing term ``e/C * w`` of the gradient (full size)."""
        valid = xp_of(x).expand_dims(self._valid(x.dtype), self.axis)
        return valid * self._class_weights(x) * (self.smoothing / x.shape[self.axis])

    def _expanded(self, gy: Any) -> Any:
        """The output gradient, broadcastable against the logits."""
        if self.reduction == "none":
            return gy.reshape(gy.shape[: self.axis] + (1,) + gy.shape[self.axis :])
        return gy * self.scale

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        xp = xp_of(x.array)
        a, c = self._per_sample(x.array)
        classes = x.shape[self.axis]
        onehot = xp.arange(classes).reshape((-1,) + (1,) * (x.ndim - self.axis - 1)) == self.index
        b = onehot * c + (self._uniform(x.array) if self.smoothing else 0.0)
        p = softmax(x, axis=self.axis)  # An op, so that the gradient has a gradient.
        return self._expanded(gy) * (p * Tensor._wrap(a, False) - Tensor._wrap(b, False))

    def backward_arrays(self, gy: Any) -> Any:
        xp = xp_of(self.exp)
        a, c = self._per_sample(self.exp)
        g_out = self._expanded(gy)
        grad = self.exp * ((a / self.total) * g_out)
        at_target = list(xp.ix_(*[xp.arange(n) for n in self.index.shape]))
        at_target[self.axis] = self.index
        grad[tuple(at_target)] -= c * g_out  # One target per sample: no repeated index.
        if self.smoothing:
            grad -= self._uniform(self.exp) * g_out
        return grad


class PlainSoftmaxCrossEntropy(SoftmaxCrossEntropy):
    """:class:`SoftmaxCrossEntropy` in its most common case, with fewer passes: logits ``(N, C)`` on
    NumPy, integer class targets, no class weights, no smoothing, a mean or a sum.

    Forward takes the log-softmax only at the targets (``log(sum exp z) - z_t``, ``z = x - max``);
    backward is ``softmax * g`` with ``g`` taken off at each target. On float32 the native kernels do
    each in one call (:mod:`nurinet._runtime.fast.loss`); what that saves on the MLP benchmark is in
    docs/performance.md. A target outside ``[0, C)`` raises
    :class:`~nurinet._runtime.fast.loss.TargetsOutOfRange` before anything is recorded.

    backward_arrays: the MLP, CNN, LSTM and Transformer benchmarks.
    """

    def __init__(self, target: Any, reduction: str) -> None:
        super().__init__(target, None, -100, reduction, 0.0)

    def forward(self, x: Any) -> Any:
        self.axis = 1
        self.scale = 1.0 / x.shape[0] if self.reduction == "mean" else 1.0
        # The op's own copy: the kernels index with the targets, which the caller may change before backward.
        self.target = np.array(self.target, dtype=np.int64)
        fused = fast_loss.softmax_cross_entropy(x, self.target)
        if fused is not None:
            total, self.probabilities = fused
            return np.asarray(total * self.scale, dtype=x.dtype)
        self.probabilities = None
        return self._numpy_forward(x) * self.scale

    def _numpy_forward(self, x: Any) -> Any:
        """The summed loss in NumPy, keeping ``exp`` and its row sums for the backward."""
        t = self.target
        if not (0 <= t.min() and t.max() < x.shape[1]):
            raise fast_loss.TargetsOutOfRange(f"targets outside [0, {x.shape[1]})")
        z = x - x.max(axis=1, keepdims=True)
        self.exp = np.exp(z)
        self.total = self.exp.sum(axis=1, keepdims=True)
        return np.log(self.total).sum() - z[np.arange(x.shape[0]), t].sum()  # two sums of terms >= 0

    def backward(self, gy: Tensor) -> Tensor:
        # What the general op's Tensor backward (for gradients of gradients) reads.
        self.index, self.wt = self.target[:, None], np.ones(self.target.shape[0], self.inputs[0].dtype)
        return super().backward(gy)

    def backward_arrays(self, gy: Any) -> Any:
        g = gy * self.scale
        if self.probabilities is not None:
            grad = fast_loss.softmax_cross_entropy_backward(self.probabilities, self.target, float(g))
            if grad is not None:
                return grad
            grad = self.probabilities * g
        else:
            grad = self.exp / self.total
            grad *= g
        grad[np.arange(grad.shape[0]), self.target] -= g
        return grad


def _plain_class_targets(input: Tensor, target: Tensor, ignore_index: int) -> Any:
    """The targets as an array when :class:`PlainSoftmaxCrossEntropy` may take them, else None (the op
    itself checks that they are class indices)."""
    t, classes = target.array, input.shape[-1]
    if type(t) is not np.ndarray or type(input.array) is not np.ndarray or input.ndim != 2:
        return None
    if t.dtype.kind not in "iu" or t.shape != input.shape[:1] or not t.size or 0 <= ignore_index < classes:
        return None
    return t


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of integer class targets under log-probabilities ``input``.

    ``loss_i = -weight[t_i] * input[i, t_i]``; targets equal to ``ignore_index`` add
    nothing. ``"mean"`` divides by the summed weights of the counted targets (as PyTorch).

    Args:
        input: Log-probabilities ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``.
        target: Class indices ``(N,)``, ``(N, d1, ...)`` or a scalar.
        weight: Optional per-class weights ``(C,)`` (constants).
        ignore_index: Target value that is skipped.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    check_reduction(reduction, "nll_loss")
    input = as_tensor(input)
    t = _class_targets(input, target, ignore_index, "nll_loss")
    w = _class_weights(weight, input, "nll_loss")
    axis = _class_axis(input, "nll_loss")
    safe, wt = _picked_weights(t, w, ignore_index, input.dtype)
    picked = reshape(take_along_axis(input, input.xp.expand_dims(safe, axis), axis), t.shape)
    loss = picked * Tensor._wrap(-wt, False)
    if reduction == "mean":
        return rd.sum(loss) * _mean_divisor(wt)
    return reduce(loss, reduction)


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy between the softmax of logits ``input`` and ``target``.

    Two kinds of target, as PyTorch:

    * integer class indices (Keras's *sparse* categorical cross-entropy), computed by the
      fused :class:`SoftmaxCrossEntropy` op; ``"mean"`` divides by the summed weights
      of the non-ignored targets;
    * class probabilities or one-hot rows of the input's shape (Keras's *categorical*
      cross-entropy); ``"mean"`` averages over the samples.

    Args:
        input: Logits (not probabilities) ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)``.
        target: Class indices ``(N, d1, ...)``, or probabilities of the input's shape.
        weight: Optional per-class weights ``(C,)`` (constants).
        ignore_index: Class-index target value that is skipped (index targets only).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        label_smoothing: ``e`` in [0, 1]: the target becomes ``(1 - e) target + e / C``.
    """
    check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    input, target = as_tensor(input), as_tensor(target)
    if target.dtype.kind == "f" and target.shape == input.shape:
        return _soft_cross_entropy(input, target, weight, reduction, label_smoothing)
    if weight is None and not label_smoothing and reduction != "none":
        t = _plain_class_targets(input, target, ignore_index)
        if t is not None:
            try:
                return PlainSoftmaxCrossEntropy(t, reduction)(input)
            except fast_loss.TargetsOutOfRange:
                pass  # an ignore_index target, or an error the general op reports
    t = _class_targets(input, target, ignore_index, "cross_entropy")
    w = _class_weights(weight, input, "cross_entropy")
    op = SoftmaxCrossEntropy(t, w, ignore_index, reduction, float(label_smoothing))
    return op(input)


def _soft_cross_entropy(
    input: Tensor, target: Tensor, weight: Any, reduction: str, smoothing: float
) -> Tensor:
    """``-sum_c w_c q_c log_softmax(x)_c`` per sample, for probability targets ``q``."""
    axis = _class_axis(input, "cross_entropy")
    input, q = pair(input, target, "cross_entropy")
    if smoothing:
        q = q * (1.0 - smoothing) + smoothing / input.shape[axis]
    w = _class_weights(weight, input, "cross_entropy")
    if w is not None:
        q = q * Tensor._wrap(_along_class_axis(w, input.ndim, axis), False)
    return reduce(-rd.sum(q * log_softmax(input, axis=axis), axis=axis), reduction)


def cross_entropy_composite(
    input: Tensor,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """The slow twin of the fused integer-target :func:`cross_entropy`: ``log_softmax``
    then :func:`nll_loss`, plus the label-smoothing term (the test oracle)."""
    input = as_tensor(input)
    axis = _class_axis(input, "cross_entropy")
    logp = log_softmax(input, axis=axis)
    nll = nll_loss(logp, target, weight, ignore_index, reduction)
    if not label_smoothing:
        return nll
    t = _class_targets(input, target, ignore_index, "cross_entropy")
    w = _class_weights(weight, input, "cross_entropy")
    if w is not None:
        logp = logp * Tensor._wrap(_along_class_axis(w, input.ndim, axis), False)
    valid = (t != ignore_index).astype(input.dtype)
    smooth = -rd.sum(logp, axis=axis) * Tensor._wrap(valid, False)
    if reduction == "mean":
        smooth = rd.sum(smooth) * _mean_divisor(_picked_weights(t, w, ignore_index, input.dtype)[1])
    else:
        smooth = reduce(smooth, reduction)
    classes = input.shape[axis]
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / classes)


def _check_probabilities(p: Tensor, op: str, what: str = "input") -> None:
    """Refuse values outside [0, 1] or NaN, as PyTorch's ``binary_cross_entropy`` does."""
    if not p.numel():
        return
    low, high = float(p.array.min()), float(p.array.max())
    if not (low >= 0.0 and high <= 1.0):  # also catches NaN, whose comparisons are False
        fix = "; for logits use binary_cross_entropy_with_logits" if what == "input" else \
            "; binary targets are 0 or 1 (or probabilities between)"
        raise ValueError(f"{op}: all elements of {what} should be between 0 and 1, found values in "
                         f"[{low}, {high}]{fix}")


class BinaryCrossEntropy(Function):
    """``-w (y log p + (1 - y) log(1 - p))`` with both logs clamped to >= -100 (as PyTorch)."""

    def __init__(self, weight: Any) -> None:
        self.weight = weight

    def forward(self, p: Any, y: Any) -> Any:
        xp = xp_of(p)
        # log(max(p, e^-100)) avoids log(0) warnings; the clamp then makes it exactly -100.
        logp = xp.maximum(xp.log(xp.maximum(p, _TINY)), LOG_FLOOR)
        log1mp = xp.maximum(xp.log(xp.maximum(1.0 - p, _TINY)), LOG_FLOOR)
        loss = -(y * logp + (1.0 - y) * log1mp)
        return loss if self.weight is None else loss * self.weight

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        p, y = self.inputs
        if self.weight is not None:
            gy = gy * Tensor._wrap(self.weight, False)
        gp = gy * (p - y) / ew.clip(p * (1.0 - p), 1e-12, None) if self.needs_input_grad[0] else None
        gt = None
        if self.needs_input_grad[1]:
            gt = gy * (ew.log(ew.clip(1.0 - p, _TINY, None)) - ew.log(ew.clip(p, _TINY, None)))
        return gp, gt


def binary_cross_entropy(
    input: Tensor, target: Any, weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """Binary cross-entropy on probabilities ``input`` (e.g. after :func:`sigmoid`).

    ``-w (y log p + (1 - y) log(1 - p))`` with each log clamped to >= -100 as PyTorch, so
    ``p`` of exactly 0 or 1 gives a finite loss. Prefer
    :func:`binary_cross_entropy_with_logits`, which is stable and cheaper.

    Args:
        input: Probabilities in [0, 1].
        target: Targets in [0, 1] of the input's shape.
        weight: Optional constant weights broadcast against the input.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    check_reduction(reduction, "binary_cross_entropy")
    input, target = pair(input, target, "binary_cross_entropy")
    _check_probabilities(input, "binary_cross_entropy")
    _check_probabilities(target, "binary_cross_entropy", "target")
    w = None if weight is None else constant_like(weight, input).array
    return reduce(BinaryCrossEntropy(w)(input, target), reduction)


class BCEWithLogits(Function):
    """``w ((1 - y) x + (1 + (pw - 1) y) softplus(-x))``: log-sigmoid cross-entropy on logits.

    With ``pw = 1`` this is ``max(x, 0) - x y + log(1 + exp(-|x|))``, which never overflows.

    backward_arrays: common layer, no benchmark runs it yet: the GANs' losses.
    """

    def __init__(self, weight: Any, pos_weight: Any) -> None:
        self.weight, self.pos_weight = weight, pos_weight

    def forward(self, x: Any, y: Any) -> Any:
        xp = xp_of(x)
        self.e = xp.exp(-xp.abs(x))  # Kept: backward's sigmoid(-x) reuses it.
        softplus_neg = xp.log1p(self.e) + xp.maximum(-x, 0.0)
        if self.pos_weight is None:
            loss = (1.0 - y) * x + softplus_neg
        else:
            loss = (1.0 - y) * x + (y * (self.pos_weight - 1.0) + 1.0) * softplus_neg
        return loss if self.weight is None else loss * self.weight

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, y = self.inputs
        if self.weight is not None:
            gy = gy * Tensor._wrap(self.weight, False)
        pw = None if self.pos_weight is None else Tensor._wrap(self.pos_weight, False)
        gx = gt = None
        if self.needs_input_grad[0]:
            lw = 1.0 if pw is None else y * (pw - 1.0) + 1.0
            gx = gy * ((1.0 - y) - lw * sigmoid(-x))
        if self.needs_input_grad[1]:
            gt = -x if pw is None else (pw - 1.0) * softplus(-x, 1.0, math.inf) - x
            gt = gy * gt
        return gx, gt

    def backward_arrays(self, gy: Any) -> tuple[Any, Any]:
        x, y = self.inputs[0].array, self.inputs[1].array
        xp, e, pw = xp_of(x), self.e, self.pos_weight
        if self.weight is not None:
            gy = gy * self.weight
        gx = gt = None
        if self.needs_input_grad[0]:
            sigmoid_neg = xp.where(x >= 0, e, 1.0) / (1.0 + e)
            if pw is not None:
                sigmoid_neg = sigmoid_neg * (y * (pw - 1.0) + 1.0)
            gx = gy * ((1.0 - y) - sigmoid_neg)
        if self.needs_input_grad[1]:
            gt = gy * (-x if pw is None else (pw - 1.0) * (xp.log1p(e) + xp.maximum(-x, 0.0)) - x)
        return gx, gt


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """Binary cross-entropy of ``sigmoid(input)``, computed stably from the logits.

    Args:
        input: Logits of any shape.
        target: Targets in [0, 1] of the input's shape.
        weight: Optional constant weights broadcast against the input.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        pos_weight: Optional constant weight of the positive term, broadcast against the
            input (one per class along the last axis); above 1 it raises recall.
    """
    check_reduction(reduction, "binary_cross_entropy_with_logits")
    input, target = pair(input, target, "binary_cross_entropy_with_logits")
    w = None if weight is None else constant_like(weight, input).array
    pw = None if pos_weight is None else constant_like(pos_weight, input).array
    return reduce(BCEWithLogits(w, pw)(input, target), reduction)
