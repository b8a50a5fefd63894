"""The graph of a functional ``keras.Model``: the layer calls from its inputs to its outputs.

:class:`Graph` walks the nodes back from the outputs (``nurinet/keras/symbolic.py`` records them
when layers are called on KerasTensors), keeps those needed in the order they were called
(a topological order: a node's inputs exist before it), and replays them on real tensors.
It also writes itself as JSON data (tensors numbered: the inputs first, then each node's
outputs in order) and rebuilds from it, which is how ``Model.save`` stores the edges.
"""

from __future__ import annotations

import re
from typing import Any

from nurinet.autograd.tensor import Tensor
from nurinet.keras.symbolic import (
    KerasTensor,
    Node,
    call_symbolic,
    flatten,
    map_structure,
)
from nurinet.nn.module import Module

__all__ = ["Graph", "flatten_like", "graph_from_config", "layer_names"]


class Graph:
    """The nodes between ``inputs`` and ``outputs`` (each a KerasTensor or a list/tuple/dict of them).

    Raises:
        TypeError: an input or output is not a KerasTensor, or an input is given twice.
        ValueError: an output depends on a ``keras.Input`` that is not among ``inputs``.
    """

    def __init__(self, inputs: Any, outputs: Any) -> None:
        self.inputs, self.outputs = inputs, outputs
        self.input_tensors = _keras_tensors(inputs, "inputs")
        self.output_tensors = _keras_tensors(outputs, "outputs")
        if len({id(t) for t in self.input_tensors}) != len(self.input_tensors):
            raise TypeError("keras.Model: an input is listed twice in inputs")
        self.nodes = _nodes_between(self.input_tensors, self.output_tensors)

    @property
    def layers(self) -> list[Module]:
        """Each layer once, in the order of its first call (a shared layer is listed once)."""
        seen: dict[int, Module] = {}
        for node in self.nodes:
            seen.setdefault(id(node.layer), node.layer)
        return list(seen.values())

    def run(self, input_values: list[Tensor]) -> Any:
        """The outputs (shaped as ``outputs``) for one value per input tensor, in order."""
        values = {id(t): v for t, v in zip(self.input_tensors, input_values)}
        for node in self.nodes:
            args = map_structure(lambda t: values[id(t)], node.args)
            result = node.layer(*args)
            for tensor, value in zip(node.outputs, result if node.output_kind != "tensor" else [result]):
                values[id(tensor)] = value
        return map_structure(lambda t: values[id(t)], self.outputs)

    def get_config(self, names: dict[int, str]) -> dict[str, Any]:
        """JSON data of the graph; ``names`` maps ``id(layer)`` to the layer's name in the model."""
        number = {id(t): i for i, t in enumerate(self.input_tensors)}
        nodes = []
        for node in self.nodes:
            nodes.append({"layer": names[id(node.layer)],
                          "args": list(map_structure(lambda t: number[id(t)], node.args)),
                          "outputs": len(node.outputs)})
            for tensor in node.outputs:
                number[id(tensor)] = len(number)
        inputs = [{"shape": list(t.sample_shape), "batch_size": t.shape[0], "dtype": t.dtype.name,
                   "name": t.name} for t in self.input_tensors]
        return {"inputs": inputs, "nodes": nodes,
                "input_structure": map_structure(lambda t: number[id(t)], self.inputs),
                "output_structure": map_structure(lambda t: number[id(t)], self.outputs)}


def graph_from_config(config: dict[str, Any], layers: dict[str, Module]) -> tuple[Any, Any]:
    """The ``(inputs, outputs)`` structures of a saved graph, its layers called again on new inputs.

    Raises:
        ValueError: the config names a layer that ``layers`` lacks, or a tensor before it exists.
    """
    tensors = [KerasTensor((spec["batch_size"], *spec["shape"]), spec["dtype"], spec.get("name"))
               for spec in config["inputs"]]

    def tensor(number: int) -> KerasTensor:
        if not isinstance(number, int) or not 0 <= number < len(tensors):
            raise ValueError(f"keras.Model config: tensor {number!r} is used before it is made")
        return tensors[number]

    for spec in config["nodes"]:
        if spec["layer"] not in layers:
            raise ValueError(f"keras.Model config: node of unknown layer {spec['layer']!r}")
        result = call_symbolic(layers[spec["layer"]], tuple(map_structure(tensor, spec["args"])))
        tensors.extend(flatten(result))
    return map_structure(tensor, config["input_structure"]), map_structure(tensor, config["output_structure"])


def _keras_tensors(structure: Any, what: str) -> list[KerasTensor]:
    leaves = flatten(structure)
    if not leaves:
        raise TypeError(f"keras.Model: {what} is empty")
    for leaf in leaves:
        if not isinstance(leaf, KerasTensor):
            raise TypeError(f"keras.Model: {what} must be KerasTensors (keras.Input(...) and the results "
                            f"of layers called on them), got a {type(leaf).__name__}")
    return leaves


def _nodes_between(inputs: list[KerasTensor], outputs: list[KerasTensor]) -> list[Node]:
    """The nodes the outputs need, in calling order; raises when one needs an Input not given."""
    given = {id(t) for t in inputs}
    needed: dict[int, Node] = {}
    stack = list(outputs)
    while stack:
        tensor = stack.pop()
        if id(tensor) in given:
            continue
        if tensor.node is None:
            raise ValueError(
                f"keras.Model: graph disconnected: the outputs depend on {tensor!r}, a keras.Input that is "
                f"not among the model's inputs {inputs}; list it in inputs=[...], or build the "
                "outputs from the given inputs")
        if id(tensor.node) not in needed:
            needed[id(tensor.node)] = tensor.node
            stack.extend(tensor.node.input_tensors())
    # Nodes are numbered as they were created (their inputs existed before them).
    return sorted(needed.values(), key=lambda node: node.serial)


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).lower()


def layer_names(layers: list[Module], taken: Any = ()) -> dict[int, str]:
    """Keras's layer names, unique in one model: the layer's own ``name`` when it has one (a
    nested model's), else ``dense``, ``dense_1``, ``conv2d``...; a name already used gets ``_1``...

    Args:
        layers: The layers in order.
        taken: Names that must not be used (attributes of the model).
    """
    names: dict[int, str] = {}
    used = set(taken)
    for layer in layers:
        own = getattr(layer, "name", None)
        base = own if isinstance(own, str) and own and "." not in own else _snake_case(type(layer).__name__)
        name, count = base, 0
        while name in used:
            count += 1
            name = f"{base}_{count}"
        used.add(name)
        names[id(layer)] = name
    return names


def flatten_like(structure: Any, data: Any, what: str) -> list[Any]:
    """The values of ``data`` for each KerasTensor of ``structure``, in order.

    ``data`` is shaped as ``structure``: a list for a list of inputs, a dict with the same keys
    for a dict; one value stands for a structure of one tensor (``[x]`` or ``x``).

    Raises:
        TypeError: a dict of inputs or outputs given something else.
        ValueError: ``data`` is not shaped as ``structure`` (the message says what is expected).
    """
    if isinstance(structure, KerasTensor):
        return [data]
    leaves = flatten(structure)
    if len(leaves) == 1 and not isinstance(data, (list, tuple, dict)):
        return [data]
    if isinstance(structure, dict):
        if not isinstance(data, dict):
            raise TypeError(f"{what}: the model takes a dict with keys {list(structure)}, got a "
                             f"{type(data).__name__}")
        missing = [key for key in structure if key not in data]
        if missing:
            raise ValueError(f"{what}: the dict lacks the key(s) {missing} (the model's keys: {list(structure)})")
        return [v for key in structure for v in flatten_like(structure[key], data[key], what)]
    if not isinstance(data, (list, tuple)) or len(data) != len(structure):
        got = f"{len(data)} item(s)" if isinstance(data, (list, tuple)) else f"a {type(data).__name__}"
        raise ValueError(f"{what}: the model has {len(structure)} of them; pass a list of {len(structure)} "
                         f"arrays (in the order of the model's list), got {got}")
    return [v for s, d in zip(structure, data) for v in flatten_like(s, d, what)]
