"""Fully connected layers: Linear, Maxout, and the shape helpers Identity and Flatten."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet.autograd.tensor import Parameter, Tensor, as_tensor
from nurinet.functional._util import check_input_dtype
from nurinet.nn import init
from nurinet.nn.activation import is_plain_relu
from nurinet.nn.module import Module
from nurinet.nn.regularizers import (
    Regularizer,
    check_activity_regularizer,
    record_activity,
)
from nurinet.random import Generator


def _check_size(value: Any, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _float_dtype(dtype: Any, owner: str) -> np.dtype:
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    if dtype.kind != "f":
        raise TypeError(f"{owner}: parameters must have a floating-point dtype, got {dtype}")
    return dtype


def _resolve_activation(activation: Any) -> Callable | None:
    """``None``, a callable (function or Module), or a name looked up in ``nn.activation``."""
    if activation is None or (callable(activation) and not isinstance(activation, str)):
        return activation
    if not isinstance(activation, str):
        raise TypeError(
            f"activation must be None, a name such as 'relu', or a callable, got {type(activation).__name__}"
        )
    try:
        from nurinet.nn.activation import get_activation
    except ImportError as error:  # the activation registry is not part of this installation
        raise ValueError(f"activation {activation!r} given by name, but nurinet.nn.activation is not "
                         "available; pass the function or module instead") from error
    return get_activation(activation)


class Linear(Module):
    """A fully connected layer: ``y = x W^T + b``, optionally followed by an activation.

    Initialization (as PyTorch): weight and bias ~ U(-k, k) with k = 1 / sqrt(in_features).

    Args:
        in_features: Size of each input sample (the last dim of the input).
        out_features: Size of each output sample.
        bias: Learn an additive bias.
        activation: Applied to the output: ``None``, a name (``"relu"``, ``"tanh"``,
            ... resolved by ``nurinet.nn.activation.get_activation``), a function or a Module.
        activity_regularizer: A penalty on the layer's output (after the activation), Keras's
            argument: ``nn.regularizers.L1(1e-3)`` or ``KLSparsity(rho=0.05)`` for sparse
            activations; ``Model.fit`` adds it to the loss (see ``nn.ActivityRegularization``).
        dtype: Parameter dtype (float32 by default).
        generator: Random source of the initialization (default: ``nurinet.manual_seed``'s).

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, out_features)``

    Attributes:
        weight: Parameter of shape ``(out_features, in_features)``.
        bias: Parameter of shape ``(out_features,)``, or ``None``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: Any = None,
                 dtype: Any = None, generator: Generator | None = None,
                 activity_regularizer: Regularizer | None = None) -> None:
        super().__init__()
        self.in_features = _check_size(in_features, "in_features", "Linear")
        self.out_features = _check_size(out_features, "out_features", "Linear")
        dtype = _float_dtype(dtype, "Linear")
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype))
        self.bias = Parameter(np.empty(self.out_features, dtype)) if bias else None
        self.activation = _resolve_activation(activation)
        self.activity_regularizer = check_activity_regularizer(activity_regularizer, "Linear")
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """Draw weight and bias from U(-k, k), k = 1 / sqrt(in_features)."""
        bound = 1.0 / math.sqrt(self.in_features)
        init.uniform_(self.weight, -bound, bound, generator)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound, generator)

    def forward(self, x: Tensor) -> Tensor:
        if self.activation is not None and is_plain_relu(self.activation):
            y = self._affine(x, relu=True)  # the same values, one op (F.linear_relu)
        else:
            y = self._affine(x, relu=False)
            y = y if self.activation is None else self.activation(y)
        if self.activity_regularizer is not None:
            record_activity(self, y, self.activity_regularizer)
        return y

    def runs_fused_with(self, following: Any) -> bool:
        """Whether ``relu(self(x))``, ``following`` being a ReLU, may run as one op
        (:meth:`forward_with_relu`): a plain ``Linear`` with no activation or activity regularizer, and
        neither it nor the ReLU watched (:meth:`~nurinet.nn.Module.is_watched`), since a watcher must see
        the layer's own output, which the fused op never makes."""
        return (type(self) is Linear and self.activation is None and self.activity_regularizer is None
                and not self.is_watched() and is_plain_relu(following))

    def forward_with_relu(self, x: Tensor) -> Tensor:
        """``relu(self(x))`` as one op (:func:`nurinet.functional.linear_relu`), where
        :meth:`runs_fused_with` allows it; :class:`~nurinet.nn.Sequential` and the Transformer layers call it."""
        return self._affine(x, relu=True)

    def _affine(self, x: Tensor, relu: bool) -> Tensor:
        x = as_tensor(x)
        _check_input(self, x, self.in_features, self.weight)
        return (F.linear_relu if relu else F.linear)(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        text = f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        if self.activation is not None and not isinstance(self.activation, Module):
            text += f", activation={getattr(self.activation, '__name__', repr(self.activation))}"
        if self.activity_regularizer is not None:
            text += f", activity_regularizer={self.activity_regularizer!r}"
        return text


def _check_input(layer: Module, x: Tensor, in_features: int, weight: Tensor) -> None:
    """Raise a clear error for an input whose features or dtype do not fit the layer."""
    if x.ndim == 0 or x.shape[-1] != in_features:
        raise ValueError(
            f"{layer!r} expects inputs of shape (*, {in_features}) but got shape {x.shape} "
            f"(weight shape {weight.shape}): the last dim of the input must equal in_features"
        )
    check_input_dtype(x, weight, type(layer).__name__)


class Maxout(Module):
    """Maxout: the maximum of ``pieces`` linear functions, per output feature.

    ``y_j = max_k (x W_{j,k}^T + b_{j,k})`` for k = 1..pieces; a learned convex
    piecewise-linear activation (Goodfellow et al., 2013). Initialization as
    Linear: weight and bias ~ U(-k, k), k = 1 / sqrt(in_features).

    Args:
        in_features: Size of each input sample.
        out_features: Size of each output sample.
        pieces: Number of linear pieces per output feature (at least 1).
        dtype: Parameter dtype (float32 by default).
        generator: Random source of the initialization.

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, out_features)``

    Attributes:
        weight: Parameter of shape ``(out_features * pieces, in_features)``; rows
            ``j * pieces .. (j + 1) * pieces - 1`` are the pieces of output j.
        bias: Parameter of shape ``(out_features * pieces,)``.
    """

    def __init__(self, in_features: int, out_features: int, pieces: int, dtype: Any = None,
                 generator: Generator | None = None) -> None:
        super().__init__()
        self.in_features = _check_size(in_features, "in_features", "Maxout")
        self.out_features = _check_size(out_features, "out_features", "Maxout")
        self.pieces = _check_size(pieces, "pieces", "Maxout")
        dtype = _float_dtype(dtype, "Maxout")
        rows = self.out_features * self.pieces
        self.weight = Parameter(np.empty((rows, self.in_features), dtype))
        self.bias = Parameter(np.empty(rows, dtype))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """Draw weight and bias from U(-k, k), k = 1 / sqrt(in_features)."""
        bound = 1.0 / math.sqrt(self.in_features)
        init.uniform_(self.weight, -bound, bound, generator)
        init.uniform_(self.bias, -bound, bound, generator)

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        _check_input(self, x, self.in_features, self.weight)
        return F.maxout(F.linear(x, self.weight, self.bias), self.pieces, axis=-1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, pieces={self.pieces}"


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. to remove a layer from a model).

    Arguments given to the constructor are accepted and ignored, as in PyTorch.

    Shape:
        - Input: ``(*)``
        - Output: ``(*)``, the same tensor
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Merges dims ``start_dim`` .. ``end_dim`` (inclusive) into one.

    Args:
        start_dim: First dim to merge (default 1: keep the batch dim).
        end_dim: Last dim to merge (default -1: the last one).

    Shape:
        - Input: ``(*, S_start, ..., S_end, *)``
        - Output: ``(*, S_start * ... * S_end, *)``, e.g. ``(N, C, H, W) -> (N, C*H*W)``
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        start, end = self.start_dim, self.end_dim
        if not (-x.ndim <= start < x.ndim and -x.ndim <= end < x.ndim) or start % x.ndim > end % x.ndim:
            raise ValueError(
                f"{self!r} cannot flatten an input of shape {x.shape}: start_dim and end_dim must be "
                f"dims of the input ({-x.ndim}..{x.ndim - 1}) with start_dim before end_dim"
            )
        return F.flatten(x, start, end)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
