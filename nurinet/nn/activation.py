"""Activation layers: one Module per activation of ``nurinet.functional``, and
``Activation(name)``, which picks one by name as Deeplearning4j's ``activation("relu")``.

Every activation layer works elementwise (``Softmax`` and ``LogSoftmax`` along ``dim``):

Shape:
    - Input: ``(*)``, any shape
    - Output: ``(*)``, the shape of the input
"""

from __future__ import annotations

from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet.autograd.tensor import Parameter, Tensor, as_tensor
from nurinet.functional._util import check_input_dtype
from nurinet.functional.activation_registry import activation_key
from nurinet.nn.module import Module
from nurinet.random import Generator


class Sigmoid(Module):
    """``1 / (1 + e^-x)`` (see :func:`nurinet.functional.sigmoid`).

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """Hyperbolic tangent.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class ReLU(Module):
    """``max(x, 0)``.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class ReLU6(Module):
    """``min(max(x, 0), 6)``.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.relu6(x)


class LeakyReLU(Module):
    """``x`` where positive, ``negative_slope * x`` elsewhere.

    Args:
        negative_slope: Slope for negative inputs (0.01 by default).

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class PReLU(Module):
    """Leaky ReLU with a learned negative slope (He et al. 2015).

    Args:
        num_parameters: 1 for one slope shared by all channels, or the number of
            channels (axis 1 of the input) for one slope each.
        init: Initial slope (0.25, as in the paper and PyTorch).
        dtype: Parameter dtype (float32 by default).

    Shape:
        - Input: ``(N, C, *)``, or any shape when ``num_parameters`` is 1
        - Output: the shape of the input

    Attributes:
        weight: Parameter of shape ``(num_parameters,)``.
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype: Any = None) -> None:
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, (int, np.integer)) \
                or num_parameters < 1:
            raise ValueError(f"PReLU: num_parameters must be a positive integer, got {num_parameters!r}")
        self.num_parameters = int(num_parameters)
        self.init = float(init)
        self.weight = Parameter(np.full(self.num_parameters, self.init, dtype or np.float32))

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        if self.num_parameters > 1 and (x.ndim < 2 or x.shape[1] != self.num_parameters):
            raise ValueError(f"PReLU: weight has shape ({self.num_parameters},) but the input of shape {x.shape} "
                             f"is not (N, {self.num_parameters}, *): num_parameters > 1 gives one slope per "
                             f"channel (dim 1)")
        check_input_dtype(x, self.weight, "PReLU")
        return F.prelu(x, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Randomized leaky ReLU: a random slope per element in ``U(lower, upper)`` while
    training, the mean slope ``(lower + upper) / 2`` in evaluation mode.

    Args:
        lower: Smallest slope (1/8).
        upper: Largest slope (1/3).
        generator: Source of the random slopes (default: ``nurinet.manual_seed``'s).

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def __init__(self, lower: float = 1.0 / 8.0, upper: float = 1.0 / 3.0,
                 generator: Generator | None = None) -> None:
        super().__init__()
        if not 0 <= lower <= upper:
            raise ValueError(f"RReLU: need 0 <= lower <= upper, got lower={lower}, upper={upper}")
        self.lower, self.upper, self.generator = float(lower), float(upper), generator

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        check_input_dtype(x, None, "RReLU")  # random float slopes: an integer input would be truncated
        return F.rrelu(x, self.lower, self.upper, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}"


class ELU(Module):
    """``x`` where positive, ``alpha * (exp(x) - 1)`` elsewhere.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class SELU(Module):
    """Scaled ELU with the self-normalizing constants (Klambauer et al. 2017).

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.selu(x)


class CELU(Module):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        if alpha == 0:
            raise ValueError("CELU: alpha must be non-zero")
        self.alpha = float(alpha)

    def forward(self, x: Tensor) -> Tensor:
        return F.celu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class GELU(Module):
    """Gaussian error linear unit ``x * Phi(x)``.

    Args:
        approximate: ``"none"`` (exact, through erf) or ``"tanh"``.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """``x * sigmoid(x)`` (swish).

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class Mish(Module):
    """``x * tanh(softplus(x))``.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.mish(x)


class Softplus(Module):
    """``log(1 + exp(beta * x)) / beta``, linear where ``beta * x > threshold``.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        if beta == 0:
            raise ValueError("Softplus: beta must be non-zero")
        self.beta, self.threshold = float(beta), float(threshold)

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softsign(Module):
    """``x / (1 + |x|)``.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.softsign(x)


class Hardsigmoid(Module):
    """PyTorch's hard sigmoid ``relu6(x + 3) / 6``.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.hardsigmoid(x)


class HardsigmoidKeras(Module):
    """Keras 2's and Deeplearning4j's hard sigmoid ``clip(0.2 x + 0.5, 0, 1)``.

    Not :class:`Hardsigmoid`, which is PyTorch's ``clip(x / 6 + 1/2, 0, 1)``: the two
    frameworks give one name to two slopes (see ``F.hard_sigmoid_keras``).

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.hard_sigmoid_keras(x)


class Hardtanh(Module):
    """``x`` clipped to ``[min_val, max_val]``.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        if not min_val < max_val:
            raise ValueError(f"Hardtanh: need min_val < max_val, got {min_val} and {max_val}")
        self.min_val, self.max_val = float(min_val), float(max_val)

    def forward(self, x: Tensor) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class RationalTanh(Module):
    """Deeplearning4j's rational tanh ``1.7159 * tanh_approx(2x/3)``
    (see :func:`nurinet.functional.rational_tanh`).

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.rational_tanh(x)


class Cube(Module):
    """``x ** 3``.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.cube(x)


class Softmax(Module):
    """``exp(x) / sum(exp(x))`` along ``dim``.

    Args:
        dim: The axis that sums to 1 (the last one by default).

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``, non-negative, summing to 1 along ``dim``
    """

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = int(dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, axis=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """``log(softmax(x))`` along ``dim``, computed stably.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``
    """

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = int(dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, axis=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


# Names whose activation is stateful, so Activation(name) builds the layer itself.
_LAYERS = {"prelu": PReLU, "rrelu": RReLU}


class Activation(Module):
    """An activation given by name (``Activation("relu")``, ``Activation("leaky_relu")``)
    or as a function, for configurations that name each layer's activation.

    Names are resolved by :func:`nurinet.functional.get_activation` (case, ``_`` and ``-``
    ignored), including activations added with ``F.register_activation``. ``"prelu"`` and
    ``"rrelu"`` build a :class:`PReLU` (one shared slope) or :class:`RReLU` layer, so they
    learn and follow ``train()`` / ``eval()``.

    Args:
        activation: A name, or a function of a Tensor.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``

    Raises:
        ValueError: the name is unknown (the message lists the known names).
    """

    def __init__(self, activation: Any) -> None:
        super().__init__()
        self.name = activation if isinstance(activation, str) else getattr(
            activation, "__name__", type(activation).__name__)
        layer = _LAYERS.get(activation_key(activation)) if isinstance(activation, str) else None
        self.layer = layer() if layer is not None else None
        self.fn = None if layer is not None else F.get_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x) if self.layer is not None else self.fn(x)

    def extra_repr(self) -> str:
        return repr(self.name)


def is_plain_relu(activation: Any) -> bool:
    """Whether ``activation`` computes exactly ``F.relu`` and nothing watches its output: ``F.relu``, or an
    :class:`ReLU` or ``Activation("relu")`` with no hook and no ``forward`` replaced. A linear layer may
    then run with it as one op (:func:`nurinet.functional.linear_relu`)."""
    if activation is F.relu:
        return True
    if type(activation) is ReLU:
        return not activation.is_watched()
    if type(activation) is Activation and not activation.is_watched():
        return is_plain_relu(activation.layer if activation.layer is not None else activation.fn)
    return False


def get_activation(activation: Any) -> Any:
    """An activation layer for ``activation``: a name gives an :class:`Activation`
    module; a callable (function or Module) and ``None`` are returned unchanged.

    Raises:
        ValueError: the name is unknown (the message lists the known names).
    """
    if activation is None or callable(activation):
        return activation
    return Activation(activation)


Swish = SiLU
