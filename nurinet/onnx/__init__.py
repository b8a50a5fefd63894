"""Export a trained model to ONNX, for inference with onnxruntime and other ONNX runtimes.

``export(model, example_input, "model.onnx")`` walks the module tree and writes one ONNX node
(or a few) per layer, with the layer's parameters as initializers. The model is exported in
evaluation mode: dropout is the identity and batch normalization uses its running statistics.
The dims of the example input are fixed in the graph, except the batch dim when ``dynamic_batch``
is true (dim 0, or dim 1 for a model whose recurrent layers are ``batch_first=False``) and, in a
recurrent model whose layers all take any length, the sequence dim.

A model whose class has no exporter (an ``nn.Module`` subclass with its own ``forward``) is exported
by tracing instead (:mod:`nurinet.onnx.tracing`): it runs once with the autograd graph recorded and
each recorded op is written by its emitter (:mod:`nurinet.onnx.emitters`, ``supported_ops()``).

Supported layers are those with an exporter in the registry (``supported_layers()`` lists them);
add one for your own layer with :func:`register_exporter`. An exporter receives the export
context, the module and its input value(s), emits ONNX nodes and returns the output name(s).

Needs the optional packages ``onnx`` (and ``onnxruntime`` to run the result):
``pip install 'nurinet[onnx]'``. They are imported only when ``export`` runs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet import nn
from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Tensor
from nurinet.functional import activation_registry
from nurinet.functional.padding import NUMPY_PAD_MODES
from nurinet.io.atomic import atomic_write_bytes
from nurinet.onnx import tracing
from nurinet.onnx.emitters import register_op_emitter, supported_ops
from nurinet.training.model import Model

__all__ = ["UnsupportedLayerError", "export", "register_exporter", "register_op_emitter", "supported_layers",
           "supported_ops"]

MIN_OPSET = 17  # LayerNormalization first appears in opset 17


class UnsupportedLayerError(TypeError):
    """A module of the model has no ONNX exporter."""


@dataclass
class Value:
    """A tensor of the ONNX graph: its name and the value it takes for the example input."""

    name: str
    example: np.ndarray

    @property
    def dtype(self) -> np.dtype:
        return self.example.dtype


Exporter = Callable[["ExportContext", Any, Value], Any]
_EXPORTERS: dict[type, Exporter] = {}


def register_exporter(module_class: type) -> Callable[[Exporter], Exporter]:
    """Register ``fn(ctx, module, x)`` as the ONNX exporter of ``module_class`` (exact type, not subclasses).

    ``x`` is a :class:`Value`; the exporter adds nodes with ``ctx.node(...)`` and returns the name
    of the output (a tuple of names, nested as the module's outputs, for several). A container
    exports a child with ``ctx.module(child, x, name)``, which returns the child's output Value.

    Example::

        @register_exporter(MyScale)
        def _(ctx, module, x):
            return ctx.node("Mul", [x.name, ctx.constant(module.factor, x.dtype)])
    """
    def decorate(fn: Exporter) -> Exporter:
        _EXPORTERS[module_class] = fn
        return fn
    return decorate


def supported_layers() -> list[str]:
    """The names of the module classes ``export`` knows, sorted."""
    return sorted({cls.__name__ for cls in _EXPORTERS})


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as error:
        raise ImportError("nurinet.onnx.export needs the onnx package: pip install 'nurinet[onnx]' "
                          "(or pip install onnx onnxruntime)") from error
    return onnx


class ExportContext:
    """The graph being built: nodes, initializers and fresh names."""

    def __init__(self, onnx: Any, opset: int) -> None:
        self.onnx, self.opset = onnx, opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._used: set[str] = set()
        self._scope: list[str] = []

    # ----- names, constants and nodes --------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        """A name not used before, built from the current module path and ``hint``."""
        base = ".".join([*self._scope, hint]) if self._scope else hint
        name, count = base, 1
        while name in self._used:
            name, count = f"{base}_{count}", count + 1
        self._used.add(name)
        return name

    def constant(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        """An initializer holding ``value`` (converted to ``dtype`` if given); returns its name."""
        array = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        name = self.fresh(hint)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: Sequence[str], outputs: int = 1, **attributes: Any) -> Any:
        """Add an ``op`` node; returns its output name, or a list of ``outputs`` names."""
        names = [self.fresh(op.lower()) for _ in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), names, name=self.fresh(op + "_node"),
                                                     **attributes))
        return names[0] if outputs == 1 else names

    def reduce(self, op: str, x: str, axes: Sequence[int], keepdims: bool = True) -> str:
        """A Reduce* node: axes are an attribute before opset 18 and an input from opset 18."""
        if self.opset >= 18:
            return self.node(op, [x, self.constant(list(axes), np.int64, "axes")], keepdims=int(keepdims))
        return self.node(op, [x], axes=list(axes), keepdims=int(keepdims))

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        """Reshape to ``shape`` (0 copies the input's dim, -1 is inferred)."""
        return self.node("Reshape", [x, self.constant(list(shape), np.int64, "shape")])

    # ----- modules -----------------------------------------------------------------------------------
    def module(self, module: Any, x: Any, name: str = "") -> Any:
        """Export ``module`` applied to ``x`` (a Value or a tuple of them); returns its output Value(s)."""
        exporter = _EXPORTERS.get(type(module))
        if exporter is None:
            raise _unsupported(module, ".".join([*self._scope, name]) or "the model")
        examples = _examples(x)
        with no_grad():
            output = module(*examples) if isinstance(x, tuple) else module(examples)
        if name:
            self._scope.append(name)
        try:
            names = exporter(self, module, x)
        finally:
            if name:
                self._scope.pop()
        return _pair_up(names, output)


def _examples(x: Any) -> Any:
    if isinstance(x, tuple):
        return tuple(Tensor(v.example) for v in x)
    return Tensor(x.example)


def _pair_up(names: Any, output: Any) -> Any:
    """Match the exporter's names with the module's outputs: a Value, or nested tuples of Values."""
    if isinstance(output, (tuple, list)):
        if not isinstance(names, (tuple, list)) or len(names) != len(output):
            raise RuntimeError(f"an ONNX exporter returned {names!r} for a module with {len(output)} outputs")
        return tuple(_pair_up(n, o) for n, o in zip(names, output))
    return Value(names, np.asarray(output.numpy() if isinstance(output, Tensor) else output))


def _unsupported(module: Any, where: str) -> UnsupportedLayerError:
    return UnsupportedLayerError(
        f"cannot export {where} ({type(module).__name__}) to ONNX: it has no exporter. Supported layers: "
        f"{', '.join(supported_layers())}. Register one with nurinet.onnx.register_exporter({type(module).__name__})"
    )


# ----- export -------------------------------------------------------------------------------------

def export(model: Any, example_input: Any, path: str | os.PathLike, input_names: Sequence[str] | None = None,
           output_names: Sequence[str] | None = None, dynamic_batch: bool = True, opset: int = 17,
           batch_axis: int | None = None, dynamic_sequence: bool | None = None) -> Any:
    """Write ``model`` as an ONNX file at ``path`` (atomically: the old file stays until the new one is whole).

    Args:
        model: An ``nn.Module`` made of supported layers (see :func:`supported_layers`), or one with
            its own ``forward`` made of nurinet ops (traced; see :func:`supported_ops`). It is
            exported in evaluation mode; its training flags are restored afterwards.
        example_input: An input the model accepts (array or Tensor; integer indices for an
            Embedding). Its dims other than the batch and sequence dims are fixed in the graph.
        path: The ``.onnx`` file to write.
        input_names: Name of the graph input (one; default ``["input"]``).
        output_names: Names of the graph outputs, one per output of the model, nested tuples
            flattened (default ``["output"]``, or ``output_0``, ``output_1``, ... for several).
        dynamic_batch: Make the input's batch dim (and the outputs' dims that follow it) the
            symbolic ``"batch"``.
        opset: ONNX opset version (17 or later).
        batch_axis: The input's batch dim. By default 1 when the model's first recurrent layer
            is ``batch_first=False`` (inputs ``(T, N, ...)``), 0 otherwise.
        dynamic_sequence: For a model with a recurrent layer, make the input's sequence dim (the
            other of dims 0 and 1, by the layer's ``batch_first``) and the outputs' dims that
            follow it the symbolic ``"sequence"``. None (the default) does so when every module
            of the model is a layer whose ONNX nodes take any length (recurrent, Linear,
            Embedding, LayerNorm, activations, Dropout, Identity, Sequential) and the model runs
            with another length; True also for models with exporters of your own (they must not
            build the example's length into the graph); False keeps the length fixed.

    Returns:
        The ``onnx.ModelProto`` written (checked with ``onnx.checker``).

    Raises:
        UnsupportedLayerError: a module has no exporter (the message lists the supported layers).
        NotImplementedError: a traced op has no emitter (the message names it and lists the supported
            ops), or with ``dynamic_batch`` a constant of the traced graph changes with the batch size.
        ImportError: the onnx package is not installed.
        ValueError: ``batch_axis`` is not a dim of the example, or ``dynamic_sequence=True`` for a
            model without a recurrent layer or one that does not run with another length.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"export: model must be an nn.Module, got {type(model).__name__}")
    onnx = _onnx()
    opset = _check_opset(onnx, opset)
    example = _example_array(example_input)
    batch_axis, sequence_axis = _input_layout(model, example, batch_axis, dynamic_sequence)
    input_names = list(input_names) if input_names is not None else ["input"]
    if len(input_names) != 1:
        raise ValueError(f"export: the model takes one input, so give one input name, got {input_names!r}")
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        ctx = ExportContext(onnx, opset)
        ctx._used.add(input_names[0])
        if type(model) in _EXPORTERS:  # a layer or container with an exporter: the module path, as before
            outputs = _flatten(ctx.module(model, Value(input_names[0], example)))
            symbolic: dict[int, str] = {}  # input dim -> its symbolic name
            if dynamic_batch:
                symbolic[batch_axis] = "batch"
            if sequence_axis is not None and _takes_any_length(model, example, sequence_axis, dynamic_sequence):
                symbolic[sequence_axis] = "sequence"
            output_dims = _symbolic_output_dims(model, example, outputs, symbolic)
        else:
            outputs, symbolic, output_dims = _traced(ctx, model, example, input_names[0], dynamic_batch, batch_axis)
    finally:
        for module, training in modes:
            object.__setattr__(module, "training", training)
    output_names = _output_names(output_names, len(outputs))
    proto = _build_model(ctx, example, input_names[0], symbolic, outputs, output_names, output_dims)
    onnx.checker.check_model(proto)
    atomic_write_bytes(path, proto.SerializeToString())
    return proto


def _traced(ctx: ExportContext, model: Any, example: np.ndarray, input_name: str, dynamic_batch: bool,
            batch_axis: int) -> tuple[list[Value], dict[int, str], list[dict[int, str]]]:
    """Export a model with its own forward by tracing it (see :mod:`nurinet.onnx.tracing`).

    Returns:
        The output Values, the input's symbolic dims and, for each output, its symbolic dims.
    """
    trace = tracing.run(model, example, _EXPORTERS)
    twin = None
    if dynamic_batch:
        bigger = np.concatenate([example, np.take(example, [0], axis=batch_axis)], axis=batch_axis)
        twin = tracing.run(model, bigger, _EXPORTERS)
    outputs = tracing.emit_graph(ctx, trace, twin, input_name, Value)
    if twin is None:
        return outputs, {}, [{} for _ in outputs]
    return outputs, {batch_axis: "batch"}, tracing.output_dims(trace, twin)


def _check_opset(onnx: Any, opset: int) -> int:
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"export: opset must be an int from {MIN_OPSET} to {newest} (this onnx's newest), "
                         f"got {opset!r}")
    return opset


def _example_array(example_input: Any) -> np.ndarray:
    array = np.asarray(example_input.numpy() if isinstance(example_input, Tensor) else example_input)
    if array.ndim == 0 or array.dtype.kind not in "fiu":
        raise ValueError(f"export: example_input must be a numeric array with a batch dim, got dtype "
                         f"{array.dtype} and shape {array.shape}")
    return array


def _flatten(values: Any) -> list[Value]:
    if isinstance(values, tuple):
        return [leaf for value in values for leaf in _flatten(value)]
    return [values]


def _output_names(names: Sequence[str] | None, count: int) -> list[str]:
    if names is None:
        return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]
    names = list(names)
    if len(names) != count:
        raise ValueError(f"export: the model has {count} output(s) but output_names has {len(names)}: {names!r}")
    return names


def _input_layout(model: Any, example: np.ndarray, batch_axis: int | None,
                  dynamic_sequence: bool | None) -> tuple[int, int | None]:
    """The input's batch dim and, for a model with a recurrent layer, its sequence dim (else None)."""
    recurrent = next((m for m in model.modules() if isinstance(m, _RECURRENT)), None)
    time_first = recurrent is not None and not recurrent.batch_first
    if batch_axis is None:
        batch_axis = 1 if time_first and example.ndim > 1 else 0
    batch_axis = _check_batch_axis(batch_axis, example)
    sequence_axis = None if recurrent is None else (0 if time_first else 1)
    if sequence_axis is not None and (sequence_axis == batch_axis or sequence_axis >= example.ndim):
        sequence_axis = None
    if dynamic_sequence and sequence_axis is None:
        raise ValueError("export: dynamic_sequence=True needs a model with a recurrent layer (RNN, LSTM, GRU), "
                         f"whose batch_first tells the sequence dim of the input; got an input of shape "
                         f"{example.shape} with batch_axis={batch_axis}")
    return batch_axis, sequence_axis


def _check_batch_axis(batch_axis: Any, example: np.ndarray) -> int:
    ndim = example.ndim
    if isinstance(batch_axis, bool) or not isinstance(batch_axis, (int, np.integer)) or not -ndim <= batch_axis < ndim:
        raise ValueError(f"export: batch_axis must be a dim of the example input, of shape {example.shape}; "
                         f"got {batch_axis!r}")
    return int(batch_axis) % ndim


def _takes_any_length(model: Any, example: np.ndarray, sequence_axis: int, dynamic_sequence: bool | None) -> bool:
    """Whether the sequence dim can be symbolic: asked for, or every layer's nodes take any length."""
    if dynamic_sequence is False:
        return False
    if dynamic_sequence is None and not all(type(m) in _ANY_LENGTH for m in model.modules()):
        return False  # an exporter of another kind may size its nodes by the example's length
    try:
        _grown(model, example, sequence_axis)
    except Exception as error:  # whatever the failure, this model needs the example's length
        if dynamic_sequence:
            raise ValueError(f"export: dynamic_sequence=True, but the model does not run on a sequence one "
                             f"step longer than the example's ({type(error).__name__}: {error})") from error
        return False
    return True


def _grown(model: Any, example: np.ndarray, axis: int) -> list[np.ndarray]:
    """The model's outputs for the example grown by one along ``axis`` (its first slice repeated)."""
    bigger = np.concatenate([example, np.take(example, [0], axis=axis)], axis=axis)
    with no_grad():
        return _flatten_arrays(model(Tensor(bigger)))


def _symbolic_output_dims(model: Any, example: np.ndarray, outputs: list[Value],
                          symbolic: dict[int, str]) -> list[dict[int, str]]:
    """For each output, its dims that follow a symbolic input dim, found by growing that dim by one."""
    dims: list[dict[int, str]] = [{} for _ in outputs]
    for input_axis, name in symbolic.items():
        for found, value, other in zip(dims, outputs, _grown(model, example, input_axis)):
            changed = [i for i, (a, b) in enumerate(zip(value.example.shape, other.shape)) if a != b]
            if len(changed) == 1:
                found.setdefault(changed[0], name)
    return dims


def _flatten_arrays(output: Any) -> list[np.ndarray]:
    if isinstance(output, (tuple, list)):
        return [leaf for item in output for leaf in _flatten_arrays(item)]
    return [np.asarray(output.numpy() if isinstance(output, Tensor) else output)]


def _build_model(ctx: ExportContext, example: np.ndarray, input_name: str, input_dims: dict[int, str],
                 outputs: list[Value], output_names: list[str], output_dims: list[dict[int, str]]) -> Any:
    helper = ctx.onnx.helper

    def info(name: str, array: np.ndarray, symbolic: dict[int, str]) -> Any:
        dims: list[Any] = [symbolic.get(axis, size) for axis, size in enumerate(array.shape)]
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(array.dtype), dims)

    graph_outputs = []
    for value, name, symbolic in zip(outputs, output_names, output_dims):
        # Rename through an Identity so the graph output has the requested name.
        ctx.nodes.append(helper.make_node("Identity", [value.name], [name], name=ctx.fresh("output_node")))
        graph_outputs.append(info(name, value.example, symbolic))
    graph = helper.make_graph(ctx.nodes, "nurinet", [info(input_name, example, input_dims)], graph_outputs,
                              initializer=ctx.initializers)
    opset_ids = [helper.make_opsetid("", ctx.opset)]
    proto = helper.make_model(graph, opset_imports=opset_ids, producer_name="nurinet")
    proto.ir_version = helper.find_min_ir_version_for(opset_ids)
    return proto


# ----- elementwise activations ---------------------------------------------------------------------

def _scalar(ctx: ExportContext, value: float, dtype: np.dtype) -> str:
    return ctx.constant(np.asarray(value, dtype=dtype), hint="scalar")


def _softplus(ctx: ExportContext, x: Value, beta: float = 1.0, threshold: float = 20.0) -> str:
    """``log(1 + exp(beta x)) / beta``, and ``x`` where ``beta x > threshold`` (PyTorch's rule)."""
    scaled = x.name if beta == 1.0 else ctx.node("Mul", [x.name, _scalar(ctx, beta, x.dtype)])
    soft = ctx.node("Softplus", [scaled])
    if beta != 1.0:
        soft = ctx.node("Div", [soft, _scalar(ctx, beta, x.dtype)])
    linear = ctx.node("Greater", [scaled, _scalar(ctx, threshold, x.dtype)])
    return ctx.node("Where", [linear, x.name, soft])


def _gelu(ctx: ExportContext, x: Value, approximate: str = "none") -> str:
    dtype = x.dtype
    if approximate == "tanh":
        cube = ctx.node("Mul", [x.name, ctx.node("Mul", [x.name, x.name])])
        inner = ctx.node("Add", [x.name, ctx.node("Mul", [cube, _scalar(ctx, 0.044715, dtype)])])
        t = ctx.node("Tanh", [ctx.node("Mul", [inner, _scalar(ctx, math.sqrt(2.0 / math.pi), dtype)])])
    else:
        t = ctx.node("Erf", [ctx.node("Mul", [x.name, _scalar(ctx, 1.0 / math.sqrt(2.0), dtype)])])
    half_x = ctx.node("Mul", [x.name, _scalar(ctx, 0.5, dtype)])
    return ctx.node("Mul", [half_x, ctx.node("Add", [t, _scalar(ctx, 1.0, dtype)])])


def _rational_tanh(ctx: ExportContext, x: Value) -> str:
    """Deeplearning4j's ``A * y (1 + |y| + C|y|^3) / (1 + |y| + y^2 + C y^4)`` with ``y = B x``."""
    a_, b_, c_ = (float(v) for v in (F.activation.RationalTanh.A, F.activation.RationalTanh.B,
                                     F.activation.RationalTanh.C))
    dtype = x.dtype
    y = ctx.node("Mul", [x.name, _scalar(ctx, b_, dtype)])
    a = ctx.node("Abs", [y])
    a2 = ctx.node("Mul", [a, a])
    one = _scalar(ctx, 1.0, dtype)
    c = _scalar(ctx, c_, dtype)
    num = ctx.node("Add", [ctx.node("Add", [ctx.node("Mul", [ctx.node("Mul", [a, a2]), c]), a]), one])
    den = ctx.node("Add", [ctx.node("Add", [ctx.node("Add", [ctx.node("Mul", [ctx.node("Mul", [a2, a2]), c]),
                                                                a2]), a]), one])
    return ctx.node("Mul", [ctx.node("Div", [ctx.node("Mul", [y, num]), den]), _scalar(ctx, a_, dtype)])


def _clip(ctx: ExportContext, x: Value, low: float, high: float) -> str:
    return ctx.node("Clip", [x.name, _scalar(ctx, low, x.dtype), _scalar(ctx, high, x.dtype)])


def _axis(axis: int, x: Value) -> int:
    return axis % x.example.ndim


# Each takes (ctx, x, **the layer's settings) and returns the output name.
_ACTIVATIONS: dict[str, Callable[..., str]] = {
    "relu": lambda ctx, x: ctx.node("Relu", [x.name]),
    "relu6": lambda ctx, x: _clip(ctx, x, 0.0, 6.0),
    "sigmoid": lambda ctx, x: ctx.node("Sigmoid", [x.name]),
    "tanh": lambda ctx, x: ctx.node("Tanh", [x.name]),
    "leaky_relu": lambda ctx, x, negative_slope=0.01: ctx.node("LeakyRelu", [x.name], alpha=float(negative_slope)),
    "elu": lambda ctx, x, alpha=1.0: ctx.node("Elu", [x.name], alpha=float(alpha)),
    "selu": lambda ctx, x: ctx.node("Selu", [x.name], alpha=float(F.activation.SELU_ALPHA),
                                    gamma=float(F.activation.SELU_SCALE)),
    "celu": lambda ctx, x, alpha=1.0: ctx.node("Celu", [x.name], alpha=float(alpha)),
    "gelu": _gelu,
    "silu": lambda ctx, x: ctx.node("Mul", [x.name, ctx.node("Sigmoid", [x.name])]),
    "mish": lambda ctx, x: ctx.node("Mul", [x.name, ctx.node("Tanh", [_softplus(ctx, x)])]),
    "softplus": _softplus,
    "softsign": lambda ctx, x: ctx.node("Softsign", [x.name]),
    "hardsigmoid": lambda ctx, x: ctx.node("HardSigmoid", [x.name], alpha=1.0 / 6.0, beta=0.5),
    "hardtanh": lambda ctx, x, min_val=-1.0, max_val=1.0: _clip(ctx, x, min_val, max_val),
    "rational_tanh": _rational_tanh,
    "cube": lambda ctx, x: ctx.node("Mul", [x.name, ctx.node("Mul", [x.name, x.name])]),
    "identity": lambda ctx, x: ctx.node("Identity", [x.name]),
    "softmax": lambda ctx, x, axis=-1: ctx.node("Softmax", [x.name], axis=_axis(axis, x)),
    "log_softmax": lambda ctx, x, axis=-1: ctx.node("LogSoftmax", [x.name], axis=_axis(axis, x)),
}

# The functions of nurinet.functional (as Linear(activation=...) and Activation(name) hold them).
_FUNCTIONS: dict[Any, str] = {
    F.relu: "relu", F.relu6: "relu6", F.sigmoid: "sigmoid", F.tanh: "tanh", F.leaky_relu: "leaky_relu",
    F.elu: "elu", F.selu: "selu", F.celu: "celu", F.gelu: "gelu", F.silu: "silu", F.mish: "mish",
    F.softplus: "softplus", F.softsign: "softsign", F.hardsigmoid: "hardsigmoid", F.hardtanh: "hardtanh",
    F.rational_tanh: "rational_tanh", F.cube: "cube", F.identity: "identity", F.softmax: "softmax",
    F.log_softmax: "log_softmax",
}


def _export_function(ctx: ExportContext, fn: Any, x: Value, where: str) -> str:
    if fn is activation_registry._gelu_tanh:
        return _gelu(ctx, x, "tanh")
    key = _FUNCTIONS.get(fn)
    if key is None:
        raise UnsupportedLayerError(
            f"cannot export the activation function {getattr(fn, '__name__', fn)!r} of {where} to ONNX; "
            f"supported functions: {', '.join(sorted(_ACTIVATIONS))}. Use an activation module instead, or "
            "register an exporter for your own module with nurinet.onnx.register_exporter"
        )
    return _ACTIVATIONS[key](ctx, x)


def _activation_layer(key: str, settings: Callable[[Any], dict] = lambda m: {}) -> Exporter:
    return lambda ctx, module, x: _ACTIVATIONS[key](ctx, x, **settings(module))


_ELEMENTWISE_LAYERS: list[type] = []
for _cls, _key, _settings in [
    (nn.ReLU, "relu", None), (nn.ReLU6, "relu6", None), (nn.Sigmoid, "sigmoid", None), (nn.Tanh, "tanh", None),
    (nn.LeakyReLU, "leaky_relu", lambda m: {"negative_slope": m.negative_slope}),
    (nn.ELU, "elu", lambda m: {"alpha": m.alpha}), (nn.SELU, "selu", None),
    (nn.CELU, "celu", lambda m: {"alpha": m.alpha}),
    (nn.GELU, "gelu", lambda m: {"approximate": m.approximate}), (nn.SiLU, "silu", None), (nn.Mish, "mish", None),
    (nn.Softplus, "softplus", lambda m: {"beta": m.beta, "threshold": m.threshold}),
    (nn.Softsign, "softsign", None), (nn.Hardsigmoid, "hardsigmoid", None),
    (nn.Hardtanh, "hardtanh", lambda m: {"min_val": m.min_val, "max_val": m.max_val}),
    (nn.RationalTanh, "rational_tanh", None), (nn.Cube, "cube", None),
    (nn.Softmax, "softmax", lambda m: {"axis": m.dim}), (nn.LogSoftmax, "log_softmax", lambda m: {"axis": m.dim}),
    (nn.Identity, "identity", None),
]:
    register_exporter(_cls)(_activation_layer(_key, _settings) if _settings else _activation_layer(_key))
    _ELEMENTWISE_LAYERS.append(_cls)


@register_exporter(nn.RReLU)
def _rrelu(ctx: ExportContext, module: Any, x: Value) -> str:
    # In evaluation mode RReLU is a leaky ReLU with the mean slope.
    return ctx.node("LeakyRelu", [x.name], alpha=(module.lower + module.upper) / 2.0)


@register_exporter(nn.PReLU)
def _prelu(ctx: ExportContext, module: Any, x: Value) -> str:
    slope = module.weight.numpy()
    if slope.size > 1:  # one slope per channel (axis 1): shape it to broadcast over (N, C, *)
        slope = slope.reshape((-1,) + (1,) * (x.example.ndim - 2))
    return ctx.node("PRelu", [x.name, ctx.constant(slope, hint="weight")])


@register_exporter(nn.Activation)
def _activation(ctx: ExportContext, module: Any, x: Value) -> str:
    if module.layer is not None:
        return ctx.module(module.layer, x, "layer").name
    return _export_function(ctx, module.fn, x, f"Activation({module.name!r})")


# ----- containers, shape and linear layers --------------------------------------------------------------

@register_exporter(nn.Sequential)
def _sequential(ctx: ExportContext, module: Any, x: Value) -> str:
    for name, child in module._modules.items():
        x = ctx.module(child, x, name)
    return x.name


def _identity(ctx: ExportContext, module: Any, x: Value) -> str:
    return ctx.node("Identity", [x.name])


for _cls in (nn.Dropout, nn.Dropout2d):
    register_exporter(_cls)(_identity)  # the identity in evaluation mode


@register_exporter(nn.Flatten)
def _flatten_layer(ctx: ExportContext, module: Any, x: Value) -> str:
    ndim = x.example.ndim
    start, end = module.start_dim % ndim, module.end_dim % ndim
    # 0 copies the input's dim: the leading dims (the batch among them) stay whatever size they come in.
    shape = [0] * start + [-1] + list(x.example.shape[end + 1:])
    return ctx.reshape(x.name, shape)


@register_exporter(Model)
def _keras_model(ctx: ExportContext, module: Any, x: Value) -> Any:
    """A ``training.Model(network)`` runs its network (the loss and optimizer are not part of the graph)."""
    if "network" not in module._modules:
        raise UnsupportedLayerError(f"cannot export {type(module).__name__}: a Model without a network "
                                    "has its own forward; register an exporter for it")
    return ctx.module(module.network, x, "network").name


@register_exporter(nn.OutputLayer)  # a Linear with its activation; the loss is not part of the graph
@register_exporter(nn.Linear)
def _linear(ctx: ExportContext, module: Any, x: Value) -> str:
    y = ctx.node("MatMul", [x.name, ctx.constant(module.weight.numpy().T, hint="weight_t")])
    if module.bias is not None:
        y = ctx.node("Add", [y, ctx.constant(module.bias.numpy(), hint="bias")])
    activation = module.activation
    if activation is None:
        return y
    value = Value(y, F.linear(Tensor(x.example), module.weight, module.bias).numpy())
    if isinstance(activation, nn.Module):
        return ctx.module(activation, value, "activation").name
    return _export_function(ctx, activation, value, "Linear(activation=...)")


@register_exporter(nn.Maxout)
def _maxout(ctx: ExportContext, module: Any, x: Value) -> str:
    y = ctx.node("MatMul", [x.name, ctx.constant(module.weight.numpy().T, hint="weight_t")])
    y = ctx.node("Add", [y, ctx.constant(module.bias.numpy(), hint="bias")])
    shape = [0] * (x.example.ndim - 1) + [module.out_features, module.pieces]
    return ctx.reduce("ReduceMax", ctx.reshape(y, shape), [x.example.ndim], keepdims=False)


@register_exporter(nn.Embedding)
def _embedding(ctx: ExportContext, module: Any, x: Value) -> str:
    return ctx.node("Gather", [ctx.constant(module.weight.numpy(), hint="weight"), x.name], axis=0)


# ----- convolution and pooling ----------------------------------------------------------------------------

def _tuple(value: Any, n: int) -> tuple[int, ...]:
    return (int(value),) * n if isinstance(value, (int, np.integer)) else tuple(int(v) for v in value)


def _conv_pads(module: Any) -> list[int]:
    """ONNX pads ``[begin..., end...]``; ``"same"`` puts the odd extra after, as nurinet and PyTorch."""
    n = len(module.kernel_size)
    if module.padding == "valid":
        return [0] * 2 * n
    if module.padding == "same":
        total = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size)]
        return [t // 2 for t in total] + [t - t // 2 for t in total]
    return list(module.padding) * 2


# ONNX Pad's modes are numpy.pad's (reflect, edge, wrap); wrap came in opset 19, the others in 11.
_PAD_WRAP_OPSET = 19


def _conv(ctx: ExportContext, module: Any, x: Value) -> str:
    name, pads = x.name, _conv_pads(module)
    mode = getattr(module, "padding_mode", "zeros")
    if mode != "zeros" and any(pads):
        name, pads = _pad_input(ctx, module, name, pads, mode), [0] * len(pads)
    inputs = [name, ctx.constant(module.weight.numpy(), hint="weight")]
    if module.bias is not None:
        inputs.append(ctx.constant(module.bias.numpy(), hint="bias"))
    return ctx.node("Conv", inputs, kernel_shape=list(module.kernel_size), strides=list(module.stride),
                    pads=pads, dilations=list(module.dilation), group=module.groups)


def _pad_input(ctx: ExportContext, module: Any, name: str, pads: list[int], mode: str) -> str:
    """A Pad node that fills the border as ``padding_mode`` says (the Conv then pads nothing)."""
    onnx_mode = NUMPY_PAD_MODES[mode]
    first_opset = _PAD_WRAP_OPSET if onnx_mode == "wrap" else MIN_OPSET
    if ctx.opset < first_opset:
        raise UnsupportedLayerError(f"cannot export {module!r}: padding_mode={mode!r} needs ONNX opset "
                                    f"{first_opset} or later (Pad mode {onnx_mode!r}); pass opset={first_opset}")
    n = len(pads) // 2
    full = [0, 0, *pads[:n], 0, 0, *pads[n:]]  # no padding of the batch and channel axes
    return ctx.node("Pad", [name, ctx.constant(np.array(full, dtype=np.int64), hint="pads")], mode=onnx_mode)


for _cls in (nn.Conv1d, nn.Conv2d):
    register_exporter(_cls)(_conv)


@register_exporter(nn.ConvTranspose2d)
def _conv_transpose(ctx: ExportContext, module: Any, x: Value) -> str:
    inputs = [x.name, ctx.constant(module.weight.numpy(), hint="weight")]
    if module.bias is not None:
        inputs.append(ctx.constant(module.bias.numpy(), hint="bias"))
    return ctx.node("ConvTranspose", inputs, kernel_shape=list(module.kernel_size), strides=list(module.stride),
                    pads=list(module.padding) * 2, dilations=list(module.dilation), group=module.groups,
                    output_padding=list(module.output_padding))


def _pool_attributes(module: Any, n: int) -> dict[str, Any]:
    kernel = _tuple(module.kernel_size, n)
    return {"kernel_shape": list(kernel), "strides": list(_tuple(module.stride, n)),
            "pads": list(_tuple(module.padding, n)) * 2, "ceil_mode": int(module.ceil_mode)}


def _max_pool(n: int) -> Exporter:
    def export_max_pool(ctx: ExportContext, module: Any, x: Value) -> str:
        if module.return_indices:
            raise UnsupportedLayerError(f"cannot export {module!r} with return_indices=True to ONNX")
        return ctx.node("MaxPool", [x.name], **_pool_attributes(module, n),
                        dilations=list(_tuple(module.dilation, n)))
    return export_max_pool


def _avg_pool(n: int) -> Exporter:
    def export_avg_pool(ctx: ExportContext, module: Any, x: Value) -> str:
        return ctx.node("AveragePool", [x.name], **_pool_attributes(module, n),
                        count_include_pad=int(module.count_include_pad))
    return export_avg_pool


register_exporter(nn.MaxPool2d)(_max_pool(2))
register_exporter(nn.MaxPool1d)(_max_pool(1))
register_exporter(nn.AvgPool2d)(_avg_pool(2))
register_exporter(nn.AvgPool1d)(_avg_pool(1))


def _global_pool(op: str) -> Exporter:
    def export_global_pool(ctx: ExportContext, module: Any, x: Value) -> str:
        y = ctx.node(op, [x.name])
        return y if module.keepdims else ctx.node("Flatten", [y], axis=1)
    return export_global_pool


register_exporter(nn.GlobalAvgPool2d)(_global_pool("GlobalAveragePool"))
register_exporter(nn.GlobalMaxPool2d)(_global_pool("GlobalMaxPool"))


def _adaptive_pool(reduce_op: str, pool_op: str) -> Exporter:
    """Adaptive pooling on the example's (fixed) spatial size: one pooling node when the bins tile
    the input evenly, else one reduction per bin (PyTorch's bins), concatenated."""
    def export_adaptive_pool(ctx: ExportContext, module: Any, x: Value) -> str:
        if getattr(module, "return_indices", False):
            raise UnsupportedLayerError(f"cannot export {module!r} with return_indices=True to ONNX")
        size = tuple(x.example.shape[2:])
        out = _adaptive_output_size(module.output_size, size)
        if all(n % o == 0 for n, o in zip(size, out)):
            kernel = [n // o for n, o in zip(size, out)]
            return ctx.node(pool_op, [x.name], kernel_shape=kernel, strides=kernel)
        rows = []
        for i in range(out[0]):
            h0, h1 = (i * size[0]) // out[0], -((-(i + 1) * size[0]) // out[0])
            cells = []
            for j in range(out[1]):
                w0, w1 = (j * size[1]) // out[1], -((-(j + 1) * size[1]) // out[1])
                window = ctx.node("Slice", [x.name, ctx.constant([h0, w0], np.int64, "starts"),
                                            ctx.constant([h1, w1], np.int64, "ends"),
                                            ctx.constant([2, 3], np.int64, "axes")])
                cells.append(ctx.reduce(reduce_op, window, [2, 3], keepdims=True))
            rows.append(cells[0] if len(cells) == 1 else ctx.node("Concat", cells, axis=3))
        return rows[0] if len(rows) == 1 else ctx.node("Concat", rows, axis=2)
    return export_adaptive_pool


def _adaptive_output_size(output_size: Any, size: tuple[int, ...]) -> tuple[int, int]:
    sizes = (output_size,) * 2 if isinstance(output_size, int) or output_size is None else tuple(output_size)
    return tuple(n if s is None else int(s) for s, n in zip(sizes, size))


register_exporter(nn.AdaptiveAvgPool2d)(_adaptive_pool("ReduceMean", "AveragePool"))
register_exporter(nn.AdaptiveMaxPool2d)(_adaptive_pool("ReduceMax", "MaxPool"))


# ----- normalization -------------------------------------------------------------------------------------

def _batch_norm(ctx: ExportContext, module: Any, x: Value) -> str:
    if not module.track_running_stats:
        raise UnsupportedLayerError(
            f"cannot export {module!r} to ONNX: with track_running_stats=False it normalizes with the "
            "statistics of each batch even in evaluation mode; build it with track_running_stats=True"
        )
    c, dtype = module.num_features, module.running_mean.dtype
    scale = module.weight.numpy() if module.weight is not None else np.ones(c, dtype)
    shift = module.bias.numpy() if module.bias is not None else np.zeros(c, dtype)
    inputs = [x.name] + [ctx.constant(v, hint=hint) for v, hint in [
        (scale, "weight"), (shift, "bias"), (module.running_mean.numpy(), "running_mean"),
        (module.running_var.numpy(), "running_var")]]
    return ctx.node("BatchNormalization", inputs, epsilon=module.eps)


for _cls in (nn.BatchNorm1d, nn.BatchNorm2d):
    register_exporter(_cls)(_batch_norm)


@register_exporter(nn.LayerNorm)
def _layer_norm(ctx: ExportContext, module: Any, x: Value) -> str:
    shape, dtype = module.normalized_shape, x.dtype
    scale = module.weight.numpy() if module.weight is not None else np.ones(shape, dtype)
    inputs = [x.name, ctx.constant(scale, hint="weight")]
    if module.bias is not None:
        inputs.append(ctx.constant(module.bias.numpy(), hint="bias"))
    return ctx.node("LayerNormalization", inputs, axis=-len(shape), epsilon=module.eps)


@register_exporter(nn.GroupNorm)
def _group_norm(ctx: ExportContext, module: Any, x: Value) -> str:
    # InstanceNormalization of (N, groups, rest) normalizes each group; the affine map is per channel.
    dtype, groups = x.dtype, module.num_groups
    grouped = ctx.reshape(x.name, [0, groups, -1])
    ones, zeros = np.ones(groups, dtype), np.zeros(groups, dtype)
    normed = ctx.node("InstanceNormalization", [grouped, ctx.constant(ones, hint="ones"),
                                                ctx.constant(zeros, hint="zeros")], epsilon=module.eps)
    y = ctx.reshape(normed, [0, *x.example.shape[1:]])
    if module.weight is None:
        return y
    per_channel = (-1,) + (1,) * (x.example.ndim - 2)
    y = ctx.node("Mul", [y, ctx.constant(module.weight.numpy().reshape(per_channel), hint="weight")])
    return ctx.node("Add", [y, ctx.constant(module.bias.numpy().reshape(per_channel), hint="bias")])


# ----- recurrent layers ------------------------------------------------------------------------------------

# Row blocks of PyTorch's (and nurinet's) stacked gate weights, in ONNX's order:
# LSTM i, f, g, o -> i, o, f, c(=g); GRU r, z, n -> z, r, h(=n).
_GATE_ORDER = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}


def _reorder(weight: np.ndarray, order: list[int]) -> np.ndarray:
    blocks = np.split(weight, len(order), axis=0)
    return np.concatenate([blocks[i] for i in order], axis=0)


def _recurrent(ctx: ExportContext, module: Any, x: Value) -> Any:
    if x.example.ndim != 3:
        layout = "(N, T, F)" if module.batch_first else "(T, N, F)"
        raise UnsupportedLayerError(f"cannot export {module!r} for an unbatched input of shape {x.example.shape}: "
                                    f"give a batched example {layout}")
    mode = "RNN" if module.mode.startswith("RNN") else module.mode
    hidden, directions, order = module.hidden_size, module.num_directions, _GATE_ORDER[mode]
    seq = ctx.node("Transpose", [x.name], perm=[1, 0, 2]) if module.batch_first else x.name
    finals: list[list[str]] = []
    for layer in range(module.num_layers):
        weights = [module._weights(layer, suffix) for suffix in ("", "_reverse")[:directions]]
        w = np.stack([_reorder(wi.numpy(), order) for wi, _, _, _ in weights])
        r = np.stack([_reorder(wh.numpy(), order) for _, wh, _, _ in weights])
        inputs = [seq, ctx.constant(w, hint=f"W_l{layer}"), ctx.constant(r, hint=f"R_l{layer}")]
        if module.bias:
            b = np.stack([np.concatenate([_reorder(bi.numpy(), order), _reorder(bh.numpy(), order)])
                          for _, _, bi, bh in weights])
            inputs.append(ctx.constant(b, hint=f"B_l{layer}"))
        attributes: dict[str, Any] = {"hidden_size": hidden,
                                      "direction": "bidirectional" if directions == 2 else "forward"}
        if mode == "GRU":
            attributes["linear_before_reset"] = 1  # r multiplies (W_hn h + b_hn), as PyTorch
        if mode == "RNN":
            activation = "Relu" if module.mode == "RNN_RELU" else "Tanh"
            attributes["activations"] = [activation] * directions
        outputs = ctx.node(mode, inputs, 3 if mode == "LSTM" else 2, **attributes)
        # Y is (T, directions, N, H): put the directions next to the features, as nurinet does.
        y = ctx.node("Transpose", [outputs[0]], perm=[0, 2, 1, 3])
        seq = ctx.reshape(y, [0, 0, -1])
        finals.append(outputs[1:])
    output = ctx.node("Transpose", [seq], perm=[1, 0, 2]) if module.batch_first else seq
    states = [ctx.node("Concat", [f[i] for f in finals], axis=0) if len(finals) > 1 else finals[0][i]
              for i in range(len(finals[0]))]
    return (output, tuple(states)) if mode == "LSTM" else (output, states[0])


_RECURRENT = (nn.RNN, nn.LSTM, nn.GRU)
for _cls in _RECURRENT:
    register_exporter(_cls)(_recurrent)

# Layers whose ONNX nodes take any sequence length (none is sized by the example's): a recurrent model
# made of these alone gets a symbolic sequence dim. Pooling, convolutions and models with exporters of
# their own may build the example's length into the graph, so they keep it fixed unless asked.
_ANY_LENGTH: frozenset[type] = frozenset({
    nn.Sequential, nn.Identity, nn.Dropout, nn.Linear, nn.Embedding, nn.LayerNorm, nn.Activation, nn.RReLU,
    nn.PReLU, *_ELEMENTWISE_LAYERS, *_RECURRENT,
})


# ----- reference models ---------------------------------------------------------------------------------

def _features_then_classifier(ctx: ExportContext, module: Any, x: Value) -> str:
    return ctx.module(module.classifier, ctx.module(module.features, x, "features"), "classifier").name


def _register_models() -> None:
    from nurinet.models import LeNet5, MnistCNN, SmallVGG

    for cls in (LeNet5, MnistCNN, SmallVGG):
        register_exporter(cls)(_features_then_classifier)


_register_models()
