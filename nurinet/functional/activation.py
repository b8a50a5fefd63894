"""Activation functions: sigmoid, ReLU and its relatives, ELU/SELU/CELU, GELU, SiLU, Mish,
softplus, softsign, hard sigmoid and hard tanh, rational tanh, cube, identity, softmax,
log-softmax and maxout.

Each activation is one fused ``Function``: a single NumPy expression forward and a
``backward`` written with Tensor ops (so it can be differentiated again). The hot ones
(tests/op_db.py, ``HOT_BACKWARD_ARRAYS``) also have a ``backward_arrays`` fast path on raw
arrays for a plain ``backward()``, which reuses what forward saved.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from nurinet._runtime.fast import activation as fast_activation
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional import elementwise as ew
from nurinet.functional import reduction as rd
from nurinet.functional._util import normalize_axis, pick_axis, xp_of
from nurinet.functional.shape import reshape
from nurinet.functional.special import erf, erf_array

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
INV_SQRT2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_TANH_K = math.sqrt(2.0 / math.pi)
GELU_TANH_C = 0.044715


def _const(array: Any) -> Tensor:
    return Tensor._wrap(array, False)


class ActivationSource(NamedTuple):
    """What an output activation was computed from, kept on its output Tensor.

    ``softmax``, ``sigmoid`` and ``log_softmax`` record their input (the logits) on the
    Tensor they return, as Keras keeps ``_keras_logits``: a loss that takes probabilities
    can then compute its stable logit form instead (never a second softmax, never
    ``log`` of a rounded probability), and ``Model.predict`` can hand back the logits.
    """

    activation: str  # "softmax", "sigmoid" or "log_softmax"
    axis: int | None  # the class axis of softmax and log_softmax (non-negative)
    logits: Tensor


def activation_source(t: Any) -> ActivationSource | None:
    """The :class:`ActivationSource` of ``t``, or None when ``t`` is not such an output."""
    return getattr(t, "activation_source", None) if isinstance(t, Tensor) else None


def _with_source(out: Tensor, activation: str, axis: int | None, logits: Any) -> Tensor:
    out.activation_source = ActivationSource(activation, axis, as_tensor(logits))
    return out


def sigmoid_array(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` on an array, without overflow warnings for any ``x``.

    Four passes, in place. Below about -88 (float32) ``exp(-x)`` is inf and ``1 / inf`` the 0 wanted
    (as PyTorch computes it); the overflow is expected, so NumPy's warning is silenced.
    """
    xp = xp_of(x)
    y = xp.empty_like(x, dtype=x.dtype if x.dtype.kind == "f" else np.float64)
    with np.errstate(over="ignore"):
        xp.exp(xp.negative(x, out=y), out=y)
    y += 1.0
    return xp.reciprocal(y, out=y)


def softplus_array(x: Any) -> Any:
    """``log(1 + exp(x))`` on an array, without overflow for any ``x``."""
    xp = xp_of(x)
    return xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(x, 0.0)


class _Pointwise(Function):
    """An elementwise activation whose backward is ``gy * f'(x)``, with ``f'`` (``derivative``) in Tensor ops."""

    def backward(self, gy: Tensor) -> Tensor:
        return gy * self.derivative(self.inputs[0])

    def derivative(self, x: Tensor) -> Tensor:
        raise NotImplementedError


class Sigmoid(Function):
    """The logistic function ``1 / (1 + e^-x)``; ``dy/dx = y (1 - y)``.

    backward_arrays: the XOR benchmark.
    """

    def forward(self, x: Any) -> Any:
        self.y = sigmoid_array(x)
        return self.y

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return gy * y * (1.0 - y)

    def backward_arrays(self, gy: Any) -> Any:
        return gy * (self.y - self.y * self.y)


class ReLU(Function):
    """``max(x, 0)``; the gradient at 0 is 0.

    backward_arrays: the MLP, CNN and Transformer benchmarks.
    """

    def forward(self, x: Any) -> Any:
        y = fast_activation.relu(x)
        return xp_of(x).maximum(x, 0) if y is None else y

    def backward(self, gy: Tensor) -> Tensor:
        return relu_grad(gy, self.inputs[0].array)

    def backward_arrays(self, gy: Any) -> Any:
        return relu_grad_array(gy, self.inputs[0].array)


def relu_grad(gy: Tensor, x: Any) -> Tensor:
    """ReLU's gradient ``gy * (x > 0)`` as a recorded Tensor op; ``x`` is ReLU's input or output (the
    same signs) as an array. 0 at 0, and a NaN ``x`` masks."""
    return gy * _const((x > 0).astype(x.dtype))


def relu_grad_array(gy: Any, x: Any) -> Any:
    """:func:`relu_grad` on arrays: the native pass where it applies, else NumPy."""
    gx = fast_activation.relu_grad(gy, x)
    return gy * (x > 0) if gx is None else gx


class LeakyReLU(Function):
    """``x`` for ``x > 0``, else ``slope * x``; ``slope`` is a number or an array (RReLU)."""

    def __init__(self, slope: Any) -> None:
        self.slope = slope

    def forward(self, x: Any) -> Any:
        return xp_of(x).where(x > 0, x, x * self.slope)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0].array
        return gy * _const(xp_of(x).where(x > 0, 1.0, self.slope).astype(x.dtype))


class PReLU(Function):
    """Leaky ReLU whose slope ``weight`` is learned (broadcast against ``x``)."""

    def forward(self, x: Any, weight: Any) -> Any:
        return xp_of(x).where(x > 0, x, x * weight)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, weight = self.inputs
        positive = x.array > 0
        gx = gy * ew.where(positive, 1.0, weight) if self.needs_input_grad[0] else None
        gw = ew.where(positive, 0.0, gy * x) if self.needs_input_grad[1] else None
        return gx, gw


class ELU(Function):
    """``scale * (x if x > 0 else alpha * (exp(x * input_scale) - 1))``.

    One op for ELU (scale 1, input_scale 1), SELU and CELU (input_scale 1/alpha).
    """

    def __init__(self, alpha: float, scale: float = 1.0, input_scale: float = 1.0) -> None:
        self.alpha, self.scale, self.input_scale = alpha, scale, input_scale

    def forward(self, x: Any) -> Any:
        xp = xp_of(x)
        # expm1 of min(x, 0): the branch not taken must not overflow for large x.
        negative = xp.expm1(xp.minimum(x, 0.0) * self.input_scale) * self.alpha
        return xp.where(x > 0, x, negative) * self.scale

    def backward(self, gy: Tensor) -> Tensor:
        # For x <= 0, dy/dx = input_scale * (y + scale * alpha).
        y = self.output()
        negative = (y + self.scale * self.alpha) * self.input_scale
        return gy * ew.where(self.inputs[0].array > 0, self.scale, negative)


class GELU(_Pointwise):
    """``x * Phi(x)`` with ``Phi`` the standard normal CDF, through :func:`erf`.

    backward_arrays: common layer, no benchmark runs it yet: the transformers' feed-forward activation.
    """

    def forward(self, x: Any) -> Any:
        self.cdf = (erf_array(x * INV_SQRT2) + 1.0) * 0.5
        return x * self.cdf

    def backward_arrays(self, gy: Any) -> Any:
        x = self.inputs[0].array
        return gy * (self.cdf + x * xp_of(x).exp(x * x * -0.5) * INV_SQRT_2PI)

    def derivative(self, x: Tensor) -> Tensor:
        cdf = (erf(x * INV_SQRT2) + 1.0) * 0.5
        return cdf + x * ew.exp(x * x * -0.5) * INV_SQRT_2PI


class GELUTanh(_Pointwise):
    """GELU's tanh approximation ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""

    def forward(self, x: Any) -> Any:
        t = xp_of(x).tanh((x + x * x * x * GELU_TANH_C) * GELU_TANH_K)
        return x * (t + 1.0) * 0.5

    def derivative(self, x: Tensor) -> Tensor:
        t = ew.tanh((x + x * x * x * GELU_TANH_C) * GELU_TANH_K)
        inner = (x * x * (3.0 * GELU_TANH_C) + 1.0) * GELU_TANH_K
        return (t + 1.0) * 0.5 + x * (1.0 - t * t) * inner * 0.5


class SiLU(_Pointwise):
    """``x * sigmoid(x)`` (swish); ``dy/dx = s (1 + x (1 - s))``."""

    def forward(self, x: Any) -> Any:
        return x * sigmoid_array(x)

    def derivative(self, x: Tensor) -> Tensor:
        s = sigmoid(x)
        return s * (x * (1.0 - s) + 1.0)


class Mish(_Pointwise):
    """``x * tanh(softplus(x))``; ``dy/dx = t + x sigmoid(x) (1 - t^2)``."""

    def forward(self, x: Any) -> Any:
        return x * xp_of(x).tanh(softplus_array(x))

    def derivative(self, x: Tensor) -> Tensor:
        t = ew.tanh(softplus(x))
        return t + x * sigmoid(x) * (1.0 - t * t)


class Softplus(_Pointwise):
    """``log(1 + exp(beta x)) / beta``, and ``x`` itself where ``beta x > threshold``."""

    def __init__(self, beta: float, threshold: float) -> None:
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Any) -> Any:
        bx = x * self.beta
        return xp_of(x).where(bx > self.threshold, x, softplus_array(bx) / self.beta)

    def derivative(self, x: Tensor) -> Tensor:
        return ew.where(x.array * self.beta > self.threshold, 1.0, sigmoid(x * self.beta))


class Softsign(Function):
    """``x / (1 + |x|)``; ``dy/dx = 1 / (1 + |x|)^2``."""

    def forward(self, x: Any) -> Any:
        return x / (xp_of(x).abs(x) + 1.0)

    def backward(self, gy: Tensor) -> Tensor:
        d = ew.abs(self.inputs[0]) + 1.0
        return gy / (d * d)


class Hardsigmoid(Function):
    """PyTorch's hard sigmoid ``relu6(x + 3) / 6``: 0 below -3, 1 above 3, linear between."""

    def forward(self, x: Any) -> Any:
        return xp_of(x).clip(x * (1.0 / 6.0) + 0.5, 0.0, 1.0)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0].array
        inside = ((x > -3.0) & (x < 3.0)).astype(x.dtype) * (1.0 / 6.0)
        return gy * _const(inside)


class RationalTanh(_Pointwise):
    """Deeplearning4j's rational tanh (see :func:`rational_tanh`)."""

    A, B, C = 1.7159, 2.0 / 3.0, 1.41645

    def forward(self, x: Any) -> Any:
        # sgn(y) (1 - 1/D) with D = 1 + |y| + y^2 + C y^4 equals y (1 + |y| + C |y|^3) / D.
        y = x * self.B
        a = xp_of(x).abs(y)
        a2 = a * a
        return y * (a * a2 * self.C + a + 1.0) / (a2 * a2 * self.C + a2 + a + 1.0) * self.A

    def derivative(self, x: Tensor) -> Tensor:
        a = ew.abs(x * self.B)
        a2 = a * a
        d = a2 * a2 * self.C + a2 + a + 1.0
        return (a * a2 * (4.0 * self.C) + a * 2.0 + 1.0) / (d * d) * (self.A * self.B)


def softmax_array(x: Any, axis: int) -> Any:
    """``exp(x) / sum(exp(x))`` along ``axis`` on an array, shifted by the maximum (no overflow)."""
    e = xp_of(x).exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


class Softmax(Function):
    """``exp(x) / sum(exp(x))`` along ``axis``, shifted by the maximum (no overflow).

    backward_arrays: common layer, no benchmark runs it yet: softmax outputs.
    """

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        self.y = softmax_array(x, self.axis)
        return self.y

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return y * (gy - rd.sum(gy * y, axis=self.axis, keepdims=True))

    def backward_arrays(self, gy: Any) -> Any:
        return self.y * (gy - (gy * self.y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """``x - logsumexp(x)`` along ``axis``; ``dx = gy - softmax(x) * sum(gy)``.

    backward_arrays: common layer, no benchmark runs it yet: log_softmax with nll_loss.
    """

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        xp = xp_of(x)
        shifted = x - x.max(axis=self.axis, keepdims=True)
        shifted -= xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        self.y = shifted
        return shifted

    def backward(self, gy: Tensor) -> Tensor:
        return gy - ew.exp(self.output()) * rd.sum(gy, axis=self.axis, keepdims=True)

    def backward_arrays(self, gy: Any) -> Any:
        return gy - xp_of(gy).exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


# ----- wrappers ---------------------------------------------------------------------


def sigmoid(x: Tensor) -> Tensor:
    """Elementwise logistic sigmoid ``1 / (1 + e^-x)``, stable for any ``x``.

    The output remembers ``x`` (see :class:`ActivationSource`)."""
    return _with_source(Sigmoid()(x), "sigmoid", None, x)


def relu(x: Tensor) -> Tensor:
    """Elementwise ``max(x, 0)`` (gradient 0 at 0)."""
    return ReLU()(x)


def relu6(x: Tensor) -> Tensor:
    """Elementwise ``min(max(x, 0), 6)``."""
    return ew.clip(x, 0.0, 6.0)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``x`` where positive, ``negative_slope * x`` elsewhere."""
    return LeakyReLU(float(negative_slope))(x)


def prelu(x: Tensor, weight: Tensor) -> Tensor:
    """Leaky ReLU with a learned slope: one shared value or one per channel (axis 1).

    Args:
        x: Input of shape ``(N, C, *)`` (or any shape when ``weight`` has one element).
        weight: Slopes of shape ``(1,)`` or ``(C,)``.
    """
    x, weight = as_tensor(x), as_tensor(weight)
    if weight.numel() != 1:
        channels = x.shape[1] if x.ndim >= 2 else 1  # Below 2-D there is no channel axis.
        if weight.ndim != 1 or weight.numel() != channels:
            raise ValueError(
                f"prelu: weight has shape {weight.shape} but the input of shape {x.shape} has "
                f"{channels} channels along axis 1; give weight 1 element (shared) or {channels}"
            )
        weight = reshape(weight, (channels,) + (1,) * (x.ndim - 2))
    weight = ew.astype(weight, x.dtype)
    return PReLU()(x, weight)


def rrelu(
    x: Tensor,
    lower: float = 1.0 / 8.0,
    upper: float = 1.0 / 3.0,
    training: bool = False,
    generator: Any = None,
) -> Tensor:
    """Randomized leaky ReLU (Xu et al. 2015).

    While training, each element's negative slope is drawn from ``U(lower, upper)``
    (from ``generator``, or nurinet's default generator); otherwise the slope is the
    mean ``(lower + upper) / 2``.
    """
    if not 0 <= lower <= upper:
        raise ValueError(f"rrelu: need 0 <= lower <= upper, got lower={lower}, upper={upper}")
    if not training:
        return LeakyReLU((lower + upper) / 2.0)(x)
    from nurinet.random import resolve

    x = as_tensor(x)
    slope = resolve(generator).uniform(lower, upper, x.shape).astype(x.dtype)
    return LeakyReLU(xp_of(x.array).asarray(slope))(x)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere (Clevert et al. 2015)."""
    return ELU(float(alpha))(x)


def selu(x: Tensor) -> Tensor:
    """``scale * elu(x, alpha)`` with the self-normalizing constants of Klambauer et al. 2017
    (``alpha = 1.6732632...``, ``scale = 1.0507009...``)."""
    return ELU(SELU_ALPHA, SELU_SCALE)(x)


def celu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`` (Barron 2017)."""
    if alpha == 0:
        raise ValueError("celu: alpha must be non-zero")
    return ELU(float(alpha), 1.0, 1.0 / alpha)(x)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit ``x * Phi(x)`` (Hendrycks and Gimpel 2016).

    Args:
        x: Input.
        approximate: ``"none"`` for the exact form through :func:`~nurinet.functional.erf`,
            ``"tanh"`` for ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
    """
    if approximate == "none":
        return GELU()(x)
    if approximate == "tanh":
        return GELUTanh()(x)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def silu(x: Tensor) -> Tensor:
    """``x * sigmoid(x)``, also called swish."""
    return SiLU()(x)


def mish(x: Tensor) -> Tensor:
    """``x * tanh(softplus(x))`` (Misra 2019)."""
    return Mish()(x)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, and ``x`` where ``beta * x > threshold`` (as PyTorch)."""
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero")
    return Softplus(float(beta), float(threshold))(x)


def softsign(x: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    return Softsign()(x)


def hardsigmoid(x: Tensor) -> Tensor:
    """Hard sigmoid, PyTorch's definition ``relu6(x + 3) / 6`` = ``clip(x / 6 + 1/2, 0, 1)``.

    (Keras 2 and Deeplearning4j used ``clip(0.2 x + 0.5, 0, 1)``; nurinet follows PyTorch
    and Keras 3.)
    """
    return Hardsigmoid()(x)


def hard_sigmoid_keras(x: Tensor) -> Tensor:
    """Keras 2's and Deeplearning4j's hard sigmoid ``clip(0.2 x + 0.5, 0, 1)``.

    The same name meant two functions: PyTorch's (and Keras 3's) ``hardsigmoid`` is
    ``clip(x / 6 + 1/2, 0, 1)``, flat outside ``[-3, 3]``, while Keras 2's
    ``hard_sigmoid`` and DL4J's ``HARDSIGMOID`` use the steeper ``0.2 x + 0.5``, flat
    outside ``[-2.5, 2.5]``. nurinet's ``hardsigmoid`` (and its alias ``hard_sigmoid``)
    is PyTorch's; this is the other one, under a name that says whose it is, so a
    network ported from Keras 2 or DL4J keeps its exact outputs. A composite of
    ``0.2 x + 0.5`` and ``clip``: its gradient is 0.2 inside ``(-2.5, 2.5)``, 0 outside.
    """
    return ew.clip(as_tensor(x) * 0.2 + 0.5, 0.0, 1.0)


def hardtanh(x: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """``x`` clipped to ``[min_val, max_val]``."""
    if not min_val < max_val:
        raise ValueError(f"hardtanh: need min_val < max_val, got {min_val} and {max_val}")
    return ew.clip(x, float(min_val), float(max_val))


def rational_tanh(x: Tensor) -> Tensor:
    """Deeplearning4j's ``RationalTanh``: ``1.7159 * tanh_approx(2x/3)`` with
    ``tanh_approx(y) = sgn(y) * (1 - 1 / (1 + |y| + y^2 + 1.41645 * y^4))``.

    The formula is the one documented by DL4J's ``ActivationRationalTanh``
    (``org.nd4j.linalg.activations.impl``), after arXiv:1508.01292v3; its range is
    ``(-1.7159, 1.7159)`` and its slope at 0 is ``1.7159 * 2/3``.
    """
    return RationalTanh()(x)


def cube(x: Tensor) -> Tensor:
    """Elementwise ``x ** 3`` (Deeplearning4j's ``CUBE`` activation)."""
    return as_tensor(x) ** 3


def identity(x: Tensor) -> Tensor:
    """``x`` unchanged (the "linear" activation)."""
    return x


def softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis``: non-negative, sums to 1, never overflows.

    The output remembers ``x`` (see :class:`ActivationSource`)."""
    (ax,) = normalize_axis(pick_axis(axis, dim, "softmax", default=-1), as_tensor(x).ndim)
    return _with_source(Softmax(ax)(x), "softmax", ax, x)


def log_softmax(x: Tensor, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """``log(softmax(x))`` along ``axis``, computed as ``x - logsumexp(x)`` (stable).

    The output remembers ``x`` (see :class:`ActivationSource`)."""
    (ax,) = normalize_axis(pick_axis(axis, dim, "log_softmax", default=-1), as_tensor(x).ndim)
    return _with_source(LogSoftmax(ax)(x), "log_softmax", ax, x)


def maxout(x: Tensor, pieces: int, axis: int = 1) -> Tensor:
    """Maxout (Goodfellow et al. 2013): the maximum over groups of ``pieces`` along ``axis``.

    The ``C = K * pieces`` entries along ``axis`` form ``K`` consecutive groups
    (entries ``k * pieces`` to ``(k + 1) * pieces - 1`` make output ``k``). After a
    linear layer with ``K * pieces`` outputs this is the maxout unit over ``pieces``
    linear pieces.
    """
    x = as_tensor(x)
    (ax,) = normalize_axis(axis, x.ndim)
    size = x.shape[ax]
    if pieces < 1 or size % pieces:
        raise ValueError(
            f"maxout: axis {axis} of the input (shape {x.shape}) has {size} entries, which is "
            f"not a multiple of pieces={pieces}"
        )
    grouped = reshape(x, x.shape[:ax] + (size // pieces, pieces) + x.shape[ax + 1 :])
    return rd.max(grouped, axis=ax + 1)


swish = silu
hard_sigmoid = hardsigmoid
hard_tanh = hardtanh

