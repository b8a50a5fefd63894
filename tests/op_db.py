"""The registry of every differentiable op, with sample inputs and a NumPy reference.

Generic tests (tests/test_op_db.py) loop over :data:`OPS`: forward against the
reference, float64 gradcheck, gradgradcheck where the op is twice
differentiable, float32 staying float32, and non-contiguous inputs. A
``Function`` subclass that no entry names fails ``test_every_function_is_registered``,
so an op cannot be added without its checks.

Sample inputs are drawn away from kinks (|x| not near 0 for abs, distinct
values for max, positive values for log and sqrt) so finite differences are valid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet.autograd.broadcast import BroadcastTo, SumTo
from nurinet.functional.arithmetic import (
    Add,
    Div,
    Mul,
    Neg,
    Pow,
    PowScalar,
    RPowScalar,
    Sub,
)
from nurinet.functional.device import ToDevice
from nurinet.functional.elementwise import (
    Abs,
    Cast,
    Clip,
    Cos,
    Exp,
    Expm1,
    Log,
    Log1p,
    Maximum,
    Minimum,
    Sign,
    Sin,
    Sqrt,
    Tanh,
    Where,
)
from nurinet.functional.indexing import GetItem, PutAlongAxis, ScatterAdd, TakeAlongAxis
from nurinet.functional.linalg import Einsum, Linear, MatMul
from nurinet.functional.reduction import Cumsum, LogSumExp, Max, Mean, Min, Prod, Sum
from nurinet.functional.shape import (
    Concatenate,
    Flip,
    Pad,
    Repeat,
    Reshape,
    Split,
    Tile,
    Transpose,
)

Sampler = Callable[[np.random.Generator], list[np.ndarray]]


@dataclass
class OpSpec:
    """One registry entry.

    Attributes:
        name: Test id.
        fn: The op applied to Tensors (returns a Tensor or a tuple).
        sample: Draws the float64 input arrays.
        reference: The same computation on NumPy arrays (an independent oracle).
        functions: The Function classes this entry exercises.
        gradgrad: Whether the op is differentiable twice (second-order check).
        grad_inputs: Indices of the inputs that get a gradient (default: all).
        atol: Tolerance of the forward comparison.
        eps: Finite-difference step of the gradient checks (larger for ops that round).
        tags: ``"changes_dtype"`` for ops whose purpose is a dtype change (skips the float32 check).
    """

    name: str
    fn: Callable[..., Any]
    sample: Sampler
    reference: Callable[..., Any]
    functions: tuple[type, ...]
    gradgrad: bool = True
    grad_inputs: tuple[int, ...] | None = None
    atol: float = 1e-10
    eps: float = 1e-6
    tags: set[str] = field(default_factory=set)


def uniform(*shapes: tuple[int, ...], low: float = -2.0, high: float = 2.0) -> Sampler:
    """Inputs drawn uniformly from [low, high]."""
    return lambda rng: [rng.uniform(low, high, s) for s in shapes]


def away_from_zero(*shapes: tuple[int, ...], margin: float = 0.3) -> Sampler:
    """Inputs with |x| in [margin, 2], random signs (for abs, sign, division)."""
    def draw(rng: np.random.Generator) -> list[np.ndarray]:
        return [rng.uniform(margin, 2.0, s) * rng.choice([-1.0, 1.0], s) for s in shapes]

    return draw


def distinct(*shapes: tuple[int, ...]) -> Sampler:
    """Inputs whose values are all distinct and well separated (for max, min, sort-like ops)."""
    def draw(rng: np.random.Generator) -> list[np.ndarray]:
        out = []
        for s in shapes:
            n = int(np.prod(s))
            out.append((rng.permutation(n) * 0.25 - n * 0.125).reshape(s).astype(np.float64))
        return out

    return draw


def _np_getitem(x: np.ndarray, index: Any) -> np.ndarray:
    return x[index]


TAKE_IDX = np.array([[0, 2, 2], [3, 1, 0]])

OPS: list[OpSpec] = [
    # ----- arithmetic -----------------------------------------------------------
    OpSpec("add", F.add, uniform((3, 4), (4,)), np.add, (Add, SumTo)),
    OpSpec("add_broadcast_both", F.add, uniform((2, 1, 3), (4, 3)), np.add, (Add, SumTo)),
    OpSpec("sub", F.sub, uniform((3, 4), (3, 1)), np.subtract, (Sub,)),
    OpSpec("mul", F.mul, uniform((3, 4), (4,)), np.multiply, (Mul,)),
    OpSpec("div", F.div, lambda r: uniform((3, 4))(r) + away_from_zero((1, 4))(r), np.divide, (Div,)),
    OpSpec("neg", F.neg, uniform((5,)), np.negative, (Neg,)),
    OpSpec("pow_scalar", lambda x: x**3.0, uniform((3, 4)), lambda x: x**3.0, (PowScalar,)),
    OpSpec("pow_square", lambda x: x**2, uniform((3, 4)), lambda x: x**2, (PowScalar,)),
    OpSpec("pow_tensor", F.pow, lambda r: uniform((3, 4), low=0.5)(r) + uniform((4,))(r), np.power,
           (Pow,)),
    OpSpec("rpow_scalar", lambda x: 2.0**x, uniform((3, 4)), lambda x: 2.0**x, (RPowScalar,)),
    # ----- elementwise ----------------------------------------------------------
    OpSpec("exp", F.exp, uniform((3, 4)), np.exp, (Exp,)),
    OpSpec("log", F.log, uniform((3, 4), low=0.2), np.log, (Log,)),
    OpSpec("log1p", F.log1p, uniform((3, 4), low=-0.7), np.log1p, (Log1p,)),
    OpSpec("expm1", F.expm1, uniform((3, 4)), np.expm1, (Expm1,)),
    OpSpec("sqrt", F.sqrt, uniform((3, 4), low=0.2), np.sqrt, (Sqrt,)),
    OpSpec("abs", F.abs, away_from_zero((3, 4)), np.abs, (Abs, Sign)),
    OpSpec("sign", F.sign, away_from_zero((3, 4)), np.sign, (Sign,)),
    OpSpec("clip", lambda x: F.clip(x, -1.0, 1.0),
           lambda r: [np.array([-1.7, -0.5, 0.3, 0.9, 1.4, -1.2])], lambda x: np.clip(x, -1, 1),
           (Clip,)),
    OpSpec("maximum", F.maximum, distinct((3, 4), (4,)), np.maximum, (Maximum,)),
    OpSpec("minimum", F.minimum, distinct((3, 4), (3, 1)), np.minimum, (Minimum,)),
    OpSpec("where", lambda a, b: F.where(np.array([[True, False, True]]), a, b),
           uniform((2, 3), (3,)), lambda a, b: np.where([[True, False, True]], a, b), (Where,)),
    OpSpec("sin", F.sin, uniform((3, 4)), np.sin, (Sin,)),
    OpSpec("cos", F.cos, uniform((3, 4)), np.cos, (Cos,)),
    OpSpec("tanh", F.tanh, uniform((3, 4)), np.tanh, (Tanh,)),
    OpSpec("astype_roundtrip", lambda x: F.astype(F.astype(x, "float32"), "float64") * 1.0,
           uniform((3,)), lambda x: x.astype(np.float32).astype(np.float64), (Cast,), atol=1e-6,
           eps=1e-2, gradgrad=False, tags={"changes_dtype"}),
    # ----- reductions -----------------------------------------------------------
    OpSpec("sum_all", F.sum, uniform((3, 4)), np.sum, (Sum, BroadcastTo)),
    OpSpec("sum_axis", lambda x: F.sum(x, axis=(0, 2)), uniform((2, 3, 4)),
           lambda x: np.sum(x, axis=(0, 2)), (Sum,)),
    OpSpec("sum_keepdims", lambda x: F.sum(x, axis=1, keepdims=True), uniform((3, 4)),
           lambda x: np.sum(x, axis=1, keepdims=True), (Sum,)),
    OpSpec("mean", lambda x: F.mean(x, axis=-1), uniform((3, 4)), lambda x: np.mean(x, axis=-1),
           (Mean,)),
    OpSpec("var", lambda x: F.var(x, axis=0), uniform((5, 3)), lambda x: np.var(x, axis=0), ()),
    OpSpec("std_ddof1", lambda x: F.std(x, axis=1, ddof=1), uniform((3, 5)),
           lambda x: np.std(x, axis=1, ddof=1), ()),
    OpSpec("max_axis", lambda x: F.max(x, axis=1), distinct((3, 4)), lambda x: np.max(x, axis=1),
           (Max,)),
    OpSpec("min_all", F.min, distinct((3, 4)), np.min, (Min,)),
    OpSpec("logsumexp", lambda x: F.logsumexp(x, axis=1), uniform((3, 4)),
           lambda x: np.log(np.exp(x).sum(axis=1)), (LogSumExp,)),
    OpSpec("prod", lambda x: F.prod(x, axis=0), away_from_zero((3, 4)),
           lambda x: np.prod(x, axis=0), (Prod,)),
    OpSpec("cumsum", lambda x: F.cumsum(x, axis=1), uniform((3, 4)),
           lambda x: np.cumsum(x, axis=1), (Cumsum, Flip)),
    # ----- shape ------------------------------------------------------------------
    OpSpec("reshape", lambda x: F.reshape(x, (4, -1)), uniform((2, 3, 2)),
           lambda x: x.reshape(4, -1), (Reshape,)),
    OpSpec("transpose", lambda x: F.transpose(x, (2, 0, 1)), uniform((2, 3, 4)),
           lambda x: x.transpose(2, 0, 1), (Transpose,)),
    OpSpec("swapaxes", lambda x: F.swapaxes(x, 0, 2), uniform((2, 3, 4)),
           lambda x: x.swapaxes(0, 2), (Transpose,)),
    OpSpec("squeeze", lambda x: F.squeeze(x, 1), uniform((3, 1, 2)), lambda x: x.squeeze(1),
           (Reshape,)),
    OpSpec("unsqueeze", lambda x: F.unsqueeze(x, -1), uniform((3, 2)), lambda x: x[..., None],
           (Reshape,)),
    OpSpec("flatten", lambda x: F.flatten(x, 1), uniform((2, 3, 4)), lambda x: x.reshape(2, 12),
           (Reshape,)),
    OpSpec("broadcast_to", lambda x: F.broadcast_to(x, (2, 3, 4)), uniform((3, 1)),
           lambda x: np.broadcast_to(x, (2, 3, 4)), (BroadcastTo, SumTo)),
    OpSpec("concatenate", lambda a, b: F.concatenate([a, b], axis=1), uniform((2, 3), (2, 2)),
           lambda a, b: np.concatenate([a, b], axis=1), (Concatenate, Split)),
    OpSpec("stack", lambda a, b: F.stack([a, b], axis=1), uniform((2, 3), (2, 3)),
           lambda a, b: np.stack([a, b], axis=1), (Concatenate,)),
    OpSpec("split", lambda x: F.split(x, [1, 3], axis=1), uniform((2, 5)),
           lambda x: tuple(np.split(x, [1, 3], axis=1)), (Split, Concatenate)),
    OpSpec("pad", lambda x: F.pad(x, ((1, 0), (2, 1)), value=0.5), uniform((2, 3)),
           lambda x: np.pad(x, ((1, 0), (2, 1)), constant_values=0.5), (Pad, GetItem)),
    OpSpec("repeat", lambda x: F.repeat(x, 3, axis=1), uniform((2, 3)),
           lambda x: np.repeat(x, 3, axis=1), (Repeat,)),
    OpSpec("tile", lambda x: F.tile(x, (2, 1, 3)), uniform((2, 3)),
           lambda x: np.tile(x, (2, 1, 3)), (Tile,)),
    OpSpec("flip", lambda x: F.flip(x, 0), uniform((3, 2)), lambda x: x[::-1], (Flip,)),
    # ----- indexing -----------------------------------------------------------------
    OpSpec("getitem_basic", lambda x: x[1:, ::2, None, 0], uniform((3, 4, 2)),
           lambda x: x[1:, ::2, None, 0], (GetItem, ScatterAdd)),
    OpSpec("getitem_repeated", lambda x: x[[0, 2, 0, 0]], uniform((3, 2)),
           lambda x: x[[0, 2, 0, 0]], (GetItem, ScatterAdd)),
    OpSpec("getitem_bool", lambda x: x[np.array([True, False, True])], uniform((3, 2)),
           lambda x: x[np.array([True, False, True])], (GetItem,)),
    OpSpec("getitem_pairs", lambda x: x[np.array([0, 1, 1]), np.array([2, 0, 2])], uniform((2, 3)),
           lambda x: x[np.array([0, 1, 1]), np.array([2, 0, 2])], (GetItem,)),
    OpSpec("take_along_axis", lambda x: F.take_along_axis(x, TAKE_IDX, 1), uniform((2, 4)),
           lambda x: np.take_along_axis(x, TAKE_IDX, 1), (TakeAlongAxis, PutAlongAxis)),
    # ----- linear algebra -------------------------------------------------------------
    OpSpec("matmul", F.matmul, uniform((3, 4), (4, 2)), np.matmul, (MatMul,)),
    OpSpec("matmul_batched_broadcast", F.matmul, uniform((2, 1, 3, 4), (3, 4, 2)), np.matmul,
           (MatMul,)),
    OpSpec("matmul_vector", F.matmul, uniform((3, 4), (4,)), np.matmul, (MatMul,)),
    OpSpec("matmul_vec_vec", F.matmul, uniform((4,), (4,)), np.matmul, (MatMul,)),
    OpSpec("linear", F.linear, uniform((5, 3), (4, 3), (4,)), lambda x, w, b: x @ w.T + b,
           (Linear,)),
    OpSpec("linear_3d_nobias", F.linear, uniform((2, 5, 3), (4, 3)), lambda x, w: x @ w.T,
           (Linear,)),
    OpSpec("einsum_bmm", lambda a, b: F.einsum("bij,bjk->bik", a, b), uniform((2, 3, 4), (2, 4, 2)),
           lambda a, b: np.einsum("bij,bjk->bik", a, b), (Einsum,)),
    OpSpec("einsum_outer_sum", lambda a, b: F.einsum("ij,k->ik", a, b), uniform((2, 3), (4,)),
           lambda a, b: np.einsum("ij,k->ik", a, b), (Einsum,)),
    OpSpec("einsum_implicit", lambda a, b: F.einsum("ij,jk", a, b), uniform((2, 3), (3, 2)),
           lambda a, b: np.einsum("ij,jk", a, b), (Einsum,)),
]

# Ops that are Function subclasses but deliberately have no registry entry of their own,
# with the reason. ToDevice needs a GPU; it is tested in tests/test_backend.py.
NOT_REGISTERED = {ToDevice: "device moves need a GPU; see tests/test_backend.py"}
