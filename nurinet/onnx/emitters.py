"""ONNX node emitters for the autograd ops (``Function`` subclasses) met while tracing a model.

Each emitter takes the export context and an :class:`Op` (the recorded ``Function``, the ONNX names
of its inputs and, for dynamic batch, its twin from a run on a bigger batch) and returns the name of
its output (a list of names for an op with several outputs). ``EMITTERS`` maps the op class (exact
type) to its emitter; :func:`register_op_emitter` adds one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nurinet.autograd import broadcast
from nurinet.functional import activation as act
from nurinet.functional import arithmetic as ar
from nurinet.functional import attention as att
from nurinet.functional import (
    conv,
    elementwise,
    indexing,
    linalg,
    pooling,
    shape,
    special,
    tensor_ops,
)
from nurinet.functional import reduction as rd
from nurinet.functional.dropout import (
    Dropout as DropoutOp,  # nurinet.functional.dropout is the function
)

_INT64_MAX = np.iinfo(np.int64).max


@dataclass
class Op:
    """One recorded op to emit: the ``Function``, its input names, and its twin from the bigger batch."""

    fn: Any
    inputs: list[str]
    twin: Any = None

    def in_shape(self, index: int = 0) -> tuple[int, ...]:
        """The example shape of input ``index``."""
        return tuple(self.fn.inputs[index].array.shape)

    def out_shape(self, index: int = 0) -> tuple[int, ...]:
        """The example shape of output ``index``."""
        return tuple(self.fn.output(index).array.shape)

    def batch_dims(self, index: int = 0) -> list[int]:
        """The dims of output ``index`` whose size follows the batch (empty without a twin)."""
        if self.twin is None:
            return []
        other = tuple(self.twin.output(index).array.shape)
        return [i for i, (a, b) in enumerate(zip(self.out_shape(index), other)) if a != b]

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the first input."""
        return self.fn.inputs[0].array.dtype


Emitter = Callable[[Any, Op], Any]
EMITTERS: dict[type, Emitter] = {}


def register_op_emitter(*classes: type) -> Callable[[Emitter], Emitter]:
    """Register ``fn(ctx, op)`` as the ONNX emitter of the autograd op ``classes`` (exact types)."""
    def decorate(fn: Emitter) -> Emitter:
        for cls in classes:
            EMITTERS[cls] = fn
        return fn
    return decorate


def supported_ops() -> list[str]:
    """The names of the autograd op classes the tracing exporter knows, sorted."""
    return sorted({cls.__name__ for cls in EMITTERS})


def _scalar(ctx: Any, value: Any, dtype: Any) -> str:
    return ctx.constant(np.asarray(value, dtype=dtype), hint="scalar")


def _simple(onnx_op: str) -> Emitter:
    def emit(ctx: Any, op: Op) -> str:
        return ctx.node(onnx_op, op.inputs)
    return emit


# ----- elementwise ---------------------------------------------------------------------------------------

for _cls, _name in [(ar.Add, "Add"), (ar.Sub, "Sub"), (ar.Mul, "Mul"), (ar.Div, "Div"), (ar.Pow, "Pow"),
                    (ar.Neg, "Neg"), (act.ReLU, "Relu"), (act.Sigmoid, "Sigmoid"), (elementwise.Tanh, "Tanh"),
                    (elementwise.Exp, "Exp"), (elementwise.Log, "Log"), (elementwise.Sqrt, "Sqrt"),
                    (elementwise.Abs, "Abs"), (elementwise.Sin, "Sin"), (elementwise.Cos, "Cos"),
                    (elementwise.Sign, "Sign"), (elementwise.Maximum, "Max"), (elementwise.Minimum, "Min"),
                    (special.Erf, "Erf"), (act.Softsign, "Softsign"), (linalg.MatMul, "MatMul"),
                    (tensor_ops.Clone, "Identity"), (DropoutOp, "Identity")]:
    register_op_emitter(_cls)(_simple(_name))  # Dropout: the identity in evaluation mode


@register_op_emitter(ar.AddScalar)
def _add_scalar(ctx: Any, op: Op) -> str:
    return ctx.node("Add", [op.inputs[0], _scalar(ctx, op.fn.constant, op.dtype)])


@register_op_emitter(ar.MulScalar)
def _mul_scalar(ctx: Any, op: Op) -> str:
    return ctx.node("Mul", [op.inputs[0], _scalar(ctx, op.fn.constant, op.dtype)])


@register_op_emitter(ar.PowScalar)
def _pow_scalar(ctx: Any, op: Op) -> str:
    return ctx.node("Pow", [op.inputs[0], _scalar(ctx, op.fn.exponent, op.dtype)])


@register_op_emitter(ar.RPowScalar)
def _rpow_scalar(ctx: Any, op: Op) -> str:
    return ctx.node("Pow", [_scalar(ctx, op.fn.base, op.dtype), op.inputs[0]])


@register_op_emitter(elementwise.Clip)
def _clip(ctx: Any, op: Op) -> str:
    bounds = ["" if v is None else _scalar(ctx, v, op.dtype) for v in (op.fn.low, op.fn.high)]
    return ctx.node("Clip", [op.inputs[0], *bounds])


@register_op_emitter(elementwise.Cast)
def _cast(ctx: Any, op: Op) -> str:
    return ctx.node("Cast", op.inputs, to=ctx.onnx.helper.np_dtype_to_tensor_dtype(op.fn.dtype))


@register_op_emitter(act.LeakyReLU)
def _leaky_relu(ctx: Any, op: Op) -> str:
    return ctx.node("LeakyRelu", op.inputs, alpha=float(op.fn.slope))


@register_op_emitter(act.SiLU)
def _silu(ctx: Any, op: Op) -> str:
    return ctx.node("Mul", [op.inputs[0], ctx.node("Sigmoid", op.inputs)])


@register_op_emitter(act.GELU)
def _gelu(ctx: Any, op: Op) -> str:
    erf = ctx.node("Erf", [ctx.node("Mul", [op.inputs[0], _scalar(ctx, 1.0 / np.sqrt(2.0), op.dtype)])])
    half = ctx.node("Mul", [op.inputs[0], _scalar(ctx, 0.5, op.dtype)])
    return ctx.node("Mul", [half, ctx.node("Add", [erf, _scalar(ctx, 1.0, op.dtype)])])


@register_op_emitter(act.Softmax)
def _softmax(ctx: Any, op: Op) -> str:
    return ctx.node("Softmax", op.inputs, axis=int(op.fn.axis) % len(op.in_shape()))


@register_op_emitter(act.LogSoftmax)
def _log_softmax(ctx: Any, op: Op) -> str:
    return ctx.node("LogSoftmax", op.inputs, axis=int(op.fn.axis) % len(op.in_shape()))


# ----- linear algebra, convolution and pooling ----------------------------------------------------------------

@register_op_emitter(linalg.Linear)
def _linear(ctx: Any, op: Op) -> str:
    x, weight = op.inputs[0], op.inputs[1]
    if len(op.in_shape()) == 2:
        return ctx.node("Gemm", op.inputs, transB=1)
    y = ctx.node("MatMul", [x, ctx.node("Transpose", [weight], perm=[1, 0])])
    return ctx.node("Add", [y, op.inputs[2]]) if len(op.inputs) > 2 else y


@register_op_emitter(conv.Conv2d)
def _conv2d(ctx: Any, op: Op) -> str:
    geom = op.fn.geom
    (top, bottom), (left, right) = geom.padding
    return ctx.node("Conv", op.inputs, kernel_shape=list(op.in_shape(1)[2:]), strides=list(geom.stride),
                    pads=[top, left, bottom, right], dilations=list(geom.dilation), group=int(geom.groups))


def _pool_attributes(fn: Any) -> dict[str, Any]:
    return {"kernel_shape": list(fn.kernel), "strides": list(fn.stride), "pads": list(fn.padding) * 2,
            "ceil_mode": int(fn.ceil_mode)}


@register_op_emitter(pooling.MaxPool2d)
def _max_pool(ctx: Any, op: Op) -> str:
    return ctx.node("MaxPool", op.inputs, **_pool_attributes(op.fn), dilations=list(op.fn.dilation))


@register_op_emitter(pooling.AvgPool2d)
def _avg_pool(ctx: Any, op: Op) -> str:
    return ctx.node("AveragePool", op.inputs, **_pool_attributes(op.fn),
                    count_include_pad=int(op.fn.count_include_pad))


# ----- reductions ----------------------------------------------------------------------------------------

def _axes(op: Op) -> list[int]:
    ndim, axis = len(op.in_shape()), op.fn.axis
    if axis is None:
        return list(range(ndim))
    return sorted(int(a) % ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,)))


def _reduction(onnx_op: str) -> Emitter:
    def emit(ctx: Any, op: Op) -> str:
        keepdims = int(bool(op.fn.keepdims))
        if onnx_op == "ReduceSum" or ctx.opset >= 18:  # ReduceSum takes its axes as an input from opset 13
            return ctx.node(onnx_op, [op.inputs[0], ctx.constant(_axes(op), np.int64, "axes")], keepdims=keepdims)
        return ctx.node(onnx_op, op.inputs, axes=_axes(op), keepdims=keepdims)
    return emit


for _cls, _name in [(rd.Sum, "ReduceSum"), (rd.Mean, "ReduceMean"), (rd.Max, "ReduceMax"), (rd.Min, "ReduceMin"),
                    (rd.LogSumExp, "ReduceLogSumExp"), (rd.Prod, "ReduceProd")]:
    register_op_emitter(_cls)(_reduction(_name))


# ----- shapes --------------------------------------------------------------------------------------------

def dynamic_shape(op: Op, index: int = 0) -> list[int]:
    """Output ``index``'s shape for a Reshape node: the one dim that follows the batch becomes -1.

    Raises:
        NotImplementedError: more than one dim of the target shape follows the batch.
    """
    target, dims = list(op.out_shape(index)), op.batch_dims(index)
    if len(dims) > 1:
        raise NotImplementedError(f"{type(op.fn).__name__}: the target shape {tuple(target)} has several dims "
                                  "that follow the batch size; ONNX Reshape can infer only one")
    for dim in dims:
        target[dim] = -1
    return target


@register_op_emitter(shape.Reshape)
def _reshape(ctx: Any, op: Op) -> str:
    return ctx.reshape(op.inputs[0], dynamic_shape(op))


@register_op_emitter(shape.Transpose)
def _transpose(ctx: Any, op: Op) -> str:
    ndim, axes = len(op.in_shape()), op.fn.axes
    perm = list(range(ndim))[::-1] if axes is None else [int(a) % ndim for a in axes]
    return ctx.node("Transpose", op.inputs, perm=perm)


@register_op_emitter(shape.Concatenate)
def _concatenate(ctx: Any, op: Op) -> str:
    return ctx.node("Concat", op.inputs, axis=int(op.fn.axis) % len(op.in_shape()))


@register_op_emitter(shape.Split)
def _split(ctx: Any, op: Op) -> list[str]:
    axis = int(op.fn.axis) % len(op.in_shape())
    sizes = [op.fn.output(i).array.shape[axis] for i in range(len(op.fn.outputs))]
    names = ctx.node("Split", [op.inputs[0], ctx.constant(sizes, np.int64, "split")], outputs=len(sizes),
                     axis=axis)
    return names if isinstance(names, list) else [names]


@register_op_emitter(broadcast.BroadcastTo)
def _broadcast_to(ctx: Any, op: Op) -> str:
    # Expand broadcasts both ways: a 1 in the shape keeps the input's dim (the batch among them).
    target = list(op.out_shape())
    in_shape = (1,) * (len(target) - len(op.in_shape())) + op.in_shape()
    for dim in op.batch_dims():
        if in_shape[dim] == 1:
            raise NotImplementedError("BroadcastTo: broadcasting an input without the batch dim to the batch "
                                      "size is not exported; broadcast with an op on the input instead")
        target[dim] = 1
    return ctx.node("Expand", [op.inputs[0], ctx.constant(target, np.int64, "shape")])


def _index_parts(index: Any, ndim: int) -> list[Any]:
    """A basic index as one entry per input dim (int or slice) plus None for new axes."""
    parts = list(index) if isinstance(index, tuple) else [index]
    if any(p is Ellipsis for p in parts):
        at = parts.index(Ellipsis)
        used = sum(1 for p in parts if p is not None and p is not Ellipsis)
        parts[at:at + 1] = [slice(None)] * (ndim - used)
    parts += [slice(None)] * (ndim - sum(1 for p in parts if p is not None))
    for part in parts:
        if not (part is None or isinstance(part, (slice, int, np.integer))):
            raise NotImplementedError(f"GetItem: only basic indexing (ints, slices, None, ...) is exported, "
                                      f"got an index of type {type(part).__name__}")
    return parts


@register_op_emitter(indexing.GetItem)
def _get_item(ctx: Any, op: Op) -> str:
    """Basic indexing: a Slice per sliced or indexed dim, then Squeeze (ints) and Unsqueeze (None)."""
    parts = _index_parts(op.fn.index, len(op.in_shape()))
    name, dim, out_dim, squeeze, unsqueeze = op.inputs[0], 0, 0, [], []
    for part in parts:
        if part is None:
            unsqueeze.append(out_dim)
            out_dim += 1
            continue
        if isinstance(part, slice):
            if part != slice(None):
                name = _slice(ctx, name, dim, part.start, part.stop, part.step or 1)
            out_dim += 1
        else:
            index = int(part)
            name = _slice(ctx, name, dim, index, index + 1 if index != -1 else None, 1)
            squeeze.append(dim)
        dim += 1
    if squeeze:
        name = ctx.node("Squeeze", [name, ctx.constant(squeeze, np.int64, "axes")])
    if unsqueeze:
        name = ctx.node("Unsqueeze", [name, ctx.constant(unsqueeze, np.int64, "axes")])
    return name


def _slice(ctx: Any, name: str, dim: int, start: int | None, stop: int | None, step: int) -> str:
    start = (0 if step > 0 else -1) if start is None else start
    stop = (_INT64_MAX if step > 0 else -_INT64_MAX) if stop is None else stop
    return ctx.node("Slice", [name] + [ctx.constant([v], np.int64, hint) for v, hint in
                                       [(start, "starts"), (stop, "ends"), (dim, "axes"), (step, "steps")]])


# ----- attention -----------------------------------------------------------------------------------------

@register_op_emitter(att.SplitHeads)
def _split_heads(ctx: Any, op: Op) -> list[str]:
    fn = op.fn
    x = op.inputs[0] if fn.batch_first else ctx.node("Transpose", op.inputs, perm=[1, 0, 2])
    d = op.out_shape(0)[3]
    heads = ctx.reshape(x, [0, 0, fn.parts, fn.heads, d])
    heads = ctx.node("Transpose", [heads], perm=[2, 0, 3, 1, 4])  # (parts, N, H, L, D)
    pieces = ctx.node("Split", [heads, ctx.constant([1] * fn.parts, np.int64, "split")], outputs=fn.parts, axis=0)
    pieces = pieces if isinstance(pieces, list) else [pieces]
    axes = ctx.constant([0], np.int64, "axes")
    return [ctx.node("Squeeze", [p, axes]) for p in pieces]


@register_op_emitter(att.MergeHeads)
def _merge_heads(ctx: Any, op: Op) -> str:
    perm = [0, 2, 1, 3] if op.fn.batch_first else [2, 0, 1, 3]
    return ctx.reshape(ctx.node("Transpose", op.inputs, perm=perm), [0, 0, -1])


@register_op_emitter(att.Attention)
def _attention(ctx: Any, op: Op) -> Any:
    fn = op.fn
    if getattr(fn, "drop", None) is not None:
        raise NotImplementedError("Attention with dropout: export the model in evaluation mode")
    q, k, v = op.inputs[:3]
    scores = ctx.node("MatMul", [q, ctx.node("Transpose", [k], perm=_swap_last(len(op.in_shape(1))))])
    scores = ctx.node("Mul", [scores, _scalar(ctx, fn.scale, op.dtype)])
    if getattr(fn, "mask", None) is not None:
        if op.twin is not None and np.shape(op.twin.mask) != np.shape(fn.mask):
            raise NotImplementedError("Attention: the mask depends on the batch (a padding mask computed from the "
                                      "input); it would be baked in for the example's batch")
        scores = ctx.node("Add", [scores, ctx.constant(np.asarray(fn.mask, op.dtype), hint="mask")])
    weights = ctx.node("Softmax", [scores], axis=-1)
    out = ctx.node("MatMul", [weights, v])
    return [out, weights] if len(fn.outputs) > 1 else out


def _swap_last(ndim: int) -> list[int]:
    return [*range(ndim - 2), ndim - 1, ndim - 2]
