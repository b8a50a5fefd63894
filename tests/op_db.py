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

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet.autograd.broadcast import BroadcastTo, SumTo
from nurinet.functional.activation import (
    ELU,
    GELU,
    GELUTanh,
    Hardsigmoid,
    LeakyReLU,
    LogSoftmax,
    Mish,
    PReLU,
    RationalTanh,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
)
from nurinet.functional.arithmetic import (
    Add,
    AddScalar,
    Div,
    Mul,
    MulScalar,
    Neg,
    Pow,
    PowScalar,
    RPowScalar,
    Sub,
)
from nurinet.functional.attention import (
    Attention,
    MergeHeads,
    SplitHeads,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from nurinet.functional.conv import Conv2d, Conv2dWeightGrad, ConvTranspose2d
from nurinet.functional.conv_reference import (
    conv2d_reference,
    conv_transpose2d_reference,
)
from nurinet.functional.device import ToDevice
from nurinet.functional.dropout import Dropout, dropout
from nurinet.functional.dropout_channel import dropout2d
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
from nurinet.functional.embedding import Embedding, EmbeddingScatter
from nurinet.functional.indexing import GetItem, PutAlongAxis, ScatterAdd, TakeAlongAxis
from nurinet.functional.linalg import Einsum, Linear, LinearReLU, MatMul
from nurinet.functional.loss import MeanSquaredError
from nurinet.functional.loss_classification import (
    BCEWithLogits,
    BinaryCrossEntropy,
    PlainSoftmaxCrossEntropy,
    SoftmaxCrossEntropy,
    cross_entropy_composite,
)
from nurinet.functional.normalization import (
    Normalize,
    batch_norm,
    group_norm,
    layer_norm,
)
from nurinet.functional.pooling import (
    AdaptiveMaxPool2d,
    AvgPool2d,
    AvgPool2dAdjoint,
    MaxPool2d,
)
from nurinet.functional.recurrent import (
    GRUCellFunction,
    LSTMCellFunction,
    RecurrentSequence,
    RNNCellFunction,
    StepSplit,
    StepStack,
    gru_step,
    lstm_step,
    recurrent_sequence,
    rnn_step,
    stack_steps,
    unstack,
)
from nurinet.functional.reduction import Cumsum, LogSumExp, Max, Mean, Min, Prod, Sum
from nurinet.functional.resample import AxisResample
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
from nurinet.functional.special import Erf
from nurinet.functional.tensor_ops import Clone
from nurinet.random import Generator

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

# ----- activations and losses: NumPy references written from the published formulas -----
_ERF = np.vectorize(math.erf)


def _np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _np_log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def _np_rational_tanh(x: np.ndarray) -> np.ndarray:
    y = 2.0 * x / 3.0  # DL4J: 1.7159 * sgn(y) * (1 - 1 / (1 + |y| + y^2 + 1.41645 y^4))
    return 1.7159 * np.sign(y) * (1.0 - 1.0 / (1.0 + np.abs(y) + y**2 + 1.41645 * y**4))


def _np_cross_entropy(x: np.ndarray, t: np.ndarray, w: Any = None, smoothing: float = 0.0,
                      reduction: str = "mean") -> Any:
    """PyTorch's cross_entropy for class indices (ignore_index -100), from its definition."""
    logp = np.moveaxis(_np_log_softmax(x, 1), 1, -1)
    classes = logp.shape[-1]
    wv = np.ones(classes) if w is None else w
    valid = t != -100
    safe = np.where(valid, t, 0)
    wt = wv[safe] * valid
    nll = -np.take_along_axis(logp, safe[..., None], -1)[..., 0] * wt
    per = (1 - smoothing) * nll - smoothing / classes * (logp * wv).sum(-1) * valid
    return {"none": per, "sum": per.sum(), "mean": per.sum() / wt.sum()}[reduction]


def _np_cosine_embedding(a: np.ndarray, b: np.ndarray, y: np.ndarray, margin: float) -> Any:
    cos = (a * b).sum(-1) / np.sqrt(((a * a).sum(-1) + 1e-12) * ((b * b).sum(-1) + 1e-12))
    return np.where(y == 1, 1 - cos, np.maximum(cos - margin, 0)).mean()


def _kept(seed: int, shape: tuple[int, ...], p: float) -> np.ndarray:
    """Dropout's keep mask, written from its definition: 32-bit draws, the raw 64-bit outputs of a
    PCG64 seeded with ``seed`` low half first, kept where at least ``p * 2**32``."""
    count = int(np.prod(shape))
    raw = np.random.PCG64(seed).random_raw((count + 1) // 2)
    halves = np.stack([raw & 0xFFFFFFFF, raw >> np.uint64(32)], axis=1).reshape(-1)[:count]
    return (halves >= round(p * 2**32)).reshape(shape)


def _apart(shape: tuple[int, ...]) -> Sampler:
    """Two inputs whose difference is at least 0.3 away from zero (the kink of |a - b|)."""
    def draw(rng: np.random.Generator) -> list[np.ndarray]:
        b = uniform(shape)(rng)[0]
        return [b + away_from_zero(shape)(rng)[0], b]

    return draw


CE_T = np.array([0, 3, 1, -100, 2])
CE_T_PLAIN = np.array([0, 3, 1, 1, 2])  # every target in range: the plain fused op
CE_W = np.array([0.5, 1.5, 1.0, 2.0])
CE_T4 = np.array([[[0, 2], [1, -100], [3, 1]], [[2, 2], [0, 3], [1, 0]]])
BCE_W = np.array([0.5, 1.0, 1.5, 2.0])
POS_W = np.array([2.0, 0.5, 1.0, 3.0])
HINGE_Y = np.array([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]])
COS_Y = np.array([1, -1, 1, -1])
PAIR_Y = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
HARD_X = np.array([-4.5, -2.5, -1.0, 0.4, 2.2, 3.7])  # Away from the kinks at -3, 3 and 0.

OPS: list[OpSpec] = [
    # ----- arithmetic -----------------------------------------------------------
    OpSpec("add", F.add, uniform((3, 4), (4,)), np.add, (Add, SumTo)),
    OpSpec("add_broadcast_both", F.add, uniform((2, 1, 3), (4, 3)), np.add, (Add, SumTo)),
    OpSpec("sub", F.sub, uniform((3, 4), (3, 1)), np.subtract, (Sub,)),
    OpSpec("mul", F.mul, uniform((3, 4), (4,)), np.multiply, (Mul,)),
    OpSpec("div", F.div, lambda r: uniform((3, 4))(r) + away_from_zero((1, 4))(r), np.divide, (Div,)),
    OpSpec("neg", F.neg, uniform((5,)), np.negative, (Neg,)),
    OpSpec("add_scalar", lambda x: 1.5 + x - 0.25, uniform((3, 4)), lambda x: 1.5 + x - 0.25,
           (AddScalar,)),
    OpSpec("mul_scalar", lambda x: x * 3.0 * np.float32(0.5), uniform((3, 4)),
           lambda x: x * 3.0 * 0.5, (MulScalar,)),
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
    OpSpec("permute", lambda x: F.permute(x, (2, 0, 1)), uniform((2, 3, 4)),
           lambda x: x.transpose(2, 0, 1), (Transpose,)),
    OpSpec("swapaxes", lambda x: F.swapaxes(x, 0, 2), uniform((2, 3, 4)),
           lambda x: x.swapaxes(0, 2), (Transpose,)),
    OpSpec("transpose", lambda x: F.transpose(x, 0, 2), uniform((2, 3, 4)),
           lambda x: x.swapaxes(0, 2), (Transpose,)),
    OpSpec("clone", lambda x: F.clone(x), uniform((2, 3)), lambda x: x.copy(), (Clone,)),
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
    *(OpSpec(f"pad_mode_{mode}", lambda x, mode=mode: F.pad_mode(x, ((0, 0), (2, 1), (1, 2)), mode),
             uniform((2, 4, 3)), lambda x, np_mode=np_mode: np.pad(x, ((0, 0), (2, 1), (1, 2)), mode=np_mode),
             (GetItem, ScatterAdd)) for mode, np_mode in (("reflect", "reflect"), ("replicate", "edge"),
                                                          ("circular", "wrap"))),
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
    OpSpec("linear_relu", F.linear_relu, uniform((5, 3), (4, 3), (4,)), lambda x, w, b: np.maximum(x @ w.T + b, 0),
           (LinearReLU,)),
    OpSpec("linear_relu_3d_nobias", F.linear_relu, uniform((2, 5, 3), (4, 3)), lambda x, w: np.maximum(x @ w.T, 0),
           (LinearReLU,)),
    OpSpec("einsum_bmm", lambda a, b: F.einsum("bij,bjk->bik", a, b), uniform((2, 3, 4), (2, 4, 2)),
           lambda a, b: np.einsum("bij,bjk->bik", a, b), (Einsum,)),
    OpSpec("einsum_outer_sum", lambda a, b: F.einsum("ij,k->ik", a, b), uniform((2, 3), (4,)),
           lambda a, b: np.einsum("ij,k->ik", a, b), (Einsum,)),
    OpSpec("einsum_implicit", lambda a, b: F.einsum("ij,jk", a, b), uniform((2, 3), (3, 2)),
           lambda a, b: np.einsum("ij,jk", a, b), (Einsum,)),
    # ----- dropout: a generator seeded inside fn draws the same mask at every evaluation -----
    OpSpec("dropout", lambda x: dropout(x, 0.3, True, Generator(7)), uniform((4, 5)),
           lambda x: x * _kept(7, x.shape, 0.3) / 0.7, (Dropout,)),
    # ----- activations ----------------------------------------------------------------
    OpSpec("sigmoid", F.sigmoid, uniform((3, 4), low=-5, high=5), _np_sigmoid, (Sigmoid,)),
    OpSpec("relu", F.relu, away_from_zero((3, 4)), lambda x: np.maximum(x, 0), (ReLU,)),
    OpSpec("leaky_relu", lambda x: F.leaky_relu(x, 0.2), away_from_zero((3, 4)),
           lambda x: np.where(x > 0, x, 0.2 * x), (LeakyReLU,)),
    OpSpec("rrelu_train", lambda x: F.rrelu(x, training=True, generator=Generator(3)),
           away_from_zero((3, 4)),
           lambda x: np.where(x > 0, x, x * np.random.default_rng(3).uniform(1 / 8, 1 / 3, x.shape)),
           (LeakyReLU,)),
    OpSpec("rrelu_eval", F.rrelu, away_from_zero((3, 4)),
           lambda x: np.where(x > 0, x, x * (1 / 8 + 1 / 3) / 2), (LeakyReLU,)),
    OpSpec("prelu_channels", F.prelu,
           lambda r: away_from_zero((2, 3, 4))(r) + uniform((3,), low=0.05, high=0.5)(r),
           lambda x, w: np.where(x > 0, x, w[:, None] * x), (PReLU, Reshape)),
    OpSpec("prelu_shared", F.prelu,
           lambda r: away_from_zero((3, 4))(r) + uniform((1,), low=0.05, high=0.5)(r),
           lambda x, w: np.where(x > 0, x, w * x), (PReLU,)),
    OpSpec("elu", lambda x: F.elu(x, 0.8), away_from_zero((3, 4)),
           lambda x: np.where(x > 0, x, 0.8 * np.expm1(x)), (ELU,)),
    OpSpec("selu", F.selu, away_from_zero((3, 4)),
           lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x)),
           (ELU,)),
    OpSpec("celu", lambda x: F.celu(x, 0.6), away_from_zero((3, 4)),
           lambda x: np.maximum(x, 0) + np.minimum(0, 0.6 * np.expm1(x / 0.6)), (ELU,)),
    OpSpec("erf", F.erf, uniform((3, 4), low=-3, high=3), _ERF, (Erf,), atol=1e-13),
    OpSpec("gelu", F.gelu, uniform((3, 4), low=-3, high=3),
           lambda x: 0.5 * x * (1 + _ERF(x / np.sqrt(2))), (GELU, Erf)),
    OpSpec("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), uniform((3, 4), low=-3, high=3),
           lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
           (GELUTanh, Tanh)),
    OpSpec("silu", F.silu, uniform((3, 4), low=-4, high=4), lambda x: x * _np_sigmoid(x),
           (SiLU, Sigmoid)),
    OpSpec("mish", F.mish, uniform((3, 4), low=-4, high=4),
           lambda x: x * np.tanh(np.log1p(np.exp(x))), (Mish, Softplus, Tanh, Sigmoid)),
    OpSpec("softplus", lambda x: F.softplus(x, beta=2.0), uniform((3, 4), low=-3, high=3),
           lambda x: np.log1p(np.exp(2 * x)) / 2, (Softplus, Sigmoid)),
    OpSpec("softplus_linear_region", lambda x: F.softplus(x, beta=2.0),
           uniform((3, 4), low=12, high=15), lambda x: x, (Softplus,)),
    OpSpec("softsign", F.softsign, away_from_zero((3, 4)), lambda x: x / (1 + np.abs(x)),
           (Softsign, Abs)),
    OpSpec("hardsigmoid", F.hardsigmoid, lambda r: [HARD_X + r.uniform(-0.2, 0.2, 6)],
           lambda x: np.minimum(np.maximum(x + 3, 0), 6) / 6, (Hardsigmoid,)),
    OpSpec("hard_sigmoid_keras", F.hard_sigmoid_keras, lambda r: [0.9 * HARD_X + r.uniform(-0.2, 0.2, 6)],
           lambda x: np.clip(0.2 * x + 0.5, 0, 1), (Clip,)),  # 0.9 * HARD_X: away from the kinks at +-2.5
    OpSpec("hardtanh", lambda x: F.hardtanh(x, -0.5, 1.2), lambda r: [HARD_X / 3],
           lambda x: np.clip(x, -0.5, 1.2), (Clip,)),
    OpSpec("relu6", F.relu6, lambda r: [HARD_X * 2], lambda x: np.clip(x, 0, 6), (Clip,)),
    OpSpec("rational_tanh", F.rational_tanh, away_from_zero((3, 4)), _np_rational_tanh,
           (RationalTanh, Abs)),
    OpSpec("cube", F.cube, uniform((3, 4)), lambda x: x**3, (PowScalar,)),
    OpSpec("softmax", lambda x: F.softmax(x, axis=1), uniform((2, 3, 4)),
           lambda x: np.exp(_np_log_softmax(x, 1)), (Softmax,)),
    OpSpec("log_softmax", F.log_softmax, uniform((2, 3, 4), low=-5, high=5),
           lambda x: _np_log_softmax(x, -1), (LogSoftmax,)),
    OpSpec("maxout", lambda x: F.maxout(x, 3, axis=1), distinct((2, 6, 2)),
           lambda x: x.reshape(2, 2, 3, 2).max(axis=2), (Max, Reshape)),
    # ----- losses ---------------------------------------------------------------------
    OpSpec("mse_loss", F.mse_loss, uniform((3, 4), (3, 4)), lambda a, b: ((a - b) ** 2).mean(),
           (MeanSquaredError,)),
    OpSpec("mse_loss_sum", lambda a, b: F.mse_loss(a, b, "sum"), uniform((5,), (5,)),
           lambda a, b: ((a - b) ** 2).sum(), (MeanSquaredError,)),
    OpSpec("l1_loss_none", lambda a, b: F.l1_loss(a, b, "none"), _apart((3, 4)),
           lambda a, b: np.abs(a - b), (Abs,)),
    OpSpec("huber_loss", lambda a, b: F.huber_loss(a, b, "sum", delta=0.8), uniform((3, 4), (3, 4)),
           lambda a, b: np.where(np.abs(a - b) < 0.8, 0.5 * (a - b) ** 2,
                                 0.8 * (np.abs(a - b) - 0.4)).sum(), (Where,)),
    OpSpec("smooth_l1_loss", lambda a, b: F.smooth_l1_loss(a, b, beta=0.6),
           uniform((3, 4), (3, 4)),
           lambda a, b: np.where(np.abs(a - b) < 0.6, 0.5 * (a - b) ** 2 / 0.6,
                                 np.abs(a - b) - 0.3).mean(), (Where,)),
    OpSpec("binary_cross_entropy", lambda p, y: F.binary_cross_entropy(p, y, BCE_W),
           lambda r: [r.uniform(0.05, 0.95, (3, 4)), r.uniform(0, 1, (3, 4))],
           lambda p, y: -(BCE_W * (y * np.log(p) + (1 - y) * np.log(1 - p))).mean(),
           (BinaryCrossEntropy, Clip)),
    OpSpec("bce_with_logits", lambda x, y: F.binary_cross_entropy_with_logits(
               x, y, BCE_W, "sum", pos_weight=POS_W),
           lambda r: [r.uniform(-4, 4, (3, 4)), r.uniform(0, 1, (3, 4))],
           lambda x, y: -(BCE_W * (POS_W * y * np.log(_np_sigmoid(x))
                                   + (1 - y) * np.log(1 - _np_sigmoid(x)))).sum(),
           (BCEWithLogits, Sigmoid, Softplus)),
    OpSpec("bce_with_logits_plain", F.binary_cross_entropy_with_logits,
           lambda r: [r.uniform(-4, 4, (3, 4)), r.uniform(0, 1, (3, 4))],
           lambda x, y: (np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))).mean(),
           (BCEWithLogits, Sigmoid)),
    OpSpec("cross_entropy", lambda x: F.cross_entropy(x, CE_T, CE_W, label_smoothing=0.1),
           uniform((5, 4)), lambda x: _np_cross_entropy(x, CE_T, CE_W, 0.1),
           (SoftmaxCrossEntropy, Softmax)),
    OpSpec("cross_entropy_plain", lambda x: F.cross_entropy(x, CE_T_PLAIN), uniform((5, 4)),
           lambda x: _np_cross_entropy(x, CE_T_PLAIN), (PlainSoftmaxCrossEntropy, Softmax)),
    OpSpec("cross_entropy_plain_sum", lambda x: F.cross_entropy(x, CE_T_PLAIN, reduction="sum"),
           uniform((5, 4)), lambda x: _np_cross_entropy(x, CE_T_PLAIN, reduction="sum"),
           (PlainSoftmaxCrossEntropy, Softmax)),
    OpSpec("cross_entropy_nd_none", lambda x: F.cross_entropy(x, CE_T4, reduction="none"),
           uniform((2, 4, 3, 2)), lambda x: _np_cross_entropy(x, CE_T4, reduction="none"),
           (SoftmaxCrossEntropy, Softmax)),
    OpSpec("cross_entropy_probs", lambda x, q: F.cross_entropy(x, q, CE_W, label_smoothing=0.2),
           lambda r: [r.uniform(-2, 2, (3, 4)), r.dirichlet(np.ones(4), 3)],
           lambda x, q: -((0.8 * q + 0.05) * CE_W * _np_log_softmax(x, 1)).sum(1).mean(),
           (LogSoftmax,)),
    OpSpec("cross_entropy_composite",
           lambda x: cross_entropy_composite(x, CE_T, CE_W, label_smoothing=0.1), uniform((5, 4)),
           lambda x: _np_cross_entropy(x, CE_T, CE_W, 0.1), (LogSoftmax, TakeAlongAxis, PutAlongAxis)),
    OpSpec("nll_loss", lambda x: F.nll_loss(x, CE_T, CE_W, reduction="sum"), uniform((5, 4)),
           lambda x: -sum(x[i, t] * CE_W[t] for i, t in enumerate(CE_T) if t != -100),
           (TakeAlongAxis, PutAlongAxis)),
    OpSpec("kl_div_batchmean", lambda lp, t: F.kl_div(lp, t, "batchmean"),
           lambda r: [r.uniform(-3, -0.1, (3, 4)), r.uniform(0.1, 1, (3, 4))],
           lambda lp, t: (t * (np.log(t) - lp)).sum() / 3, (Log, Where)),
    OpSpec("kl_div_log_target", lambda lp, t: F.kl_div(lp, t, "none", log_target=True),
           uniform((3, 4), (3, 4), low=-3, high=-0.1), lambda lp, t: np.exp(t) * (t - lp), (Exp,)),
    OpSpec("hinge_loss", lambda s: F.hinge_loss(s, HINGE_Y),
           lambda r: [HINGE_Y * (1.0 + away_from_zero((2, 3))(r)[0])],
           lambda s: np.maximum(0, 1 - HINGE_Y * s).mean(), (ReLU,)),
    OpSpec("squared_hinge_loss", lambda s: F.squared_hinge_loss(s, HINGE_Y),
           lambda r: [HINGE_Y * (1.0 + away_from_zero((2, 3))(r)[0])],
           lambda s: (np.maximum(0, 1 - HINGE_Y * s) ** 2).mean(), (ReLU,)),
    OpSpec("cosine_embedding_loss", lambda a, b: F.cosine_embedding_loss(a, b, COS_Y, 0.1),
           uniform((4, 5), (4, 5)), lambda a, b: _np_cosine_embedding(a, b, COS_Y, 0.1), (Sqrt,)),
    OpSpec("pairwise_distance", F.pairwise_distance, uniform((4, 5), (4, 5)),
           lambda a, b: np.sqrt(((a - b + 1e-6) ** 2).sum(-1)), (Sqrt,)),
    OpSpec("contrastive_loss", lambda d: F.contrastive_loss(d, PAIR_Y, margin=2.5),
           lambda r: [r.uniform(0.1, 2.0, 6)],
           lambda d: (PAIR_Y * d**2 + (1 - PAIR_Y) * np.maximum(0, 2.5 - d) ** 2).mean(), (ReLU,)),
]

# ----- recurrent cells and embedding (NumPy references from the published equations) -----
STEP_MASK = np.array([[1.0], [0.0], [1.0]])  # The middle sequence has ended: its state passes through.
EMB_IDX = np.array([[0, 3, 3], [4, 0, 2]])


def _mask_like(x: Any) -> np.ndarray:
    return STEP_MASK.astype(x.dtype)


def _np_lstm_step(xg: Any, h: Any, c: Any, w: Any, b: Any = 0.0, m: Any = 1.0) -> tuple[Any, Any]:
    i, f, g, o = np.split(xg + h @ w.T + b, 4, axis=1)
    c2 = _np_sigmoid(f) * c + _np_sigmoid(i) * np.tanh(g)
    h2 = _np_sigmoid(o) * np.tanh(c2)
    return h + m * (h2 - h), c + m * (c2 - c)


def _np_gru_step(xg: Any, h: Any, w: Any, b: Any = 0.0, m: Any = 1.0) -> Any:
    xr, xz, xn = np.split(xg, 3, axis=1)
    hr, hz, hn = np.split(h @ w.T + b, 3, axis=1)
    r, z = _np_sigmoid(xr + hr), _np_sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return h + m * ((1 - z) * n + z * h - h)


SEQ_MASKS = [np.array([[1.0], [1.0]]), np.array([[1.0], [0.0]]), np.array([[1.0], [0.0]])]


def _np_sequence(step: Callable, xg: Any, state: list[Any], masks: Any, reverse: bool) -> tuple:
    """Run a NumPy step over time (reverse: from the last step); outputs zero where masked."""
    outs = [None] * len(xg)
    for t in (reversed(range(len(xg))) if reverse else range(len(xg))):
        m = 1.0 if masks is None else masks[t]
        state = list(step(xg[t], *state, m))
        outs[t] = state[0] * m
    return (np.stack(outs), *state)


OPS += [
    OpSpec("lstm_sequence_masked_reverse",
           lambda xg, h, c, w, b: recurrent_sequence(
               "LSTM", xg, (h, c), w, b, [m.astype(xg.dtype) for m in SEQ_MASKS], reverse=True),
           uniform((3, 2, 8), (2, 2), (2, 2), (8, 2), (8,), low=-1, high=1),
           lambda xg, h, c, w, b: _np_sequence(lambda x, h, c, m: _np_lstm_step(x, h, c, w, b, m),
                                               xg, [h, c], SEQ_MASKS, True), (RecurrentSequence,)),
    # Unmasked LSTM sequences run the fused whole-sequence kernels (recurrent_lstm_sequence.LSTMKernels and
    # the native ones of nurinet._runtime.fast.lstm): both directions.
    OpSpec("lstm_sequence_fused", lambda xg, h, c, w, b: recurrent_sequence("LSTM", xg, (h, c), w, b),
           uniform((3, 2, 8), (2, 2), (2, 2), (8, 2), (8,), low=-1, high=1),
           lambda xg, h, c, w, b: _np_sequence(lambda x, h, c, m: _np_lstm_step(x, h, c, w, b, m),
                                               xg, [h, c], None, False), (RecurrentSequence,)),
    OpSpec("lstm_sequence_fused_reverse",
           lambda xg, h, c, w: recurrent_sequence("LSTM", xg, (h, c), w, reverse=True),
           uniform((4, 3, 12), (3, 3), (3, 3), (12, 3), low=-1, high=1),
           lambda xg, h, c, w: _np_sequence(lambda x, h, c, m: _np_lstm_step(x, h, c, w, 0.0, m),
                                            xg, [h, c], None, True), (RecurrentSequence,)),
    OpSpec("gru_sequence", lambda xg, h, w, b: recurrent_sequence("GRU", xg, (h,), w, b),
           uniform((3, 2, 6), (2, 2), (6, 2), (6,), low=-1, high=1),
           lambda xg, h, w, b: _np_sequence(lambda x, h, m: (_np_gru_step(x, h, w, b, m),), xg, [h], None,
                                            False), (RecurrentSequence,)),
    OpSpec("rnn_sequence_masked", lambda xg, h, w: recurrent_sequence(
               "RNN_TANH", xg, (h,), w, None, [m.astype(xg.dtype) for m in SEQ_MASKS]),
           uniform((3, 2, 2), (2, 2), (2, 2), low=-1, high=1),
           lambda xg, h, w: _np_sequence(lambda x, h, m: (h + m * (np.tanh(x + h @ w.T) - h),), xg, [h],
                                         SEQ_MASKS, False), (RecurrentSequence,)),
    OpSpec("rnn_step_tanh", rnn_step, uniform((3, 4), (3, 4), (4, 4), (4,), low=-1, high=1),
           lambda xg, h, w, b: np.tanh(xg + h @ w.T + b), (RNNCellFunction,)),
    OpSpec("rnn_step_relu_masked", lambda xg, h, w: rnn_step(xg, h, w, None, "relu", _mask_like(xg)),
           uniform((3, 4), (3, 4), (4, 4), low=-1, high=1),
           lambda xg, h, w: h + STEP_MASK * (np.maximum(xg + h @ w.T, 0) - h), (RNNCellFunction,)),
    OpSpec("lstm_step", lstm_step, uniform((3, 8), (3, 2), (3, 2), (8, 2), (8,), low=-1, high=1),
           _np_lstm_step, (LSTMCellFunction,)),
    OpSpec("lstm_step_masked_nobias", lambda xg, h, c, w: lstm_step(xg, h, c, w, None, _mask_like(xg)),
           uniform((3, 8), (3, 2), (3, 2), (8, 2), low=-1, high=1),
           lambda xg, h, c, w: _np_lstm_step(xg, h, c, w, m=STEP_MASK), (LSTMCellFunction,)),
    OpSpec("lstm_cell", lambda x, h, c, wi, wh, bi, bh: F.lstm_cell(x, (h, c), wi, wh, bi, bh),
           uniform((3, 2), (3, 2), (3, 2), (8, 2), (8, 2), (8,), (8,), low=-1, high=1),
           lambda x, h, c, wi, wh, bi, bh: _np_lstm_step(x @ wi.T + bi, h, c, wh, bh),
           (LSTMCellFunction, Linear)),
    OpSpec("gru_step", gru_step, uniform((3, 6), (3, 2), (6, 2), (6,), low=-1, high=1),
           _np_gru_step, (GRUCellFunction,)),
    OpSpec("gru_step_masked_nobias", lambda xg, h, w: gru_step(xg, h, w, None, _mask_like(xg)),
           uniform((3, 6), (3, 2), (6, 2), low=-1, high=1),
           lambda xg, h, w: _np_gru_step(xg, h, w, m=STEP_MASK), (GRUCellFunction,)),
    OpSpec("unstack", unstack, uniform((3, 2, 2)), lambda x: tuple(x), (StepSplit, StepStack)),
    OpSpec("stack_steps", lambda a, b, c: stack_steps([a, b, c]), uniform((2, 3), (2, 3), (2, 3)),
           lambda a, b, c: np.stack([a, b, c]), (StepStack, StepSplit)),
    OpSpec("embedding", lambda w: F.embedding(EMB_IDX, w, padding_idx=1), uniform((5, 3)),
           lambda w: w[EMB_IDX], (Embedding, EmbeddingScatter)),
]

# ----- normalization (fused Normalize against the NumPy formula) and channel dropout -----
BN_RM, BN_RV = np.array([0.3, -0.2, 0.1]), np.array([1.5, 0.7, 2.0])


def _np_normalize(x: Any, axes: tuple[int, ...], w: Any = 1.0, b: Any = 0.0, eps: float = 1e-5) -> Any:
    m = x.mean(axis=axes, keepdims=True)
    v = ((x - m) ** 2).mean(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def _np_group_norm(x: Any, groups: int, w: Any, b: Any) -> Any:
    n, c = x.shape[:2]
    y = _np_normalize(x.reshape(n, groups, -1), (2,)).reshape(x.shape)
    return y * w.reshape(1, c, 1) + b.reshape(1, c, 1)


OPS += [
    OpSpec("batch_norm_train", lambda x, w, b: batch_norm(x, None, None, w, b, training=True),
           uniform((4, 3, 2), (3,), (3,)),
           lambda x, w, b: _np_normalize(x, (0, 2), w.reshape(1, 3, 1), b.reshape(1, 3, 1)),
           (Normalize, Reshape)),
    OpSpec("batch_norm_2d_no_affine", lambda x: batch_norm(x, None, None, training=True, eps=1e-3),
           uniform((3, 2, 2, 2)), lambda x: _np_normalize(x, (0, 2, 3), eps=1e-3), (Normalize,)),
    OpSpec("batch_norm_weight_only", lambda x, w: batch_norm(x, None, None, w, None, training=True),
           uniform((5, 3), (3,)), lambda x, w: _np_normalize(x, (0,), w), (Normalize,)),
    OpSpec("batch_norm_eval",
           lambda x, w, b: batch_norm(x, BN_RM, BN_RV, w, b),
           uniform((4, 3, 2), (3,), (3,)),
           lambda x, w, b: ((x - BN_RM[:, None]) / np.sqrt(BN_RV[:, None] + 1e-5) * w[:, None] + b[:, None]),
           (Mul, Add, Reshape)),
    OpSpec("layer_norm", lambda x, w, b: layer_norm(x, 4, w, b), uniform((3, 4), (4,), (4,)),
           lambda x, w, b: _np_normalize(x, (1,), w, b), (Normalize, Reshape)),
    OpSpec("layer_norm_2d_no_affine", lambda x: layer_norm(x, (3, 4)), uniform((2, 3, 4)),
           lambda x: _np_normalize(x, (1, 2)), (Normalize,)),
    # The last axis without parameters: the native kernels' other branch (no weight, no parameter grads).
    OpSpec("layer_norm_last_axis_no_affine", lambda x: layer_norm(x, 5), uniform((2, 3, 5)),
           lambda x: _np_normalize(x, (2,)), (Normalize,)),
    OpSpec("group_norm", lambda x, w, b: group_norm(x, 2, w, b), uniform((2, 4, 3), (4,), (4,)),
           lambda x, w, b: _np_group_norm(x, 2, w, b), (Normalize, Reshape)),
    OpSpec("dropout2d", lambda x: dropout2d(x, 0.4, True, Generator(3)), uniform((3, 4, 2, 2)),
           lambda x: x * _kept(3, (3, 4, 1, 1), 0.4) / 0.6, (Dropout,)),
]

# ----- attention (NumPy reference: softmax(q k^T / sqrt(E) + mask) v) -----
ATTN_MASK = np.ones((3, 5), dtype=bool)  # True = takes part (SDPA's convention).
ATTN_MASK[0, 1] = ATTN_MASK[2, 4] = False
ATTN_MASK[1] = False  # A query that may attend to no key: zero weights, zero output.
ATTN_FLOAT_MASK = np.linspace(-1.0, 1.0, 12).reshape(3, 4)


def _np_attention(q: Any, k: Any, v: Any, mask: Any = None, drop: Any = None, weights: bool = False,
                  scale: float | None = None) -> Any:
    s = q @ np.swapaxes(k, -1, -2) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    if mask is not None:
        s = s + mask
    with np.errstate(invalid="ignore"):
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        # A query with every key masked gets zero weights; any other NaN stays (a NaN input's reach).
        p = np.where(np.isneginf(s).all(axis=-1, keepdims=True), 0.0, e / e.sum(axis=-1, keepdims=True))
    p = p if drop is None else p * drop
    return (p @ v, p) if weights else p @ v


def _np_split_heads(y: Any, heads: int, parts: int, batch_first: bool) -> Any:
    a, b, width = y.shape
    y5 = y.reshape(a, b, parts, heads, width // (parts * heads))
    axes = (0, 2, 1, 3) if batch_first else (1, 2, 0, 3)
    outs = tuple(y5[:, :, i].transpose(axes) for i in range(parts))
    return outs if parts > 1 else outs[0]


def _np_merge_heads(x: Any, batch_first: bool) -> Any:
    n, h, length, d = x.shape
    if batch_first:
        return x.transpose(0, 2, 1, 3).reshape(n, length, h * d)
    return x.transpose(2, 0, 1, 3).reshape(length, n, h * d)


_ATTN_DROP = _kept(7, (2, 3, 4), 0.3) / 0.7

OPS += [
    OpSpec("attention", scaled_dot_product_attention, uniform((2, 3, 4), (2, 5, 4), (2, 5, 3)),
           _np_attention, (Attention,)),
    OpSpec("attention_bool_mask_weights",
           lambda q, k, v: scaled_dot_product_attention(q, k, v, ATTN_MASK, need_weights=True),
           uniform((2, 3, 4), (2, 5, 4), (2, 5, 3)),
           lambda q, k, v: _np_attention(q, k, v, np.where(ATTN_MASK, 0.0, -np.inf), weights=True),
           (Attention,)),
    OpSpec("attention_causal_dropout_broadcast",
           lambda q, k, v: scaled_dot_product_attention(q, k, v, dropout_p=0.3, is_causal=True,
                                                        generator=Generator(7)),
           uniform((2, 3, 2), (1, 4, 2), (1, 4, 3)),
           lambda q, k, v: _np_attention(q, k, v, np.triu(np.full((3, 4), -np.inf), 1), _ATTN_DROP),
           (Attention,)),
    OpSpec("attention_float_mask_scale",
           lambda q, k, v: scaled_dot_product_attention(q, k, v, ATTN_FLOAT_MASK, scale=0.5),
           uniform((3, 2), (4, 2), (4, 2)),
           lambda q, k, v: _np_attention(q, k, v, ATTN_FLOAT_MASK, scale=0.5), (Attention,)),
    OpSpec("split_heads", lambda y: split_heads(y, 2, 3), uniform((2, 3, 12)),
           lambda y: _np_split_heads(y, 2, 3, True), (SplitHeads,)),
    OpSpec("split_heads_time_first", lambda y: split_heads(y, 2, 1, batch_first=False), uniform((3, 2, 4)),
           lambda y: _np_split_heads(y, 2, 1, False), (SplitHeads,)),
    OpSpec("merge_heads", merge_heads, uniform((2, 2, 3, 2)), lambda x: _np_merge_heads(x, True),
           (MergeHeads,)),
    OpSpec("merge_heads_time_first", lambda x: merge_heads(x, batch_first=False), uniform((2, 2, 3, 2)),
           lambda x: _np_merge_heads(x, False), (MergeHeads,)),
]

# ----- convolution, pooling and resizing (nurinet/functional/conv.py, pooling.py, upsample.py) -----
# NumPy references written from the definitions: explicit loops over kernel offsets, windows and bins.

def _np_conv2d(x: Any, w: Any, b: Any = None, stride: Any = (1, 1), pads: Any = ((0, 0), (0, 0)),
               dilation: Any = (1, 1), groups: int = 1) -> Any:
    x = np.pad(x, ((0, 0), (0, 0), *pads))
    (kh, kw), (sh, sw), (dh, dw) = w.shape[2:], stride, dilation
    ho, wo = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1, (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
    cg, og = x.shape[1] // groups, w.shape[0] // groups
    y = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = x[:, g * cg:(g + 1) * cg, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                          j * dw:j * dw + sw * (wo - 1) + 1:sw]
                y[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og:(g + 1) * og, :, i, j])
    return y if b is None else y + b[:, None, None]


def _np_conv_transpose2d(x: Any, w: Any, b: Any, stride: Any, padding: Any, output_padding: Any,
                         dilation: Any, groups: int) -> Any:
    """Each input pixel adds its weighted kernel into the output at stride spacing, then the borders are cut."""
    n, cin, h, wd = x.shape
    (kh, kw), (sh, sw), (dh, dw) = w.shape[2:], stride, dilation
    full = ((h - 1) * sh + dh * (kh - 1) + 1, (wd - 1) * sw + dw * (kw - 1) + 1)
    cg, og = cin // groups, w.shape[1]
    y = np.zeros((n, og * groups, full[0] + output_padding[0], full[1] + output_padding[1]))
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                y[:, g * og:(g + 1) * og, i * dh:i * dh + sh * (h - 1) + 1:sh, j * dw:j * dw + sw * (wd - 1) + 1:sw] += \
                    np.einsum("nchw,co->nohw", x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg, :, i, j])
    (ph, pw) = padding
    y = y[:, :, ph:y.shape[2] - ph, pw:y.shape[3] - pw]
    return y if b is None else y + b[:, None, None]


def _np_pool_len(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    out = math.ceil((n + 2 * p - d * (k - 1) - 1) / s) + 1 if ceil_mode else (n + 2 * p - d * (k - 1) - 1) // s + 1
    return out - 1 if ceil_mode and (out - 1) * s >= n + p else out


def _np_pool2d(x: Any, k: Any, s: Any, p: Any, d: Any = (1, 1), ceil_mode: bool = False, mode: str = "max",
               count_include_pad: bool = True) -> Any:
    """Max or average pooling window by window (PyTorch's divisor rule for the average)."""
    (h, w) = x.shape[2:]
    outs = [_np_pool_len(*args, ceil_mode) for args in zip((h, w), k, s, p, d)]
    y = np.zeros((*x.shape[:2], *outs))
    for oh in range(outs[0]):
        for ow in range(outs[1]):
            rows = [oh * s[0] - p[0] + i * d[0] for i in range(k[0])]
            cols = [ow * s[1] - p[1] + j * d[1] for j in range(k[1])]
            rows, cols = [r for r in rows if 0 <= r < h], [c for c in cols if 0 <= c < w]
            win = x[:, :, rows][:, :, :, cols]
            if mode == "max":
                y[:, :, oh, ow] = win.max(axis=(2, 3))
                continue
            hs, ws = oh * s[0] - p[0], ow * s[1] - p[1]
            size = (min(hs + k[0], h + p[0]) - hs) * (min(ws + k[1], w + p[1]) - ws)
            y[:, :, oh, ow] = win.sum(axis=(2, 3)) / (size if count_include_pad else len(rows) * len(cols))
    return y


def _np_adaptive(x: Any, out: Any, reduce: Callable) -> Any:
    (h, w) = x.shape[2:]
    y = np.zeros((*x.shape[:2], *out))
    for i in range(out[0]):
        for j in range(out[1]):
            hs, he = math.floor(i * h / out[0]), math.ceil((i + 1) * h / out[0])
            ws, we = math.floor(j * w / out[1]), math.ceil((j + 1) * w / out[1])
            y[:, :, i, j] = reduce(x[:, :, hs:he, ws:we], axis=(2, 3))
    return y


def _np_bilinear(x: Any, out: Any, align_corners: bool) -> Any:
    """Bilinear resize pixel by pixel from PyTorch's source-coordinate rule."""
    def source(o: int, n: int, m: int) -> tuple[int, int, float]:
        if align_corners:
            src = o * (n - 1) / (m - 1) if m > 1 else 0.0
        else:
            src = max((o + 0.5) * n / m - 0.5, 0.0)
        low = int(src)
        return low, min(low + 1, n - 1), src - low

    (h, w) = x.shape[2:]
    y = np.zeros((*x.shape[:2], *out))
    for i in range(out[0]):
        h0, h1, a = source(i, h, out[0])
        for j in range(out[1]):
            w0, w1, c = source(j, w, out[1])
            y[:, :, i, j] = ((1 - a) * ((1 - c) * x[:, :, h0, w0] + c * x[:, :, h0, w1])
                             + a * ((1 - c) * x[:, :, h1, w0] + c * x[:, :, h1, w1]))
    return y


def _np_nearest(x: Any, out: Any) -> Any:
    rows = [min(math.floor(i * x.shape[2] / out[0]), x.shape[2] - 1) for i in range(out[0])]
    cols = [min(math.floor(j * x.shape[3] / out[1]), x.shape[3] - 1) for j in range(out[1])]
    return x[:, :, rows][:, :, :, cols]


_CONV = (Conv2d, ConvTranspose2d, Conv2dWeightGrad)
_P = ((1, 1), (0, 0))

OPS += [
    OpSpec("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2),
           uniform((2, 4, 5, 6), (4, 2, 3, 2), (4,)),
           lambda x, w, b: _np_conv2d(x, w, b, (2, 1), _P, (1, 2), 2), _CONV),
    OpSpec("conv2d_same_even_kernel", lambda x, w: F.conv2d(x, w, padding="same"),
           uniform((2, 3, 5, 4), (2, 3, 2, 3)), lambda x, w: _np_conv2d(x, w, pads=((0, 1), (1, 1))), _CONV),
    # An image input with no gradient (a first layer): the weight gradient alone (its own fast path).
    OpSpec("conv2d_image_input", lambda x, w, b: F.conv2d(x, w, b, padding=1), uniform((2, 1, 5, 6), (3, 1, 3, 3), (3,)),
           lambda x, w, b: _np_conv2d(x, w, b, pads=((1, 1), (1, 1))), _CONV, grad_inputs=(1, 2)),
    OpSpec("conv2d_depthwise", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=3),
           uniform((2, 3, 5, 5), (6, 1, 3, 3), (6,)),
           lambda x, w, b: _np_conv2d(x, w, b, (2, 2), ((1, 1), (1, 1)), (1, 1), 3), _CONV),
    OpSpec("conv1d", lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2),
           uniform((2, 4, 7), (4, 2, 3), (4,)),
           lambda x, w, b: _np_conv2d(x[:, :, None], w[:, :, None], b, (1, 2), ((0, 0), (1, 1)), (1, 2), 2)[:, :, 0],
           _CONV + (Reshape,)),
    OpSpec("conv_transpose2d",
           lambda x, w, b: F.conv_transpose2d(x, w, b, stride=(2, 1), padding=(1, 0), output_padding=(1, 0),
                                              groups=2, dilation=(1, 2)),
           uniform((2, 4, 3, 4), (4, 2, 3, 2), (4,)),
           lambda x, w, b: _np_conv_transpose2d(x, w, b, (2, 1), (1, 0), (1, 0), (1, 2), 2), _CONV),
    OpSpec("conv_transpose2d_stride3", lambda x, w: F.conv_transpose2d(x, w, stride=3, padding=1, output_padding=2),
           uniform((2, 2, 3, 2), (2, 3, 2, 3)),
           lambda x, w: _np_conv_transpose2d(x, w, None, (3, 3), (1, 1), (2, 2), (1, 1), 1), _CONV),
    OpSpec("conv2d_reference",
           lambda x, w, b: conv2d_reference(x, w, b, stride=(1, 2), padding=1, dilation=(2, 1), groups=2),
           uniform((2, 4, 5, 5), (2, 2, 2, 3), (2,)),
           lambda x, w, b: _np_conv2d(x, w, b, (1, 2), ((1, 1), (1, 1)), (2, 1), 2), (GetItem, Einsum, Pad)),
    OpSpec("conv_transpose2d_reference",
           lambda x, w: conv_transpose2d_reference(x, w, stride=2, padding=1, output_padding=1, groups=2),
           uniform((2, 4, 3, 3), (4, 1, 3, 3)),
           lambda x, w: _np_conv_transpose2d(x, w, None, (2, 2), (1, 1), (1, 1), (1, 1), 2), (GetItem, Einsum, Flip)),
    OpSpec("max_pool2d_overlapping", lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
           distinct((2, 3, 6, 7)), lambda x: _np_pool2d(x, (3, 3), (2, 2), (1, 1), ceil_mode=True),
           (MaxPool2d, PutAlongAxis, TakeAlongAxis)),
    OpSpec("max_pool2d_disjoint", lambda x: F.max_pool2d(x, (2, 3)), distinct((2, 2, 5, 7)),
           lambda x: _np_pool2d(x, (2, 3), (2, 3), (0, 0)), (MaxPool2d,)),
    OpSpec("max_pool2d_dilated", lambda x: F.max_pool2d(x, 2, stride=(1, 2), dilation=2, padding=1),
           distinct((2, 2, 5, 6)), lambda x: _np_pool2d(x, (2, 2), (1, 2), (1, 1), (2, 2)), (MaxPool2d,)),
    OpSpec("max_pool1d", lambda x: F.max_pool1d(x, 3, 2, 1, ceil_mode=True), distinct((2, 3, 8)),
           lambda x: _np_pool2d(x[:, :, None], (1, 3), (1, 2), (0, 1), ceil_mode=True)[:, :, 0], (MaxPool2d,)),
    OpSpec("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
           uniform((2, 3, 6, 7)),
           lambda x: _np_pool2d(x, (3, 3), (2, 2), (1, 1), ceil_mode=True, mode="avg", count_include_pad=False),
           (AvgPool2d, AvgPool2dAdjoint)),
    OpSpec("avg_pool2d_include_pad", lambda x: F.avg_pool2d(x, (3, 2), (2, 1), (1, 1), ceil_mode=True),
           uniform((2, 2, 6, 5)), lambda x: _np_pool2d(x, (3, 2), (2, 1), (1, 1), ceil_mode=True, mode="avg"),
           (AvgPool2d, AvgPool2dAdjoint)),
    OpSpec("avg_pool1d", lambda x: F.avg_pool1d(x, 2), uniform((2, 3, 7)),
           lambda x: _np_pool2d(x[:, :, None], (1, 2), (1, 2), (0, 0), mode="avg")[:, :, 0], (AvgPool2d,)),
    OpSpec("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (3, 4)), uniform((2, 3, 7, 6)),
           lambda x: _np_adaptive(x, (3, 4), np.mean), (AxisResample,)),
    OpSpec("adaptive_max_pool2d", lambda x: F.adaptive_max_pool2d(x, (4, 3)), distinct((2, 3, 7, 5)),
           lambda x: _np_adaptive(x, (4, 3), np.max), (AdaptiveMaxPool2d,)),
    OpSpec("global_max_pool2d", lambda x: F.global_max_pool2d(x), distinct((2, 3, 4, 5)),
           lambda x: x.max(axis=(2, 3)), (AdaptiveMaxPool2d,)),
    OpSpec("interpolate_bilinear", lambda x: F.interpolate(x, size=(7, 4), mode="bilinear"),
           uniform((2, 2, 5, 6)), lambda x: _np_bilinear(x, (7, 4), False), (AxisResample,)),
    OpSpec("interpolate_bilinear_align", lambda x: F.interpolate(x, size=(3, 8), mode="bilinear", align_corners=True),
           uniform((2, 2, 5, 6)), lambda x: _np_bilinear(x, (3, 8), True), (AxisResample,)),
    OpSpec("interpolate_nearest", lambda x: F.interpolate(x, size=(8, 3), mode="nearest"),
           uniform((2, 2, 5, 6)), lambda x: _np_nearest(x, (8, 3)), (AxisResample,)),
    OpSpec("interpolate_linear_1d", lambda x: F.interpolate(x, size=8, mode="linear"),
           uniform((2, 3, 5)), lambda x: _np_bilinear(x[:, :, None], (1, 8), False)[:, :, 0], (AxisResample,)),
    OpSpec("global_avg_pool2d", lambda x: F.global_avg_pool2d(x, keepdims=True), uniform((2, 3, 4, 5)),
           lambda x: x.mean(axis=(2, 3), keepdims=True), (Mean,)),
]

# Ops that are Function subclasses but deliberately have no registry entry of their own,
# with the reason. ToDevice needs a GPU; it is tested in tests/test_backend.py.
NOT_REGISTERED = {ToDevice: "device moves need a GPU; see tests/test_backend.py"}

# Ops exempt from test_op_db.py::test_nan_reaches_only_what_the_reference_reaches, with the reason.
NAN_SPREADS: dict[str, str] = {
    "conv_transpose2d_reference": "the oracle's _dilate (nurinet/functional/conv_reference.py) makes the "
    "zeros it inserts between pixels as x * 0.0, so a NaN pixel turns its inserted neighbours into NaN; "
    "the fast conv_transpose2d passes the test",
}
# Ops that may refuse a NaN input with a ValueError instead (PyTorch refuses it too).
NAN_REFUSED: dict[str, str] = {
    "binary_cross_entropy": "the input must lie in [0, 1], the target too",
    "kl_div_batchmean": "the target must hold probabilities (>= 0)",
}

# The ops allowed a second, array-level gradient (``backward_arrays``), each with the benchmark that
# justifies it (docs/architecture.md, "The op contract"). benchmarks/backward_census.py lists the ops whose
# backward runs in each benchmark's step. Every other op has one formula, its Tensor ``backward``, which a
# plain backward() runs under no_grad. test_op_db.py::test_backward_arrays_only_on_hot_ops enforces this
# list and that each op's docstring names its reason in a line starting "backward_arrays:";
# test_hot_ops_run_in_their_benchmarks checks, with the census, the entries that name a benchmark.
_COMMON = "common layer, no benchmark runs it yet: "
_PART = "part of a hot op's array backward: "  # called by another op's backward_arrays, not by the engine
HOT_BACKWARD_ARRAYS: dict[str, str] = {
    "Linear": "the MLP, CNN, LSTM, XOR and Transformer benchmarks",
    "LinearReLU": "the MLP and CNN benchmarks (Sequential's Linear followed by ReLU)",
    "PlainSoftmaxCrossEntropy": "the MLP, CNN, LSTM and Transformer benchmarks",
    "ReLU": "the MLP, CNN and Transformer benchmarks",
    "Conv2d": "the CNN and conv benchmarks",
    "MaxPool2d": "the CNN and conv benchmarks",
    "Dropout": "the CNN and Transformer benchmarks",
    "Reshape": "the CNN and Transformer benchmarks",
    "RecurrentSequence": "the LSTM benchmark",
    "LSTMCellFunction": _PART + "RecurrentSequence (the LSTM benchmark) calls it per step",
    "GRUCellFunction": _PART + "RecurrentSequence (the LSTM benchmark) calls it per step",
    "RNNCellFunction": _PART + "RecurrentSequence (the LSTM benchmark) calls it per step",
    "GetItem": "the LSTM benchmark",
    "Transpose": "the LSTM benchmark",
    "Add": "the LSTM and Transformer benchmarks and bench_overhead's wide graph",
    "Attention": "the Transformer benchmark",
    "SplitHeads": "the Transformer benchmark",
    "MergeHeads": "the Transformer benchmark",
    "Normalize": "the Transformer benchmark (LayerNorm; BatchNorm shares it)",
    "Mean": "the Transformer benchmark",
    "Sigmoid": "the XOR benchmark",
    "Tanh": "the XOR benchmark and bench_overhead's chain of 50 ops",
    "MeanSquaredError": "the XOR benchmark",
    "Exp": "bench_overhead's chain of 50 ops",
    "AddScalar": "bench_overhead's chains",
    "MulScalar": "bench_overhead's chains and wide graph",
    "Sum": "bench_overhead's chains and wide graph",
    "SoftmaxCrossEntropy": _COMMON + "cross_entropy with class weights, ignore_index or label smoothing",
    "Softmax": _COMMON + "softmax outputs",
    "LogSoftmax": _COMMON + "log_softmax with nll_loss",
    "GELU": _COMMON + "the transformers' feed-forward activation",
    "BCEWithLogits": _COMMON + "the GANs' losses",
    "Embedding": _COMMON + "the sequence and transformer models",
    "AvgPool2d": _COMMON + "average pooling",
}
# Ops allowed a second formula while it is being removed (the test fails while an entry names an op
# without one): empty since BroadcastTo and SumTo lost theirs.
BACKWARD_ARRAYS_PENDING: dict[str, str] = {}
