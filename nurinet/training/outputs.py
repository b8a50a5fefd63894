"""What a model's output is: logits, probabilities, log-probabilities or plain values.

``Model`` reads it from each output (a softmax, sigmoid or log-softmax output remembers its
logits, see :class:`nurinet.functional.activation.ActivationSource`), else from the loss it
was compiled with and the user's ``from_logits``. Metrics, thresholds, ``predict_proba`` and
``predict_classes`` then work on probabilities, never on logits taken for probabilities.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from nurinet.autograd.tensor import Tensor
from nurinet.backend import get_array_module
from nurinet.functional.activation import (
    activation_source,
    sigmoid_array,
    softmax_array,
)
from nurinet.functional.loss_registry import (
    LOG_PROBABILITIES,
    LOGITS,
    PROBABILITIES,
    VALUES,
    LossInfo,
    loss_info,
)


class PlainValuesError(ValueError):
    """Probabilities or classes were asked of an output that holds plain values."""


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """What a network's output holds.

    Attributes:
        kind: ``"logits"``, ``"probabilities"``, ``"log-probabilities"`` or ``"values"``.
        link: ``"softmax"`` (one class per sample) or ``"sigmoid"`` (independent yes/no per
            output), or None for plain values.
        axis: The class axis of a softmax link.
    """

    kind: str
    link: str | None = None
    axis: int = -1

    @property
    def is_probabilistic(self) -> bool:
        return self.link is not None and self.kind != VALUES


_SOURCE_SPECS = {"softmax": (PROBABILITIES, "softmax"), "sigmoid": (PROBABILITIES, "sigmoid"),
                 "log_softmax": (LOG_PROBABILITIES, "softmax")}


def describe_output(output: Any, info: LossInfo | None = None,
                    from_logits: bool | None = None) -> OutputSpec:
    """The :class:`OutputSpec` of ``output``: from its activation, else the loss and the user."""
    source = activation_source(output)
    if source is not None:
        kind, link = _SOURCE_SPECS[source.activation]
        return OutputSpec(kind, link, -1 if source.axis is None else source.axis)
    link = info.link if info is not None else None
    if from_logits is not None and link is None:
        link = "sigmoid" if _width(output) == 1 else "softmax"
    if from_logits is True:
        return OutputSpec(LOGITS, link)
    if from_logits is False:
        return OutputSpec(PROBABILITIES, link)
    if info is None or info.link is None:
        return OutputSpec(VALUES)
    return OutputSpec(info.takes, info.link)


def _width(output: Any) -> int:
    shape = getattr(output, "shape", ())
    return shape[-1] if len(shape) >= 2 else 1


def probabilities(output: Any, spec: OutputSpec) -> np.ndarray | Any:
    """The probabilities an output stands for, as an array (the output's own array module).

    Raises:
        PlainValuesError: the output holds plain values (a ValueError).
    """
    data = output.array if isinstance(output, Tensor) else output
    if spec.kind == PROBABILITIES:
        return data
    if spec.kind == LOG_PROBABILITIES:
        return get_array_module(data).exp(data)
    if spec.kind == LOGITS and spec.link == "sigmoid":
        return sigmoid_array(data)
    if spec.kind == LOGITS and spec.link == "softmax":
        return softmax_array(data, spec.axis)
    raise PlainValuesError("the model's output holds plain values, not class scores: probabilities and "
                     "classes need a softmax or sigmoid output (or a classification loss such as "
                     "sparse_categorical_crossentropy, or compile(from_logits=True))")


def logits(output: Any, spec: OutputSpec) -> Any:
    """The logits behind an output, as an array.

    Raises:
        ValueError: the output is neither logits nor the output of a softmax/sigmoid.
    """
    source = activation_source(output)
    if source is not None:
        return source.logits.array
    if spec.kind in (LOGITS, VALUES):
        return output.array if isinstance(output, Tensor) else output
    raise ValueError(f"the model's output holds {spec.kind} computed without a recorded softmax or "
                     "sigmoid, so its logits are not known; use predict_proba or predict")


def update_metrics(metrics: Any, prediction: Any, spec: OutputSpec, target: Any) -> None:
    """Update each metric with one output and its target. A metric is given logits when it was
    made with ``from_logits=True``, else the probabilities of a classifier's output, else the
    output itself."""
    proba = probabilities(prediction, spec) if spec.is_probabilistic else None
    for metric in metrics:
        metric.observe_output(spec)
        if getattr(metric, "from_logits", False):
            value = logits(prediction, spec)
        else:
            value = proba if proba is not None else prediction.array
        metric.update_state(value, target)


def classes(proba: Any, spec: OutputSpec, threshold: Any = 0.5) -> np.ndarray:
    """Predicted classes from probabilities: argmax for a softmax output; for a sigmoid output
    ``p > threshold`` per label (``threshold`` a number or one per label), as ``(N,)`` for one
    label and ``(N, L)`` for several."""
    proba = np.asarray(proba)
    if spec.link == "softmax":
        return proba.argmax(axis=spec.axis)
    thresholds = np.asarray(threshold, dtype=proba.dtype if proba.dtype.kind == "f" else np.float64)
    if thresholds.ndim and thresholds.shape[-1] != proba.shape[-1]:
        raise ValueError(f"predict_classes: {thresholds.shape[-1]} thresholds for "
                         f"{proba.shape[-1]} labels; give one threshold, or one per label")
    labels = (proba > thresholds).astype(np.int64)
    return labels[..., 0] if labels.ndim >= 2 and labels.shape[-1] == 1 else labels


class Objective:
    """A loss found by name, applied to a network's output as the name means.

    Refuses an output activation that makes no sense before the loss (softmax + hinge),
    and tells the model what its output holds.

    Args:
        name: A loss name (``docs/losses.md``).
        from_logits: What an output without a final softmax/sigmoid holds: True for logits,
            False for probabilities, None for the loss's own convention.
    """

    def __init__(self, name: str, from_logits: bool | None = None) -> None:
        info = loss_info(name)
        if info is None:
            raise TypeError(f"Objective needs a loss name, got {name!r}")
        self.info, self.from_logits = info, from_logits
        self._plain: Callable[..., Any] = info.for_output(from_logits)

    def __call__(self, output: Any, target: Any) -> Tensor:
        source = activation_source(output)
        if source is not None:
            self.info.check_pairing(source.activation, "compile")
            return self.info.fn(output, target)
        return self._plain(output, target)

    def __repr__(self) -> str:
        return f"Objective({self.info.name!r}, from_logits={self.from_logits})"
