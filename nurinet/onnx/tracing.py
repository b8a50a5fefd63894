"""ONNX export by tracing: run the model once with the autograd graph recorded and walk it.

The model runs on the example input (a Tensor that requires a gradient, so every op on it is
recorded); the walk goes from each output's ``creator`` back through ``Function.inputs``:

* the example input is the graph input; Parameters and other creator-less Tensors become
  initializers (a Parameter once, by identity);
* a submodule whose layers all have hand-written exporters (Linear, Conv2d, LSTM, Sequential, ...)
  is exported by its exporter: its calls are recorded and the walk stops at their outputs;
* any other op goes through the emitter of its ``Function`` class (:mod:`nurinet.onnx.emitters`).

For a dynamic batch the model runs a second time on a batch one bigger; the twin ops say which
dims of each shape follow the batch (a Reshape's target gets -1 there), and a constant whose
shape changes with the batch (a mask computed from the input) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nurinet.autograd.grad_mode import enable_grad
from nurinet.autograd.tensor import Parameter, Tensor
from nurinet.onnx.emitters import EMITTERS, Op, supported_ops


@dataclass
class Call:
    """One call of a module exported whole: the module, its input and its output (nested as returned)."""

    module: Any
    name: str
    input: Any
    output: Any


@dataclass
class Trace:
    """One run of the model: its output and the calls of the modules exported whole."""

    input: Tensor
    output: Any
    calls: dict[int, tuple[Call, int]] = field(default_factory=dict)  # id(output leaf) -> (call, leaf index)
    keep: list[Any] = field(default_factory=list)  # keeps the recorded tensors (and their ids) alive


def leaves(output: Any) -> list[Any]:
    """The Tensors of a (nested tuple/list) output, in order."""
    if isinstance(output, (tuple, list)):
        return [leaf for item in output for leaf in leaves(item)]
    return [output]


def exported_whole(module: Any, exporters: dict[type, Any]) -> bool:
    """Whether ``module`` and every module inside it have a hand-written exporter."""
    return all(type(m) in exporters for m in module.modules())


def run(model: Any, example: np.ndarray, exporters: dict[type, Any]) -> Trace:
    """Run ``model`` on ``example`` with the graph recorded, noting the calls of modules exported whole."""
    x = Tensor(example, requires_grad=example.dtype.kind == "f")
    trace = Trace(x, None)
    wrapped = [(name, m) for name, m in model.named_modules()
               if m is not model and "forward" not in m.__dict__ and exported_whole(m, exporters)]
    for name, module in wrapped:
        module.__dict__["forward"] = _recording(trace, module, name, type(module).forward.__get__(module))
    try:
        with enable_grad():
            trace.output = model(x)
    finally:
        for _, module in wrapped:
            module.__dict__.pop("forward", None)
    return trace


def _recording(trace: Trace, module: Any, name: str, forward: Any) -> Any:
    def record(*args: Any, **kwargs: Any) -> Any:
        output = forward(*args, **kwargs)
        extra = [*args[1:], *kwargs.values()]
        if len(args) >= 1 and all(v is None for v in extra):  # else the exporter would miss an argument
            call = Call(module, name, args[0], output)
            for index, leaf in enumerate(leaves(output)):
                if isinstance(leaf, Tensor) and leaf is not args[0]:  # Dropout in eval returns its input
                    trace.calls[id(leaf)] = (call, index)  # an enclosing call, recorded later, wins
            trace.keep.append(call)
        return output
    return record


def _is_input(value: Any, trace: Trace) -> bool:
    if value is trace.input:
        return True
    if isinstance(value, Tensor) and (value.creator is not None or isinstance(value, Parameter)):
        return False
    data = value.array if isinstance(value, Tensor) else np.asarray(value)
    example = trace.input.array
    return data is example or (data.shape == example.shape and data.dtype == example.dtype
                               and np.array_equal(data, example))


def _children(item: Any, trace: Trace) -> list[Any]:
    """What ``item`` (a Tensor or array) is computed from, as the walk sees it."""
    if _is_input(item, trace) or not isinstance(item, Tensor):
        return []
    hit = trace.calls.get(id(item))
    if hit is not None:
        return [hit[0].input]
    if item.creator is None:
        return []
    return list(item.creator.inputs or ())


def order(trace: Trace) -> list[Any]:
    """The Tensors (and arrays) the outputs depend on, each after what it is computed from."""
    seen: set[int] = set()
    ordered: list[Any] = []
    stack: list[tuple[Any, bool]] = [(leaf, False) for leaf in reversed(leaves(trace.output))]
    while stack:
        item, expanded = stack.pop()
        if expanded:
            ordered.append(item)
            continue
        if id(item) in seen:
            continue
        seen.add(id(item))
        stack.append((item, True))
        stack.extend((child, False) for child in reversed(_children(item, trace)) if id(child) not in seen)
    return ordered


def emit_graph(ctx: Any, trace: Trace, twin: Trace | None, input_name: str, value_of: Any) -> list[Any]:
    """Emit the nodes of ``trace``; returns the output Values. ``value_of(name, array)`` makes a Value."""
    items = order(trace)
    twins = order(twin) if twin is not None else [None] * len(items)
    if len(twins) != len(items):
        raise NotImplementedError("the traced graph changes with the batch size; export with dynamic_batch=False")
    names: dict[int, str] = {}
    position = 0
    for item, other in zip(items, twins):
        if id(item) in names:
            continue
        if _is_input(item, trace):
            names[id(item)] = input_name
        elif isinstance(item, Tensor) and id(item) in trace.calls:
            _emit_call(ctx, trace.calls[id(item)][0], names, value_of)
        elif not isinstance(item, Tensor) or item.creator is None:
            names[id(item)] = _constant(ctx, item, other)
        else:
            position += 1
            _emit_op(ctx, item.creator, other.creator if other is not None else None, names, position)
    return [value_of(names[id(leaf)], leaf.array) for leaf in leaves(trace.output)]


def _constant(ctx: Any, item: Any, other: Any) -> str:
    data = item.array if isinstance(item, Tensor) else np.asarray(item)
    if other is not None:
        other_data = other.array if isinstance(other, Tensor) else np.asarray(other)
        if other_data.shape != data.shape:
            raise NotImplementedError(f"a constant of shape {data.shape} changes with the batch size (an array "
                                      "computed from the input outside nurinet ops, such as a mask): it would be "
                                      "baked into the graph; build it with nurinet ops or use dynamic_batch=False")
    hint = "param" if isinstance(item, Parameter) else "const"
    return ctx.constant(np.asarray(data), hint=hint)


def _emit_call(ctx: Any, call: Call, names: dict[int, str], value_of: Any) -> None:
    x = call.input
    data = x.array if isinstance(x, Tensor) else np.asarray(x)
    result = ctx.module(call.module, value_of(names[id(x)], data), call.name)
    for leaf, value in zip(leaves(call.output), leaves(result)):
        names[id(leaf)] = value.name


def _emit_op(ctx: Any, fn: Any, twin: Any, names: dict[int, str], position: int) -> None:
    emitter = EMITTERS.get(type(fn))
    if emitter is None:
        raise NotImplementedError(
            f"cannot export the op {type(fn).__name__} (op #{position} of the traced graph, walking from the "
            f"inputs) to ONNX: it has no emitter. Supported ops: {', '.join(supported_ops())}. Add one with "
            f"nurinet.onnx.register_op_emitter({type(fn).__name__})")
    if twin is not None and type(twin) is not type(fn):
        raise NotImplementedError("the traced graph changes with the batch size; export with dynamic_batch=False")
    out = emitter(ctx, Op(fn, [names[id(t)] for t in fn.inputs], twin))
    outs = out if isinstance(out, (list, tuple)) else [out]
    for ref, name in zip(fn.outputs, outs):
        tensor = ref()
        if tensor is not None:
            names[id(tensor)] = name


def output_dims(trace: Trace, twin: Trace) -> list[dict[int, str]]:
    """For each output, the dims that follow the batch, named ``"batch"``."""
    dims = []
    for a, b in zip(leaves(trace.output), leaves(twin.output)):
        dims.append({i: "batch" for i, (m, n) in enumerate(zip(a.array.shape, b.array.shape)) if m != n})
    return dims
