"""``keras.Model``: Keras's functional API (and its subclassing API) over ``nurinet.training.Model``.

Functional: ``keras.Model(inputs, outputs)`` takes the KerasTensors of ``keras.Input`` and of
layers called on them (``nurinet/keras/symbolic.py``); its ``forward`` replays the recorded
layer calls in order (``nurinet/keras/graph.py``). Each layer is registered once, under Keras's
name (``dense``, ``dense_1``...), so a layer called twice shares its weights and the
``state_dict`` keys read ``dense.kernel``. Inputs and outputs may be lists or dicts:
``fit([x1, x2], [y1, y2])``, ``compile(loss=[...], loss_weights=[...])`` (or dicts keyed by
output name), and ``predict`` returns one array per output (``nurinet/keras/multi_io.py``).
``save`` stores the layers' configs and the graph's edges, and ``load_model`` rebuilds it.

Subclassing: ``class Net(keras.Model)`` with layers set in ``__init__`` and a ``call(inputs)``
method; the layers are built on the first batch that ``fit``/``evaluate``/``predict`` sees
(``compile`` waits for it), or by ``model.build(input_shape)``. Such a model has no graph to
store: ``save_weights`` / ``load_weights`` keep its weights.

As Keras's, ``evaluate`` returns a list ``[loss, *metrics]`` by default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.backend import to_numpy
from nurinet.keras import optimizers
from nurinet.keras.graph import Graph, flatten_like, graph_from_config, layer_names
from nurinet.keras.layers import Layer
from nurinet.keras.losses import compile_arguments
from nurinet.keras.multi_io import MultiOutputLoss, StructuredBatches, split_structured
from nurinet.keras.output_metrics import OutputMetrics
from nurinet.keras.output_settings import output_names, per_output, resolve_loss
from nurinet.keras.symbolic import KerasTensor, SymbolicCall, flatten, map_structure
from nurinet.training.fit_options import sample_count
from nurinet.training.model import Model as TrainingModel

__all__ = ["Model"]


class Model(SymbolicCall, TrainingModel):
    """Keras's ``Model``: a functional graph from ``inputs`` to ``outputs``, or a subclass with ``call``.

    Args:
        inputs: ``keras.Input`` tensors: one, a list, or a dict of them.
        outputs: KerasTensors computed from ``inputs``: one, a list, or a dict of them.
        name: The model's name (``summary`` shows it).
        layers: The layers (how a saved model is rebuilt; with ``graph``).
        graph: The graph's edges, as ``get_config`` gives them (how a saved model is rebuilt).

    Raises:
        TypeError: only one of ``inputs`` and ``outputs``, or values that are not KerasTensors.
        ValueError: the outputs depend on a ``keras.Input`` that is not among ``inputs``.
    """

    def __init__(self, inputs: Any = None, outputs: Any = None, name: str | None = None, *,
                 layers: Sequence[Any] | None = None, graph: dict[str, Any] | None = None) -> None:
        TrainingModel.__init__(self)
        self.name = name or ("functional" if inputs is not None or graph is not None else
                             layer_names([self])[id(self)])
        self._graph: Graph | None = None
        self._layer_names: dict[int, str] = {}
        self._pending_compile: tuple[tuple, dict] | None = None
        self._output_metrics: OutputMetrics | None = None
        if graph is not None:
            named = dict(zip(graph["layer_names"], layers or ()))
            inputs, outputs = graph_from_config(graph, named)
        if inputs is None and outputs is None:
            return  # the subclassing API: the subclass sets its layers and defines call
        if inputs is None or outputs is None:
            raise TypeError("keras.Model: pass both inputs and outputs (the functional API), or "
                            "neither (a subclass defining call)")
        self._graph = Graph(inputs, outputs)
        self._register_layers(graph["layer_names"] if graph is not None else None)

    def _register_layers(self, names: list[str] | None) -> None:
        layers = self._graph.layers  # type: ignore[union-attr]
        if names is None:
            self._layer_names = layer_names(layers, taken=set(dir(self)))
        else:
            self._layer_names = {id(layer): name for layer, name in zip(layers, names)}
        for layer in layers:
            self.add_module(self._layer_names[id(layer)], layer)

    # ----- what Keras users look up ---------------------------------------------------------------
    @property
    def layers(self) -> list[Any]:
        """The layers, each once, in calling order (Keras lists its InputLayers too; these do not)."""
        if self._graph is not None:
            return self._graph.layers
        return list(self.children())

    @property
    def inputs(self) -> list[KerasTensor]:
        return self._require_graph("inputs").input_tensors

    @property
    def outputs(self) -> list[KerasTensor]:
        return self._require_graph("outputs").output_tensors

    @property
    def input_shape(self) -> Any:
        return map_structure(lambda t: t.shape, self._require_graph("input_shape").inputs)

    @property
    def output_shape(self) -> Any:
        return map_structure(lambda t: t.shape, self._require_graph("output_shape").outputs)

    def get_layer(self, name: str) -> Any:
        """The layer called ``name`` (``model.get_layer("dense_1")``)."""
        for layer in self.layers:
            if self._layer_names.get(id(layer)) == name:
                return layer
        raise ValueError(f"{self.name}: no layer named {name!r}; the layers: {list(self._layer_names.values())}")

    def _require_graph(self, what: str) -> Graph:
        if self._graph is None:
            raise AttributeError(f"{self.name}.{what}: a subclassed keras.Model has no symbolic inputs "
                                 "and outputs (only a functional one, keras.Model(inputs, outputs), has)")
        return self._graph

    # ----- forward -------------------------------------------------------------------------------
    def forward(self, *args: Any) -> Any:
        if self._graph is None:
            call = getattr(self, "call", None)
            if call is None:
                raise NotImplementedError(f"{type(self).__name__}: a keras.Model is either functional "
                                          "(keras.Model(inputs, outputs)) or a subclass defining call(inputs)")
            return call(*args, **self._training_argument(call))
        return self._graph.run(self._input_values(args))

    def _training_argument(self, call: Callable[..., Any]) -> dict[str, bool]:
        """``{"training": self.training}`` for a ``call(inputs, training=...)``, as Keras passes it."""
        takes = self.__dict__.get("_call_takes_training")
        if takes is None:
            takes = "training" in inspect.signature(call).parameters
            self.__dict__["_call_takes_training"] = takes
        return {"training": self.training} if takes else {}

    def _input_values(self, args: tuple[Any, ...]) -> list[Tensor]:
        graph = self._graph
        data = self._named_data(args[0] if len(args) == 1 else list(args), "inputs")
        if isinstance(graph.inputs, dict) and isinstance(data, (list, tuple)):
            data = dict(zip(graph.inputs, data))  # positional inputs of a dict of them, in its order
        values = flatten_like(graph.inputs, data, f"{self.name}: the inputs")  # type: ignore[union-attr]
        return [_checked_input(self.name, i, t, as_tensor(v))
                for i, (t, v) in enumerate(zip(graph.input_tensors, values))]  # type: ignore[union-attr]

    # ----- saving --------------------------------------------------------------------------------
    def save(self, path: Any, include_optimizer: bool = True) -> None:
        """``nurinet.training.Model.save``: the layers, the graph, the compile settings and the
        optimizer's state; ``keras.models.load_model`` (``nurinet.training.load_model``) rebuilds it."""
        if self._graph is None:
            raise ValueError(self._no_graph_message())
        super().save(path, include_optimizer=include_optimizer)

    def _no_graph_message(self) -> str:
        return (f"{type(self).__name__} is a subclassed keras.Model: its call() is code, which a file does not "
                "store. Save its weights with model.save_weights(path), rebuild the model in code, build it "
                "(model.build(input_shape) or one batch) and call model.load_weights(path)")

    def get_config(self) -> dict[str, Any]:
        """The layers and the graph's edges (what ``save`` stores and ``load_model`` rebuilds from)."""
        if self._graph is None:
            raise ValueError(self._no_graph_message())
        layers = self._graph.layers
        graph = self._graph.get_config(self._layer_names)
        graph["layer_names"] = [self._layer_names[id(layer)] for layer in layers]
        return {"name": self.name, "layers": layers, "graph": graph}

    # ----- Keras's summary, compile and loops ------------------------------------------------------
    def summary(self, input_shape: Any = None, print_fn: Callable[[str], Any] | None = None,
                **kwargs: Any) -> None:
        """Keras's ``summary()``: the layers, their output shapes and parameter counts."""
        if input_shape is None:
            if self._graph is None:
                raise ValueError(f"{self.name}.summary: a subclassed model needs summary(input_shape) "
                                 "(the shape of one sample)")
            shapes = [t.sample_shape for t in self._graph.input_tensors]
            input_shape = shapes[0] if len(shapes) == 1 else shapes
        (print_fn or print)(f'Model: "{self.name}"')
        super().summary(input_shape, print_fn=print_fn, **kwargs)

    def compile(self, optimizer: Any = "adam", loss: Any = None, metrics: Sequence[Any] = (),
                loss_weights: Any = None, from_logits: bool | None = None, **kwargs: Any) -> None:
        """``nurinet.training.Model.compile`` with Keras's loss objects, and per output:
        ``loss`` and ``loss_weights`` as one value, a list, or a dict keyed by output name.
        A subclassed model not built yet compiles on the first batch that ``fit`` sees. An optimizer
        name means Keras's optimizer with Keras's defaults (``"rmsprop"``: learning rate 1e-3)."""
        optimizer = optimizers.by_keras_name(optimizer)
        if self._graph is None and self._has_unbuilt_layers():
            self._pending_compile = ((optimizer, loss, metrics, loss_weights, from_logits), kwargs)
            return
        self._output_metrics = None
        if self._several_outputs():
            loss = self._multi_output_loss(loss, loss_weights, metrics, from_logits)
            from_logits, metrics = None, ()
        elif loss_weights is not None:
            raise ValueError(f"{self.name}.compile: loss_weights goes with several outputs; this model has one")
        else:
            loss, from_logits = compile_arguments(loss, from_logits)
        super().compile(optimizer, loss, metrics, from_logits, **kwargs)

    def _multi_output_loss(self, loss: Any, loss_weights: Any, metrics: Any,
                           from_logits: bool | None) -> MultiOutputLoss:
        names = output_names(self._graph.outputs, self._layer_names)  # type: ignore[union-attr]
        losses = [resolve_loss(item, from_logits) for item in per_output(loss, names, "loss", None)]
        weights = [float(w) for w in per_output(loss_weights, names, "loss_weights", 1.0)]
        if metrics:
            self._output_metrics = OutputMetrics(metrics, names, losses, from_logits)
        return MultiOutputLoss(self._graph.outputs, losses, weights)  # type: ignore[union-attr]

    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: int | str = "auto", callbacks: Sequence[Any] = (), validation_split: float = 0.0,
            validation_data: Any = None, shuffle: bool = True, initial_epoch: int = 0, generator: Any = None,
            **kwargs: Any) -> Any:
        """``nurinet.training.Model.fit``; inputs and targets as lists or dicts for several of them."""
        self._build_from(x)
        if self._structured(x):
            if kwargs.get("sample_weight") is not None or kwargs.get("class_weight") is not None:
                raise ValueError(f"{self.name}.fit: sample_weight and class_weight are not supported yet for "
                                 "a model with several inputs or outputs")
            x, y = self._named_data(x, "inputs"), self._named_data(y, "outputs")
            if validation_split and validation_data is None:
                x, y, validation_data = split_structured(x, y, self._graph.inputs, self._graph.outputs,
                                                         validation_split)
            if isinstance(validation_data, (tuple, list)):
                vx, vy = _pair(validation_data)
                validation_data = self._batches(self._named_data(vx, "inputs"), self._named_data(vy, "outputs"),
                                                batch_size or 32)
            x, y, validation_split = self._batches(x, y, batch_size or 32, shuffle, generator), None, 0.0
        return super().fit(x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                           shuffle, initial_epoch, generator, **kwargs)

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int = 32, verbose: int = 0,
                 callbacks: Sequence[Any] = (), return_dict: bool = False) -> Any:
        """``nurinet.training.Model.evaluate``, but a list ``[loss, *metrics]`` by default, as Keras's."""
        self._build_from(x)
        if self._structured(x):
            x, y = self._batches(self._named_data(x, "inputs"), self._named_data(y, "outputs"), batch_size), None
        return super().evaluate(x, y, batch_size=batch_size, verbose=verbose, callbacks=callbacks,
                                return_dict=return_dict)

    def predict(self, x: Any, batch_size: int = 32, callbacks: Sequence[Any] = (), **kwargs: Any) -> Any:
        """The outputs for ``x``: one array, or a list/dict of arrays shaped as the model's outputs."""
        self._build_from(x)
        if not self._structured(x):
            return super().predict(x, batch_size, callbacks, **kwargs)
        outputs = self._graph.outputs  # type: ignore[union-attr]
        parts = []
        with self._eval_mode(), no_grad():
            for (batch,) in self._batches(self._named_data(x, "inputs"), None, batch_size):
                parts.append(flatten_like(outputs, self(batch), "the model's outputs"))
        arrays = iter([np.concatenate([to_numpy(p[i].array) for p in parts]) for i in range(len(parts[0]))])
        return map_structure(lambda _: next(arrays), outputs)

    # ----- helpers of the loops ----------------------------------------------------------------------
    def _several_outputs(self) -> bool:
        return self._graph is not None and not isinstance(self._graph.outputs, KerasTensor)

    def _structured(self, x: Any) -> bool:
        """Whether the data goes through StructuredBatches: a model with a list or dict of inputs or
        outputs, given arrays (a loader of batches is used as it is)."""
        if self._graph is None:
            return False
        if isinstance(self._graph.inputs, KerasTensor) and not self._several_outputs():
            return isinstance(x, dict)  # one input given by name
        return isinstance(x, (list, tuple, dict, np.ndarray, Tensor))

    def _named_data(self, data: Any, side: str) -> Any:
        """``data`` keyed by name (the ``keras.Input`` names, or the output layers' names) shaped as
        the model's list of inputs or outputs (a dict of them takes the dict as it is)."""
        graph = self._graph
        structure = graph.inputs if side == "inputs" else graph.outputs  # type: ignore[union-attr]
        if not isinstance(data, dict) or isinstance(structure, dict):
            return data
        if side == "inputs":
            names = [t.name for t in graph.input_tensors]  # type: ignore[union-attr]
        else:
            names = output_names(structure, self._layer_names)
        if sorted(map(str, data)) != sorted(map(str, names)):
            raise ValueError(f"{self.name}: the {side} are given by the names {sorted(data)}, but the model's "
                             f"{side} are named {names} (keras.Input(name=...), or the output layer's name=...)")
        values = iter([data[name] for name in names])
        return map_structure(lambda _: next(values), structure)

    def _batches(self, x: Any, y: Any, batch_size: int, shuffle: bool = False,
                 generator: Any = None) -> StructuredBatches:
        graph = self._graph
        return StructuredBatches(graph.inputs, graph.outputs, x, y, batch_size, shuffle, generator)  # type: ignore

    def _update_metrics(self, loss: Tensor, prediction: Any, y: Any) -> dict[str, float]:
        if not self._several_outputs():
            return super()._update_metrics(loss, prediction, y)
        count = sample_count(flatten(y)[0])
        self.loss_tracker.update_state(loss.item(), count)
        if getattr(self, "_last_penalty", None) is not None:
            self.regularization_tracker.update_state(self._last_penalty, count)
        if self._output_metrics is not None:
            outputs = self._graph.outputs  # type: ignore[union-attr]
            self._output_metrics.update(flatten_like(outputs, prediction, "the model's outputs"),
                                        flatten_like(outputs, y, "y (the model's outputs)"))
        return self._logs()

    def _logs(self, prefix: str = "") -> dict[str, float]:
        logs = super()._logs(prefix)
        if self.__dict__.get("_output_metrics") is not None:
            logs.update(self._output_metrics.logs(prefix))
        return logs

    def _reset_metrics(self) -> None:
        super()._reset_metrics()
        if self.__dict__.get("_output_metrics") is not None:
            self._output_metrics.reset()

    # ----- the subclassing API's lazy build -----------------------------------------------------------
    def _has_unbuilt_layers(self) -> bool:
        return any(isinstance(m, Layer) and not m.built for m in self.modules()) or not list(self.parameters())

    def build(self, input_shape: Any) -> None:
        """Build a subclassed model's layers for inputs of ``input_shape`` (batch dim first, may be None)."""
        shapes = [input_shape] if all(d is None or isinstance(d, int) for d in input_shape) else input_shape
        zeros = [np.zeros((1, *tuple(shape)[1:]), np.float32) for shape in shapes]
        self._run_once(zeros[0] if len(zeros) == 1 else zeros)

    def _run_once(self, x: Any) -> None:
        with self._eval_mode(), no_grad():
            self(x)
        if self._pending_compile is not None:
            args, kwargs = self._pending_compile
            self._pending_compile = None
            self.compile(*args, **kwargs)

    def _build_from(self, x: Any) -> None:
        """Build a subclassed model on the first sample of ``x``, then run a waiting compile."""
        if self._pending_compile is not None:
            self._run_once(_first_sample(x))


def _checked_input(model: str, index: int, tensor: KerasTensor, value: Tensor) -> Tensor:
    shape = tuple(value.shape)
    if len(shape) != tensor.ndim or any(d is not None and d != s for d, s in zip(tensor.shape, shape)):
        name = f" {tensor.name!r}" if tensor.name else ""
        raise ValueError(f"{model}: input {index}{name} expects shape {tensor.shape}, got {shape}")
    if value.array.dtype != tensor.dtype and value.array.dtype.kind == tensor.dtype.kind == "f" \
            and not value.requires_grad:
        value = Tensor(value.array.astype(tensor.dtype))  # Keras casts inputs to the Input's dtype
    return value


def _pair(data: tuple | list) -> tuple[Any, Any]:
    if len(data) != 2:
        raise ValueError(f"fit: validation_data of a model with several inputs or outputs is (x_val, y_val), "
                         f"got {len(data)} items")
    return data[0], data[1]


def _first_sample(x: Any) -> Any:
    if isinstance(x, (np.ndarray, Tensor, list, tuple, dict)):
        return map_structure(lambda a: a[:1], x)
    if x is None:
        raise ValueError("the subclassed model is not built: call model.build(input_shape) or fit it on data")
    batch = next(iter(x))  # a loader of (x, y) batches
    return batch[0] if isinstance(batch, (tuple, list)) else batch
