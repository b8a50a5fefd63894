"""Weighted losses for ``Model.fit``: Keras's ``sample_weight`` and ``class_weight``.

Keras multiplies each sample's loss by its weight and divides the sum by the number of samples
in the batch (its ``"sum_over_batch_size"`` reduction), not by the sum of the weights. nurinet's
losses reduce with ``"mean"`` (over the samples, or over every element for elementwise losses
such as ``mse``), so the weighted loss is computed from the loss's ``reduction="none"`` values:

* ``"mean"`` (every loss given by name, and loss modules built with the default): the mean of
  ``w_i * l_ij`` over every element, which is ``sum_i w_i l_i / N`` where ``l_i`` is the mean of
  sample ``i``'s elements: Keras's weighted loss. With every weight 1 it is the unweighted loss.
* ``"sum"`` (a loss module built with ``reduction="sum"``): the sum of ``w_i * l_ij``.

A loss can be weighted when it takes ``reduction="none"`` and gives values whose first axis
is the batch: every loss of ``docs/losses.md`` by name, the loss modules of ``nurinet.nn``
(without a ``weight`` of their own), and any function ``loss(prediction, target,
reduction="none")``. Other losses are refused with an error that says so.

``class_weight`` maps a class index to a weight; a class the dict leaves out weighs 1, as in
Keras. The class of a sample is its integer label, the argmax of a one-hot (or probability) row,
or the 0/1 label of a one-output sigmoid classifier. Only one class per sample is supported (as
Keras: no class weights for targets of 3 or more dimensions).
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from nurinet.autograd.tensor import Tensor
from nurinet.backend import get_array_module, to_numpy
from nurinet.functional.activation import activation_source
from nurinet.training.outputs import Objective

_REDUCING = ("mean", "sum")


# ----- class_weight --------------------------------------------------------------------------------
def check_class_weight(class_weight: Any) -> dict[int, float] | None:
    """``class_weight`` as ``{class index: weight}``, or None when not given.

    Raises:
        TypeError: it is not a dict, or a key is not a whole number, or a value not a number.
        ValueError: a key is negative, or a weight is negative, infinite or NaN.
    """
    if class_weight is None:
        return None
    if not isinstance(class_weight, Mapping):
        raise TypeError(f"fit: class_weight must be a dict {{class index: weight}}, e.g. {{0: 1.0, 1: 3.0}}; "
                        f"got {type(class_weight).__name__}")
    table: dict[int, float] = {}
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, numbers.Integral):
            raise TypeError(f"fit: class_weight keys must be class indices (whole numbers 0, 1, ...), "
                            f"got {key!r}")
        if key < 0:
            raise ValueError(f"fit: class_weight has class index {key}, but class indices start at 0")
        table[int(key)] = _weight(value, f"class_weight[{key}]")
    return table


def _weight(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"fit: {what} must be a number, got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"fit: {what} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_class_weight_loss(loss_fn: Any) -> None:
    """Refuse ``class_weight`` with a loss that is not a classification loss by name.

    Raises:
        ValueError: the loss, given by name, is a regression loss (``mse``, ``huber``...).
    """
    if isinstance(loss_fn, Objective) and loss_fn.info.link is None:
        raise ValueError(f"fit: class_weight needs a classification loss (one class per sample), but "
                         f"the model was compiled with {loss_fn.info.name!r}, whose targets are values; "
                         "use sample_weight to weight the samples of a regression")


def class_sample_weights(class_weight: dict[int, float], prediction: Any, target: Any) -> np.ndarray:
    """The weight of each sample of a batch: the weight of its class (1 for a class not listed).

    Args:
        class_weight: ``{class index: weight}`` from :func:`check_class_weight`.
        prediction: The model's output for the batch ``(N, C)`` (or ``(N,)`` / ``(N, 1)`` for
            a one-output binary classifier), which tells the number of classes.
        target: The batch's targets: class indices ``(N,)`` / ``(N, 1)``, or one-hot rows ``(N, C)``.

    Returns:
        ``(N,)`` float64 weights.

    Raises:
        ValueError: the targets are not classes (fractional values, rows that are not one-hot or
            probabilities, 3 or more dimensions), a target class or a key of ``class_weight`` is
            out of the output's range of classes.
    """
    labels = _class_labels(to_numpy(target.array if isinstance(target, Tensor) else target))
    shape = getattr(prediction, "shape", ())
    n_classes = shape[-1] if len(shape) >= 2 and shape[-1] > 1 else 2
    if len(shape) > 2:
        raise ValueError(f"fit: class_weight supports one class per sample (an output of shape (N, C)); "
                         f"the model's output has shape {tuple(shape)}: use sample_weight instead")
    outside = [key for key in class_weight if key >= n_classes]
    if outside:
        raise ValueError(f"fit: class_weight has class index {outside[0]}, but the model outputs "
                         f"{n_classes} classes (indices 0 to {n_classes - 1}); remove it or check the "
                         "output layer's width")
    bad = labels[(labels < 0) | (labels >= n_classes)]
    if bad.size:
        raise ValueError(f"fit: target class index {int(bad[0])} is out of range for an output of "
                         f"{n_classes} classes (indices 0 to {n_classes - 1})")
    table = np.ones(n_classes)
    for key, value in class_weight.items():
        table[key] = value
    return table[labels]


def _class_labels(y: np.ndarray) -> np.ndarray:
    """One class index per sample from index targets ``(N,)``/``(N, 1)`` or one-hot rows ``(N, C)``."""
    if y.ndim == 0 or y.ndim > 2:
        raise ValueError(f"fit: class_weight needs one class per sample: targets of shape (N,), (N, 1) "
                         f"or one-hot (N, C); got shape {y.shape} (use sample_weight instead)")
    if y.ndim == 2 and y.shape[1] > 1:
        if y.dtype.kind not in "biuf" or np.any(y < 0) or not np.allclose(y.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError("fit: class_weight needs classification targets, but the targets of shape "
                             f"{y.shape} are not one-hot rows (or class probabilities summing to 1); "
                             "for a regression use sample_weight")
        return y.argmax(axis=1)
    y = y.reshape(len(y))
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError("fit: class_weight needs classification targets (class indices), but the "
                             f"targets hold fractional values such as {y[y != np.round(y)][:1]}; for a "
                             "regression use sample_weight")
        return y.astype(np.int64)
    if y.dtype.kind not in "biu":
        raise ValueError(f"fit: class_weight needs class-index targets, got targets of dtype {y.dtype}")
    return y.astype(np.int64)


# ----- sample weights ------------------------------------------------------------------------------
def check_sample_weight(sample_weight: Any, n: int, who: str = "fit: sample_weight") -> np.ndarray | None:
    """``sample_weight`` as a float64 array of shape ``(n,)``, or None when not given.

    Raises:
        ValueError: another shape, or weights that are negative, infinite or NaN.
        TypeError: values that are not numbers.
    """
    if sample_weight is None:
        return None
    data = sample_weight.array if isinstance(sample_weight, Tensor) else sample_weight
    array = np.asarray(to_numpy(data) if not isinstance(data, (list, tuple)) else data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{who} must hold numbers, got dtype {array.dtype}")
    if array.shape != (n,):
        raise ValueError(f"{who} must have shape ({n},): one weight per sample of x; got shape "
                         f"{array.shape}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        bad = array[~np.isfinite(array) | (array < 0)][0]
        raise ValueError(f"{who} must hold finite weights >= 0, found {bad}")
    return array


def check_weightable(loss_fn: Any, what: str = "sample_weight") -> None:
    """Refuse a loss that cannot give one value per sample (see the module's docstring).

    Raises:
        ValueError: naming the loss and what to use instead.
    """
    _unreduced(loss_fn, what)


def weighted_loss(loss_fn: Any, prediction: Any, target: Any, sample_weight: Any) -> Tensor:
    """Keras's weighted loss: each sample's loss times its weight, over the batch size.

    Args:
        loss_fn: The compiled loss (an :class:`Objective`, a loss module or a function taking
            ``reduction``).
        prediction: The model's output for the batch.
        target: The batch's targets.
        sample_weight: ``(N,)`` weights (an array or Tensor).

    Raises:
        ValueError: the loss cannot be weighted, or its values do not have one row per sample.
    """
    call, reduction = _unreduced(loss_fn, "sample_weight")
    values = call(prediction, target)
    weights = to_numpy(sample_weight.array if isinstance(sample_weight, Tensor) else sample_weight)
    n = len(weights)
    if values.ndim == 0 or values.shape[0] != n:
        raise ValueError(f"fit: the loss with reduction='none' gave values of shape {tuple(values.shape)}, "
                         f"not one row per sample of the batch ({n}); it cannot be weighted per sample")
    xp = get_array_module(values.array)
    shaped = np.asarray(weights, dtype=values.array.dtype).reshape((n,) + (1,) * (values.ndim - 1))
    weighted = values * Tensor(xp.asarray(shaped))
    return weighted.mean() if reduction == "mean" else weighted.sum()


def _unreduced(loss_fn: Any, what: str) -> tuple[Callable[[Any, Any], Tensor], str]:
    """A function giving the loss's ``reduction="none"`` values, and the reduction it replaces."""
    if isinstance(loss_fn, Objective):
        if not (_takes_reduction(loss_fn.info.fn) and _takes_reduction(loss_fn._plain)):
            raise ValueError(f"fit: {what} needs a loss that gives one value per sample, but the loss "
                             f"{loss_fn.info.name!r} takes no reduction argument; register a function "
                             "loss(prediction, target, reduction='mean') that returns per-sample values "
                             "for reduction='none'")
        return (lambda output, target: _objective_values(loss_fn, output, target)), "mean"
    reduction = getattr(loss_fn, "reduction", None)
    if isinstance(reduction, str):  # a loss module of nurinet.nn (or one built the same way)
        if getattr(loss_fn, "weight", None) is not None:
            raise ValueError(f"fit: {what} cannot be combined with {type(loss_fn).__name__}(weight=...), "
                             "whose mean divides by the sum of its own weights; pass the class weights "
                             "to fit(class_weight=...) or to the loss, not both")
        if reduction not in _REDUCING:
            raise ValueError(f"fit: {what} needs a loss that reduces to a number; "
                             f"{type(loss_fn).__name__} has reduction={reduction!r}")
        return (lambda output, target: _module_values(loss_fn, output, target)), reduction
    if _takes_reduction(loss_fn):
        return (lambda output, target: loss_fn(output, target, reduction="none")), "mean"
    name = getattr(loss_fn, "__name__", type(loss_fn).__name__)
    raise ValueError(f"fit: {what} needs a loss that gives one value per sample, but the loss {name!r} "
                     "takes no reduction argument; compile with a loss by name (docs/losses.md), a loss "
                     "module of nurinet.nn, or a function loss(prediction, target, reduction='mean') "
                     "that returns per-sample values for reduction='none'")


def _objective_values(objective: Objective, output: Any, target: Any) -> Tensor:
    """What ``objective(output, target)`` computes, before its mean (as ``Objective.__call__``)."""
    source = activation_source(output)
    if source is not None:
        objective.info.check_pairing(source.activation, "compile")
        return objective.info.fn(output, target, reduction="none")
    return objective._plain(output, target, reduction="none")


def _module_values(module: Any, output: Any, target: Any) -> Tensor:
    with _reduction(module, "none"):
        return module(output, target)


@contextlib.contextmanager
def _reduction(module: Any, reduction: str) -> Iterator[None]:
    previous = module.reduction
    module.reduction = reduction
    try:
        yield
    finally:
        module.reduction = previous


def _takes_reduction(fn: Any) -> bool:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "reduction" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
