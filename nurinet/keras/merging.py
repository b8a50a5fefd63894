"""Keras's merge layers: ``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``,
``Minimum`` and ``Concatenate``, each called on a list of tensors.

They have no weights. The element-wise ones take inputs of one shape (Keras 3 also broadcasts
dims of size 1, and so do these); ``Concatenate(axis=-1)`` joins inputs that agree on every
other axis. A mismatch raises a ``ValueError`` naming the layer and the shapes, which a
functional model reports when the layer is called on ``keras.Input`` tensors.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.keras.layers import Layer

__all__ = ["Add", "Average", "Concatenate", "Maximum", "Minimum", "Multiply", "Subtract"]


class _Merge(Layer):
    """A layer of several inputs: ``layer([x1, x2, ...])``.

    Shape:
        - Input: a list of at least two tensors ``(N, *)`` of one shape (dims of size 1 broadcast).
        - Output: ``(N, *)``.
    """

    _min_inputs = 2

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        Layer.__init__(self, name=name)  # no input_shape: no weights, nothing to rebuild from a saved shape

    def forward(self, inputs: Any, training: bool | None = None) -> Tensor:
        tensors = self._tensors(inputs)
        self._check_dtypes(tensors)
        self._check_shapes([tuple(t.shape) for t in tensors])
        self.built = True
        return self._merge(tensors)

    def _tensors(self, inputs: Any) -> list[Tensor]:
        if not isinstance(inputs, (list, tuple)) or len(inputs) < self._min_inputs:
            count = f"{len(inputs)} input(s)" if isinstance(inputs, (list, tuple)) else type(inputs).__name__
            raise ValueError(f"{type(self).__name__} is called on a list of at least {self._min_inputs} "
                             f"tensors, got {count}")
        return [as_tensor(x) for x in inputs]

    def _check_dtypes(self, tensors: list[Tensor]) -> None:
        dtypes = [str(t.dtype) for t in tensors]
        if len(set(dtypes)) > 1:
            raise TypeError(f"{type(self).__name__} needs inputs of one dtype, got {dtypes}: cast them first, "
                            f"e.g. x.to(nurinet.float32)")

    def _check_shapes(self, shapes: list[tuple[int, ...]]) -> None:
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            raise ValueError(f"{type(self).__name__} needs inputs of one shape (or dims of size 1 that "
                             f"broadcast), got shapes {shapes}") from None

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        raise NotImplementedError

    def _config(self) -> dict[str, Any]:
        return {}


class Add(_Merge):
    """Keras's ``Add``: the element-wise sum of the inputs."""

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        return functools.reduce(lambda a, b: a + b, tensors)


class Subtract(_Merge):
    """Keras's ``Subtract``: ``x1 - x2`` of exactly two inputs."""

    def _tensors(self, inputs: Any) -> list[Tensor]:
        tensors = super()._tensors(inputs)
        if len(tensors) != 2:
            raise ValueError(f"Subtract is called on exactly 2 tensors, got {len(tensors)}")
        return tensors

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        return tensors[0] - tensors[1]


class Multiply(_Merge):
    """Keras's ``Multiply``: the element-wise product of the inputs."""

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        return functools.reduce(lambda a, b: a * b, tensors)


class Average(_Merge):
    """Keras's ``Average``: the element-wise mean of the inputs."""

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        return functools.reduce(lambda a, b: a + b, tensors) / float(len(tensors))


class Maximum(_Merge):
    """Keras's ``Maximum``: the element-wise maximum of the inputs."""

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        return functools.reduce(F.maximum, tensors)


class Minimum(_Merge):
    """Keras's ``Minimum``: the element-wise minimum of the inputs."""

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        return functools.reduce(F.minimum, tensors)


class Concatenate(_Merge):
    """Keras's ``Concatenate(axis=-1)``: the inputs joined along ``axis``.

    Args:
        axis: The axis to join along (the batch axis 0 is refused).

    Shape:
        - Input: a list of tensors that agree on every axis but ``axis``.
        - Output: their shape with ``axis`` of the sum of their sizes.
    """

    def __init__(self, axis: int = -1, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.axis = int(axis)

    def _check_shapes(self, shapes: list[tuple[int, ...]]) -> None:
        ndim = len(shapes[0])
        axis = self.axis % ndim if ndim else 0
        if any(len(s) != ndim for s in shapes) or axis == 0:
            raise ValueError(f"Concatenate(axis={self.axis}) needs inputs of one rank, joined along an "
                             f"axis other than the batch axis, got shapes {shapes}")
        others = {tuple(d for i, d in enumerate(s) if i != axis) for s in shapes}
        if len(others) != 1:
            raise ValueError(f"Concatenate(axis={self.axis}) needs inputs that agree on every axis but "
                             f"{self.axis}, got shapes {shapes}")

    def _merge(self, tensors: list[Tensor]) -> Tensor:
        return F.cat(tensors, self.axis)

    def _config(self) -> dict[str, Any]:
        return {"axis": self.axis}

    def extra_repr(self) -> str:
        return f"axis={self.axis}"
