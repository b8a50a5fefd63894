"""Data and losses of a functional model with several inputs or outputs.

``nurinet.training.Model``'s loops take one array of inputs and one of targets; Keras's
``fit([x1, x2], [y1, y2])`` (or dicts keyed as the model's inputs and outputs) is turned here
into a loader of batches shaped as the model's structures (:class:`StructuredBatches`), which
``Model.fit`` accepts as any loader, and the loss into one callable summing a loss per output
(:class:`MultiOutputLoss`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from nurinet.autograd.tensor import Tensor
from nurinet.backend import to_numpy
from nurinet.data import DataLoader, TensorDataset, to_array
from nurinet.keras.graph import flatten_like
from nurinet.keras.symbolic import map_structure

__all__ = ["MultiOutputLoss", "StructuredBatches", "split_structured"]


def _pack(structure: Any, values: Sequence[Any]) -> Any:
    leaves = iter(values)
    return map_structure(lambda _: next(leaves), structure)


def _arrays(structure: Any, data: Any, what: str) -> list[Any]:
    arrays = [to_array(d.array if isinstance(d, Tensor) else d) for d in flatten_like(structure, data, what)]
    arrays = [np.asarray(to_numpy(a)) for a in arrays]
    lengths = {len(a) for a in arrays}
    if len(lengths) > 1:
        raise ValueError(f"{what}: the arrays have different numbers of samples: {[len(a) for a in arrays]}")
    return arrays


class StructuredBatches:
    """Batches ``(x, y)`` (or ``x`` alone when ``y`` is None) shaped as the model's inputs and outputs.

    Args:
        inputs: The model's input structure (KerasTensors); ``x`` is shaped as it.
        outputs: The model's output structure; ``y`` is shaped as it.
        x: The inputs (a list or dict of arrays).
        y: The targets, or None (``predict``).
        batch_size: Samples per batch.
        shuffle: A new order each epoch.
        generator: A ``nurinet.Generator`` for the order.
    """

    def __init__(self, inputs: Any, outputs: Any, x: Any, y: Any, batch_size: int = 32,
                 shuffle: bool = False, generator: Any = None) -> None:
        self.inputs, self.outputs = inputs, outputs
        self.x_arrays = _arrays(inputs, x, "x (the model's inputs)")
        self.y_arrays = [] if y is None else _arrays(outputs, y, "y (the model's outputs)")
        if self.y_arrays and len(self.y_arrays[0]) != len(self.x_arrays[0]):
            raise ValueError(f"x and y have different numbers of samples: x has {len(self.x_arrays[0])}, "
                             f"y has {len(self.y_arrays[0])}")
        if not len(self.x_arrays[0]):
            raise ValueError("x has no samples (its first axis has length 0)")
        self.loader = DataLoader(TensorDataset(*self.x_arrays, *self.y_arrays), batch_size=batch_size,
                                 shuffle=shuffle, generator=generator)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        count = len(self.x_arrays)
        for batch in self.loader:
            x = _pack(self.inputs, batch[:count])
            yield (x, _pack(self.outputs, batch[count:])) if self.y_arrays else (x,)


def split_structured(x: Any, y: Any, inputs: Any, outputs: Any, fraction: float) -> tuple[Any, Any, Any]:
    """Hold out the last ``fraction`` of every array (Keras's ``validation_split``).

    Returns:
        ``(x_train, y_train, (x_val, y_val))``, shaped as ``inputs`` / ``outputs`` (lists or dicts).
    """
    xs, ys = _arrays(inputs, x, "x"), _arrays(outputs, y, "y")
    n = len(xs[0])
    cut = n - round(n * fraction)
    if not 0 < cut < n:
        raise ValueError(f"validation_split={fraction} leaves no training or no validation data of {n}")

    def part(structure: Any, arrays: list[Any], rows: slice) -> Any:
        return _pack(structure, [a[rows] for a in arrays])

    train = (part(inputs, xs, slice(None, cut)), part(outputs, ys, slice(None, cut)))
    return train[0], train[1], (part(inputs, xs, slice(cut, None)), part(outputs, ys, slice(cut, None)))


class MultiOutputLoss:
    """``sum_i weight_i * loss_i(output_i, target_i)`` over a model's outputs.

    Args:
        outputs: The model's output structure (the predictions and targets are shaped as it).
        losses: One loss callable ``loss(output, target)`` per output, in order.
        weights: One weight per output (Keras's ``loss_weights``).
    """

    def __init__(self, outputs: Any, losses: list[Any], weights: list[float]) -> None:
        self.outputs, self.losses, self.weights = outputs, losses, weights

    def __call__(self, prediction: Any, target: Any) -> Tensor:
        predictions = flatten_like(self.outputs, prediction, "the model's outputs")
        targets = flatten_like(self.outputs, target, "y (the model's outputs)")
        total = None
        for loss, weight, p, t in zip(self.losses, self.weights, predictions, targets):
            if loss is None:  # Keras: an output without a loss is not trained on
                continue
            term = loss(p, t) * weight if weight != 1.0 else loss(p, t)
            total = term if total is None else total + term
        if total is None:
            raise ValueError("compile: every output's loss is None; give at least one output a loss")
        return total

    def __repr__(self) -> str:
        return f"MultiOutputLoss({self.losses}, weights={self.weights})"
