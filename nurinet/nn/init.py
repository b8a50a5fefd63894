"""Weight initialization: fill a tensor in place with values from a written-out distribution.

Every function changes ``tensor.array`` in place (no graph is recorded; the
tensor's version counter goes up, so a graph that used the old values refuses
to back-propagate), returns the tensor, and draws from ``generator`` (a
:class:`nurinet.Generator`) or from the default generator that
``nurinet.manual_seed`` seeds; NumPy's global random state is never used.

Fans: for a weight of shape ``(out, in, *kernel)`` (a Linear weight is ``(out, in)``,
a Conv2d weight ``(out, in, kh, kw)``), ``fan_in = in * prod(kernel)`` and
``fan_out = out * prod(kernel)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Tensor
from nurinet.autograd.versions import increment_version
from nurinet.random import Generator, resolve

_GAINS = {
    "linear": 1.0, "identity": 1.0, "sigmoid": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0,
    "conv_transpose1d": 1.0, "conv_transpose2d": 1.0, "conv_transpose3d": 1.0,
    "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0), "selu": 3.0 / 4.0,
}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended scale of weights feeding ``nonlinearity``.

    ======================  ===================================
    nonlinearity            gain
    ======================  ===================================
    linear, conv*, sigmoid  1
    tanh                    5/3
    relu                    sqrt(2)
    leaky_relu              sqrt(2 / (1 + slope^2)), slope = ``param`` (default 0.01)
    selu                    3/4
    ======================  ===================================

    Raises:
        ValueError: an unknown nonlinearity or a non-numeric slope.
    """
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if not isinstance(slope, (int, float)) or isinstance(slope, bool):
            raise ValueError(f"calculate_gain: the leaky_relu slope must be a number, got {slope!r}")
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity not in _GAINS:
        raise ValueError(
            f"calculate_gain: unknown nonlinearity {nonlinearity!r}; use one of "
            f"{sorted([*_GAINS, 'leaky_relu'])}"
        )
    return _GAINS[nonlinearity]


def _check_tensor(tensor: Any, where: str) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{where} fills a nurinet Tensor or Parameter in place, got {type(tensor).__name__}")
    if tensor.array.dtype.kind != "f":
        raise TypeError(f"{where} needs a floating-point tensor, got dtype {tensor.dtype}")
    return tensor


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)``.

    Raises:
        ValueError: the tensor has fewer than 2 dimensions (a bias has no fans).
    """
    if tensor.ndim < 2:
        raise ValueError(
            f"fan in and fan out need a weight with at least 2 dimensions (out, in, *kernel); got "
            f"shape {tensor.shape}. Initialize biases with uniform_, normal_ or zeros_ instead"
        )
    receptive = int(np.prod(tensor.shape[2:], dtype=np.int64))
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"cannot initialize a tensor of shape {tensor.shape}: its {mode} is 0")
    return fan


def _fill(tensor: Tensor, values: Any) -> Tensor:
    """Write ``values`` into ``tensor.array`` in place, in the tensor's dtype and on its device."""
    if tensor.device != "cpu":
        values = backend.to_device(np.asarray(values, dtype=tensor.dtype), tensor.device)
    tensor.array[...] = values
    increment_version(tensor)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return _fill(_check_tensor(tensor, "zeros_"), 0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return _fill(_check_tensor(tensor, "ones_"), 1)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    return _fill(_check_tensor(tensor, "constant_"), val)


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Generator | None = None) -> Tensor:
    """Fill with draws from U(a, b), the uniform distribution on [a, b)."""
    _check_tensor(tensor, "uniform_")
    if not a <= b:
        raise ValueError(f"uniform_: the lower bound a={a} must not exceed the upper bound b={b}")
    return _fill(tensor, resolve(generator).uniform(a, b, tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Generator | None = None) -> Tensor:
    """Fill with draws from N(mean, std^2)."""
    _check_tensor(tensor, "normal_")
    if not std >= 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return _fill(tensor, resolve(generator).normal(mean, std, tensor.shape))


def _normal_mass(mean: float, std: float, a: float, b: float) -> float:
    """P(a <= X <= b) for X ~ N(mean, std^2)."""
    scale = std * math.sqrt(2.0)
    return 0.5 * (math.erf((b - mean) / scale) - math.erf((a - mean) / scale))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: Generator | None = None) -> Tensor:
    """Fill with draws from N(mean, std^2) truncated to [a, b].

    The density is the normal density restricted to [a, b] and renormalized;
    ``a`` and ``b`` are absolute bounds (not multiples of ``std``). Values are
    drawn from the normal and out-of-range ones drawn again (rejection sampling).

    Raises:
        ValueError: ``a >= b``, ``std <= 0``, or [a, b] holds under 1e-4 of the
            normal's mass (rejection would take too long: center it nearer ``mean``).
    """
    _check_tensor(tensor, "trunc_normal_")
    if not (std > 0 and a < b):
        raise ValueError(f"trunc_normal_ needs std > 0 and a < b, got std={std}, a={a}, b={b}")
    mass = _normal_mass(mean, std, a, b)
    if mass < 1e-4:
        raise ValueError(
            f"trunc_normal_: [a, b] = [{a}, {b}] holds only {mass:.2e} of the mass of N({mean}, {std}^2); "
            "choose bounds closer to the mean"
        )
    rng = resolve(generator)
    values = rng.normal(mean, std, tensor.shape)
    outside = (values < a) | (values > b)
    while outside.any():
        values[outside] = rng.normal(mean, std, int(outside.sum()))
        outside = (values < a) | (values > b)
    return _fill(tensor, values)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    """Glorot/Xavier uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).

    The variance, gain^2 * 2 / (fan_in + fan_out), balances forward and backward signals.
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_check_tensor(tensor, "xavier_uniform_"))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    """Glorot/Xavier normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_check_tensor(tensor, "xavier_normal_"))
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: Generator | None = None) -> Tensor:
    """He/Kaiming uniform: U(-b, b) with b = gain * sqrt(3 / fan).

    ``gain = calculate_gain(nonlinearity, a)`` (``a`` is the leaky_relu slope; with
    the defaults gain = sqrt(2), ReLU's) and ``fan`` is fan_in or fan_out by ``mode``.
    The standard deviation is gain / sqrt(fan).
    """
    fan = _fan(_check_tensor(tensor, "kaiming_uniform_"), mode)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: Generator | None = None) -> Tensor:
    """He/Kaiming normal: N(0, std^2) with std = gain / sqrt(fan).

    ``gain = calculate_gain(nonlinearity, a)``; ``fan`` is fan_in or fan_out by ``mode``.
    """
    fan = _fan(_check_tensor(tensor, "kaiming_normal_"), mode)
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), generator)


def lecun_uniform_(tensor: Tensor, generator: Generator | None = None) -> Tensor:
    """LeCun uniform: U(-b, b) with b = sqrt(3 / fan_in) (variance 1 / fan_in)."""
    fan = _fan(_check_tensor(tensor, "lecun_uniform_"), "fan_in")
    bound = math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator)


def lecun_normal_(tensor: Tensor, generator: Generator | None = None) -> Tensor:
    """LeCun normal: N(0, std^2) with std = sqrt(1 / fan_in) (the init SELU networks assume)."""
    fan = _fan(_check_tensor(tensor, "lecun_normal_"), "fan_in")
    return normal_(tensor, 0.0, math.sqrt(1.0 / fan), generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Generator | None = None) -> Tensor:
    """A (semi-)orthogonal matrix times ``gain``, uniformly distributed (Haar measure).

    The tensor is viewed as a matrix W of shape (rows, cols) = (shape[0], size / shape[0]).
    W = gain * Q, where Q comes from the QR decomposition of a standard normal matrix
    with the signs of R's diagonal folded in (that makes Q uniform). Then
    W W^T = gain^2 I when rows <= cols, and W^T W = gain^2 I otherwise.
    """
    _check_tensor(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_ needs a tensor with at least 2 dimensions, got shape {tensor.shape}")
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    if rows == 0 or cols == 0:
        return tensor
    normal = resolve(generator).standard_normal((rows, cols))
    tall = normal if rows >= cols else normal.T  # QR needs the tall orientation
    q, r = np.linalg.qr(tall)
    q = q * np.sign(np.diag(r))
    matrix = q if rows >= cols else q.T
    return _fill(tensor, (gain * matrix).reshape(tensor.shape))


__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]
