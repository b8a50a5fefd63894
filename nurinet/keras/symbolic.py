"""Keras's symbolic tensors: what ``keras.Input`` returns, and what a layer called on one returns.

A :class:`KerasTensor` holds no data, only the shape (batch dim None) and the dtype of what
will flow there, and the :class:`Node` (a layer call) that makes it. Calling a layer on
KerasTensors (:func:`call_symbolic`) runs the layer once on zeros of a one-sample batch, which
builds its weights and gives the output shape without any shape rules per layer, records a
node and returns KerasTensors for the outputs. ``keras.Model(inputs, outputs)`` then walks the
nodes back from its outputs (``nurinet/keras/graph.py``).

Structures of tensors (a list, a tuple or a dict of them, nested) are walked by
:func:`map_structure` and :func:`flatten`; anything else is a leaf.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Tensor
from nurinet.nn.module import Module
from nurinet.nn.regularizers import add_activity_penalties

_SERIALS = itertools.count()  # nodes in creation order: a node's inputs were made before it

__all__ = ["Input", "KerasTensor", "Node", "SymbolicCall", "call_symbolic", "contains_keras_tensor", "flatten",
           "map_structure"]


class KerasTensor:
    """A symbolic tensor of a functional model: a shape (batch dim None) and a dtype, no data.

    Args:
        shape: The full shape, batch dim first (None where unknown).
        dtype: The dtype of the values.
        name: A name (``keras.Input(name=...)``), or None.
        node: The layer call that outputs it; None for a ``keras.Input``.
        index: Which of the node's outputs it is.
    """

    def __init__(self, shape: Sequence[Any], dtype: Any = "float32", name: str | None = None,
                 node: Node | None = None, index: int = 0) -> None:
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.name = name
        self.node = node
        self.index = index

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample (without the batch dim)."""
        return self.shape[1:]  # type: ignore[return-value]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name else ""
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype.name}{name}>"


def Input(shape: Sequence[int], dtype: Any = "float32", batch_size: int | None = None,
          name: str | None = None) -> KerasTensor:
    """Keras's ``keras.Input(shape=...)``: a symbolic tensor of one sample's shape (channels-last
    images ``(H, W, C)``), batch dim None. Put it first in a ``keras.Sequential`` to build the
    model at once, or call layers on it to build a functional ``keras.Model``."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    return KerasTensor((batch_size, *(int(s) for s in shape)), dtype, name)


class Node:
    """One call of a layer in a functional graph.

    Attributes:
        layer: The layer (any module) that was called.
        args: The positional arguments of the call: KerasTensors, or structures of them.
        outputs: The KerasTensors of the outputs, in order.
        serial: The node's number in creation order (its inputs have smaller ones).
        output_kind: ``"tensor"`` (one output), ``"list"`` or ``"tuple"`` (what the layer returned).
    """

    def __init__(self, layer: Module, args: tuple[Any, ...]) -> None:
        self.layer = layer
        self.args = args
        self.outputs: list[KerasTensor] = []
        self.serial = next(_SERIALS)
        self.output_kind = "tensor"

    def input_tensors(self) -> list[KerasTensor]:
        return flatten(self.args)

    def output_structure(self) -> Any:
        """The outputs shaped as the layer returned them (a KerasTensor, a list or a tuple)."""
        if self.output_kind == "tensor":
            return self.outputs[0]
        return list(self.outputs) if self.output_kind == "list" else tuple(self.outputs)


# ----- structures --------------------------------------------------------------------------------
def map_structure(fn: Callable[[Any], Any], structure: Any) -> Any:
    """``structure`` with ``fn`` applied to each leaf; lists, tuples and dicts keep their type."""
    if isinstance(structure, dict):
        return {key: map_structure(fn, value) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)):
        return type(structure)(map_structure(fn, value) for value in structure)
    return fn(structure)


def flatten(structure: Any) -> list[Any]:
    """The leaves of ``structure`` in order (dicts in their keys' order)."""
    leaves: list[Any] = []
    map_structure(leaves.append, structure)
    return leaves


def contains_keras_tensor(structure: Any) -> bool:
    # The common case (real tensors) is decided without building a list.
    if isinstance(structure, KerasTensor):
        return True
    if isinstance(structure, dict):
        return any(contains_keras_tensor(v) for v in structure.values())
    if isinstance(structure, (list, tuple)):
        return any(contains_keras_tensor(v) for v in structure)
    return False


# ----- calling a layer on KerasTensors ----------------------------------------------------------------
def describe_layer(layer: Module) -> str:
    """``Dense(units=10, activation=None)``: the layer's class and settings, for messages."""
    extra = layer.extra_repr() if hasattr(layer, "extra_repr") else ""
    return f"{type(layer).__name__}({extra})"


def _shapes_text(args: tuple[Any, ...]) -> str:
    shapes = map_structure(lambda t: t.shape, args[0] if len(args) == 1 else list(args))
    return str(shapes)


def _check_symbolic_args(layer: Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise TypeError(f"{describe_layer(layer)} was called on KerasTensors with keyword arguments "
                        f"({', '.join(kwargs)}); a functional model records positional inputs only")
    others = [leaf for leaf in flatten(args) if not isinstance(leaf, KerasTensor)]
    if others:
        raise TypeError(f"{describe_layer(layer)} was called on KerasTensors mixed with a "
                        f"{type(others[0]).__name__}; in a functional model every input of a layer is "
                        "a keras.Input or another layer's output (a KerasTensor)")


def _zeros(tensor: KerasTensor) -> Tensor:
    batch = 1 if tensor.shape[0] is None else tensor.shape[0]
    return Tensor(np.zeros((batch, *tensor.sample_shape), tensor.dtype))


def _run_on_zeros(layer: Module, args: tuple[Any, ...]) -> Any:
    """Run ``layer`` once on zeros shaped as ``args`` (eval mode, no graph): this builds it."""
    dummy = map_structure(_zeros, args)
    was_training = layer.training
    layer.eval()
    try:
        with no_grad():
            return layer.forward(*dummy)
    except Exception as error:
        raise ValueError(f"{describe_layer(layer)} cannot be called on inputs of shape "
                         f"{_shapes_text(args)}: {error}") from error
    finally:
        layer.train(was_training)
        add_activity_penalties(layer)  # the zeros' activity penalty must not reach a loss


def _batch_dim(args: tuple[Any, ...]) -> int | None:
    batches = {t.shape[0] for t in flatten(args)}
    return batches.pop() if len(batches) == 1 else None


def _record_outputs(node: Node, output: Any, batch: int | None) -> Any:
    if isinstance(output, Tensor):
        outputs = [output]
    elif isinstance(output, (list, tuple)) and output and all(isinstance(o, Tensor) for o in output):
        node.output_kind = type(output).__name__
        outputs = list(output)
    else:
        raise TypeError(f"{describe_layer(node.layer)} returned a {type(output).__name__}; a layer of a "
                        "functional model returns a Tensor, or a list or tuple of them")
    node.outputs = [KerasTensor((batch, *o.shape[1:]), o.array.dtype, node=node, index=i)
                    for i, o in enumerate(outputs)]
    return node.output_structure()


def call_symbolic(layer: Module, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> Any:
    """Record ``layer(*args)`` on KerasTensors and return the output KerasTensor(s).

    Raises:
        TypeError: keyword arguments, or KerasTensors mixed with other values.
        ValueError: the layer does not take inputs of these shapes (the message shows them).
    """
    _check_symbolic_args(layer, args, kwargs or {})
    output = _run_on_zeros(layer, args)
    return _record_outputs(Node(layer, args), output, _batch_dim(args))


class SymbolicCall:
    """Mixin for a module: called on KerasTensors, it records a node instead of computing."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if contains_keras_tensor(args) or contains_keras_tensor(kwargs):
            return call_symbolic(self, args, kwargs)  # type: ignore[arg-type]
        return super().__call__(*args, **kwargs)  # type: ignore[misc]
