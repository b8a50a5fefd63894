"""``compile`` settings given per output of a functional model, as Keras takes them.

A setting (``loss``, ``loss_weights``) is one value for every output, a list in the order of
the outputs, or a dict keyed by output name: the key of a dict of outputs, else the name of
the layer that makes the output (``dense_2``), or the ``keras.Input``'s name for an input
passed through.
"""

from __future__ import annotations

from typing import Any

from nurinet.keras.losses import Loss
from nurinet.keras.symbolic import KerasTensor, flatten
from nurinet.training.outputs import Objective

__all__ = ["output_names", "per_output", "resolve_loss"]


def output_names(outputs: Any, names: dict[int, str]) -> list[str]:
    """The name of each output, in order.

    Args:
        outputs: The model's output structure.
        names: ``id(layer)`` -> the layer's name in the model.
    """
    if isinstance(outputs, dict) and all(isinstance(v, KerasTensor) for v in outputs.values()):
        return [str(key) for key in outputs]
    return [names[id(t.node.layer)] if t.node is not None else str(t.name) for t in flatten(outputs)]


def per_output(value: Any, names: list[str], what: str, default: Any) -> list[Any]:
    """``value`` as one setting per output.

    Raises:
        ValueError: a list of another length, or a dict with a key that names no output.
    """
    if value is None:
        return [default] * len(names)
    if isinstance(value, dict):
        unknown = [key for key in value if key not in names]
        if unknown:
            raise ValueError(f"compile: {what} names {unknown}, which are not outputs of the model; its outputs: "
                             f"{names}")
        return [value.get(name, default) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"compile: {what} lists {len(value)} values for {len(names)} outputs {names}")
        return list(value)
    return [value] * len(names)


def resolve_loss(loss: Any, from_logits: bool | None) -> Any:
    """A loss callable ``loss(output, target)``: a name or Keras loss object as nurinet's
    :class:`Objective`, a callable as it is, None as None (that output is not trained on)."""
    if loss is None or (callable(loss) and not isinstance(loss, Loss)):
        return loss
    if isinstance(loss, Loss):
        return Objective(loss.loss_name, loss.from_logits if loss.from_logits is not None else from_logits)
    if isinstance(loss, str):
        return Objective(loss, from_logits)
    raise TypeError(f"compile: a loss is a name, a keras.losses object or a callable, got {loss!r}")
