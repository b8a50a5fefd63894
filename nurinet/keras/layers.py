"""Keras-named layers over nurinet's operations: channels-last, built on their first call.

Each layer keeps its weights in Keras's layout and under Keras's names: ``Dense.kernel``
``(in, units)``, ``Conv2D.kernel`` ``(kh, kw, in, filters)``, ``bias``, and
``BatchNormalization.gamma``/``beta``/``moving_mean``/``moving_variance``, so that Keras's
``get_weights()`` arrays copy over as they are. Images are channels-last ``(N, H, W, C)``
(Keras's default ``data_format="channels_last"``); the convolution and pooling layers
transpose to nurinet's channels-first operations inside and back, so ``Flatten`` after them
flattens in Keras's order (H, W, C) and a ``Dense`` after it sees what Keras's would.

The weights are created by ``build(input_shape)`` on the first call, from the input's shape
(Keras's lazy build); ``nurinet.keras.Sequential`` calls it at construction when the model
starts with ``Input(shape=...)``. A built layer's ``get_config`` includes the shape it was
built for (``input_shape``, without the batch dim), so that saving and loading rebuild it
before the weights are loaded. Weights are created on the CPU: build (or construct with
``Input``) before ``model.to(device)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Parameter, Tensor, as_tensor
from nurinet.functional import pooling as P
from nurinet.keras.symbolic import Input, SymbolicCall
from nurinet.nn import init
from nurinet.nn.module import Module
from nurinet.nn.regularizers import (
    Regularizer,
    add_regularizer,
    check_activity_regularizer,
    get_regularizer,
    record_activity,
)

__all__ = [
    "Activation",
    "Add",
    "Average",
    "AveragePooling2D",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Input",
    "Layer",
    "MaxPooling2D",
    "Maximum",
    "Minimum",
    "Multiply",
    "Subtract",
]


# ----- helpers ----------------------------------------------------------------------------------
def _pair(value: Any, name: str, owner: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    value = tuple(int(v) for v in value)
    if len(value) != 2 or any(v < 1 for v in value):
        raise ValueError(f"{owner}: {name} must be a positive int or a pair of them, got {value!r}")
    return value  # type: ignore[return-value]


def _padding(padding: str, owner: str) -> str:
    padding = str(padding).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"{owner}: padding must be 'valid' or 'same', got {padding!r}")
    return padding


def _data_format(data_format: Any, owner: str) -> str:
    data_format = "channels_last" if data_format is None else str(data_format).lower()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{owner}: data_format must be 'channels_last' or 'channels_first', "
                         f"got {data_format!r}")
    return data_format


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's "same" padding: output ceil(size / stride), the odd extra one after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras's fans: a kernel ``(*spatial, in, out)`` has fan_in = prod(spatial) * in."""
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _initialize(param: Tensor, initializer: Any, owner: str) -> None:
    if callable(initializer):
        param.array[...] = np.asarray(initializer(tuple(param.shape)), dtype=param.array.dtype)
        return
    key = str(initializer).lower().replace("_", "").replace(" ", "")
    fan_in, fan_out = _fans(tuple(param.shape))
    uniform = {"glorotuniform": 6.0 / (fan_in + fan_out), "xavieruniform": 6.0 / (fan_in + fan_out),
               "heuniform": 6.0 / fan_in, "lecununiform": 3.0 / fan_in}
    normal = {"glorotnormal": 2.0 / (fan_in + fan_out), "xaviernormal": 2.0 / (fan_in + fan_out),
              "henormal": 2.0 / fan_in, "lecunnormal": 1.0 / fan_in}
    if key in ("zeros", "zero"):
        init.zeros_(param)
    elif key in ("ones", "one"):
        param.array[...] = 1
    elif key in uniform:
        limit = math.sqrt(uniform[key])
        init.uniform_(param, -limit, limit)
    elif key in normal:  # Keras's truncated normal: cut at 2 std, std rescaled by .87962566
        std = math.sqrt(normal[key]) / 0.87962566103423978
        init.trunc_normal_(param, 0.0, std, -2.0 * std, 2.0 * std)
    else:
        raise ValueError(f"{owner}: unknown initializer {initializer!r}; known: glorot_uniform, "
                         "glorot_normal, he_uniform, he_normal, lecun_uniform, lecun_normal, zeros, "
                         "ones, or a callable shape -> array")


def _regularizer(value: Any, owner: str) -> Regularizer | None:
    if value is None or isinstance(value, Regularizer):
        return value
    if isinstance(value, str):
        return get_regularizer(value)()
    raise TypeError(f"{owner}: a regularizer must be a nurinet.nn.regularizers.Regularizer, its "
                    f"name or None, got {value!r}")


def _activation(activation: Any) -> Any:
    if activation is None or (isinstance(activation, str) and activation.lower() == "linear"):
        return None
    return F.get_activation(activation)  # nurinet's activation name table (softmax keeps its logits)


# ----- the base class ---------------------------------------------------------------------------
class Layer(SymbolicCall, Module):
    """A Keras-style layer: ``build(input_shape)`` makes the weights on the first call,
    ``call(x)`` computes the output. Called on a ``keras.Input`` (a KerasTensor) it records a
    node of a functional model instead (``nurinet/keras/symbolic.py``).

    Args:
        input_shape: The shape of one sample (no batch dim); builds the layer now (Keras 2's
            argument, and how a saved layer is rebuilt).
        name: Keras's layer name: a functional ``keras.Model`` registers the layer under it
            (``state_dict`` keys, ``get_layer``, per-output losses); None: Keras's default,
            the class name in snake_case (``dense``, ``dense_1``...).
    """

    _rank: int | None = None  # the input rank the layer takes, batch included (None: any)
    _layout = ""

    def __init__(self, input_shape: Any = None, name: str | None = None) -> None:
        super().__init__()
        self.name = name
        self.built = False
        self.built_input_shape: tuple[int, ...] | None = None
        if input_shape is not None:
            self.build((None, *tuple(int(s) for s in input_shape)))

    def build(self, input_shape: tuple[Any, ...]) -> None:
        """Create the weights for inputs of ``input_shape`` (batch dim first, may be None)."""
        self._check_rank(input_shape)
        self.built_input_shape = tuple(int(s) for s in input_shape[1:])
        self.built = True

    def call(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Any, training: bool | None = None) -> Tensor:
        """``call(x)``, building the layer first; ``training`` (Keras's argument, as a subclassed
        model's ``call`` passes it on) overrides the module's mode for this call."""
        x = as_tensor(x)
        if not self.built:
            self.build(tuple(x.shape))
        self._check_rank(tuple(x.shape))
        if training is None or bool(training) == self.training:
            return self.call(x)
        was_training = self.training
        self.train(bool(training))
        try:
            return self.call(x)
        finally:
            self.train(was_training)

    def _check_rank(self, shape: tuple[Any, ...]) -> None:
        if self._rank is not None and len(shape) != self._rank:
            raise ValueError(f"{type(self).__name__} expects a {self._rank}-D input {self._layout}, got "
                             f"shape {tuple(shape)}")

    def _config(self) -> dict[str, Any]:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, with the built shape (``input_shape``) once built."""
        config = self._config()
        if self.built_input_shape is not None:
            config["input_shape"] = self.built_input_shape
        if getattr(self, "name", None):
            config["name"] = self.name
        return config

    def get_weights(self) -> list[np.ndarray]:
        """The weights as NumPy arrays, in Keras's order and layout."""
        return [np.array(p.array) for p in self._weight_tensors()]

    def set_weights(self, weights: list[Any]) -> None:
        """Copy Keras-layout arrays (``keras_layer.get_weights()``) into the weights."""
        tensors = self._weight_tensors()
        if len(weights) != len(tensors):
            raise ValueError(f"{type(self).__name__}.set_weights: expected {len(tensors)} arrays, "
                             f"got {len(weights)}")
        for tensor, value in zip(tensors, weights):
            value = np.asarray(value)
            if value.shape != tuple(tensor.shape):
                raise ValueError(f"{type(self).__name__}.set_weights: shape {value.shape} does not fit "
                                 f"weight of shape {tuple(tensor.shape)}")
            tensor.array[...] = value.astype(tensor.array.dtype)

    def _weight_tensors(self) -> list[Tensor]:
        return [t for t in (*self._parameters.values(), *self._buffers.values()) if t is not None]


# ----- Dense ------------------------------------------------------------------------------------
class _WeightedLayer(Layer):
    """What Dense and Conv2D share: a kernel and a bias made at build time, the activation and the
    regularizers."""

    def _weight_options(self, activation: Any, use_bias: bool, kernel_initializer: Any, bias_initializer: Any,
                        kernel_regularizer: Any, activity_regularizer: Any) -> None:
        where = type(self).__name__
        self.activation = activation
        self._fn = _activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer = _regularizer(kernel_regularizer, where)
        self.activity_regularizer = check_activity_regularizer(_regularizer(activity_regularizer, where), where)
        self.kernel: Parameter | None = None
        self.bias: Parameter | None = None

    def _make_weights(self, kernel_shape: tuple[int, ...], bias_size: int) -> None:
        where = type(self).__name__
        self.kernel = Parameter(np.empty(kernel_shape, np.float32))
        _initialize(self.kernel, self.kernel_initializer, where)
        if self.use_bias:
            self.bias = Parameter(np.empty(bias_size, np.float32))
            _initialize(self.bias, self.bias_initializer, where)
        if self.kernel_regularizer is not None:
            add_regularizer(self, "kernel", self.kernel_regularizer)

    def _activate(self, y: Tensor) -> Tensor:
        if self._fn is not None:
            y = self._fn(y)
        if self.activity_regularizer is not None:
            record_activity(self, y, self.activity_regularizer)
        return y

    def _weight_config(self) -> dict[str, Any]:
        return {"activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer, "bias_initializer": self.bias_initializer,
                "kernel_regularizer": self.kernel_regularizer, "activity_regularizer": self.activity_regularizer}


class Dense(_WeightedLayer):
    """Keras's ``Dense``: ``activation(x @ kernel + bias)`` over the last axis.

    ``kernel`` is ``(in, units)`` (Keras's layout; ``nn.Linear.weight`` is its transpose).
    """

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, activity_regularizer: Any = None,
                 input_shape: Any = None, name: str | None = None) -> None:
        Module.__init__(self)
        self.units = int(units)
        if self.units < 1:
            raise ValueError(f"Dense: units must be a positive int, got {units!r}")
        self._weight_options(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                             activity_regularizer)
        Layer.__init__(self, input_shape, name)

    def build(self, input_shape: tuple[Any, ...]) -> None:
        if len(input_shape) < 2:
            raise ValueError(f"Dense expects an input (N, ..., features), got shape {tuple(input_shape)}")
        self._make_weights((int(input_shape[-1]), self.units), self.units)
        Layer.build(self, input_shape)

    def call(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"Dense({self.units}) was built for inputs of {self.kernel.shape[0]} features, "
                             f"got shape {tuple(x.shape)}")
        y = F.matmul(x, self.kernel)
        if self.bias is not None:
            y = y + self.bias
        return self._activate(y)

    def _config(self) -> dict[str, Any]:
        return {"units": self.units, **self._weight_config()}

    def extra_repr(self) -> str:
        return f"units={self.units}, activation={self.activation!r}"


# ----- Conv2D -----------------------------------------------------------------------------------
class Conv2D(_WeightedLayer):
    """Keras's ``Conv2D`` on channels-last images ``(N, H, W, C)`` (or channels-first with
    ``data_format="channels_first"``); ``kernel`` is ``(kh, kw, C_in, filters)``.

    ``padding="same"`` pads as TensorFlow does (output ``ceil(H / stride)``, the odd extra
    row/column after), for any stride.
    """

    _rank = 4

    def __init__(self, filters: int, kernel_size: Any, strides: Any = (1, 1), padding: str = "valid",
                 data_format: Any = "channels_last", dilation_rate: Any = (1, 1), activation: Any = None,
                 use_bias: bool = True, kernel_initializer: Any = "glorot_uniform",
                 bias_initializer: Any = "zeros", kernel_regularizer: Any = None,
                 activity_regularizer: Any = None, input_shape: Any = None, name: str | None = None) -> None:
        Module.__init__(self)
        self.filters = int(filters)
        if self.filters < 1:
            raise ValueError(f"Conv2D: filters must be a positive int, got {filters!r}")
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2D")
        self.strides = _pair(strides, "strides", "Conv2D")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate", "Conv2D")
        self.padding = _padding(padding, "Conv2D")
        self.data_format = _data_format(data_format, "Conv2D")
        self._layout = "(N, H, W, C)" if self.data_format == "channels_last" else "(N, C, H, W)"
        self._weight_options(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                             activity_regularizer)
        Layer.__init__(self, input_shape, name)

    def _channels(self, shape: tuple[Any, ...]) -> int:
        return int(shape[-1] if self.data_format == "channels_last" else shape[1])

    def build(self, input_shape: tuple[Any, ...]) -> None:
        self._check_rank(input_shape)
        self._make_weights((*self.kernel_size, self._channels(input_shape), self.filters), self.filters)
        Layer.build(self, input_shape)

    def call(self, x: Tensor) -> Tensor:
        if self._channels(x.shape) != self.kernel.shape[2]:
            raise ValueError(f"Conv2D({self.filters}) was built for {self.kernel.shape[2]} input channels, "
                             f"got shape {tuple(x.shape)} ({self.data_format} {self._layout})")
        if self.data_format == "channels_last":
            x = F.permute(x, 0, 3, 1, 2)
        if self.padding == "same":
            pads = [_same_pads(x.shape[2 + i], self.kernel_size[i], self.strides[i], self.dilation_rate[i])
                    for i in range(2)]
            if any(p for pair in pads for p in pair):
                x = F.pad(x, [(0, 0), (0, 0), *pads])
        weight = F.permute(self.kernel, 3, 2, 0, 1)  # (filters, C_in, kh, kw)
        try:
            y = F.conv2d(x, weight, self.bias, self.strides, 0, self.dilation_rate)
        except ValueError as error:
            raise ValueError(f"Conv2D({self.filters}, kernel_size={self.kernel_size}): {error}") from None
        if self.data_format == "channels_last":
            y = F.permute(y, 0, 2, 3, 1)
        return self._activate(y)

    def _config(self) -> dict[str, Any]:
        return {"filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate, **self._weight_config()}

    def extra_repr(self) -> str:
        return (f"filters={self.filters}, kernel_size={self.kernel_size}, strides={self.strides}, "
                f"padding={self.padding!r}, activation={self.activation!r}")


# ----- pooling ----------------------------------------------------------------------------------
class _Pooling2D(Layer):
    _rank = 4

    def __init__(self, pool_size: Any = (2, 2), strides: Any = None, padding: str = "valid",
                 data_format: Any = "channels_last", input_shape: Any = None,
                 name: str | None = None) -> None:
        Module.__init__(self)
        owner = type(self).__name__
        self.pool_size = _pair(pool_size, "pool_size", owner)
        self.strides = self.pool_size if strides is None else _pair(strides, "strides", owner)
        self.padding = _padding(padding, owner)
        self.data_format = _data_format(data_format, owner)
        self._layout = "(N, H, W, C)" if self.data_format == "channels_last" else "(N, C, H, W)"
        Layer.__init__(self, input_shape, name)

    def call(self, x: Tensor) -> Tensor:
        if self.data_format == "channels_last":
            x = F.permute(x, 0, 3, 1, 2)
        pads = [(0, 0), (0, 0)]
        if self.padding == "same":
            pads = [_same_pads(x.shape[2 + i], self.pool_size[i], self.strides[i]) for i in range(2)]
        try:
            y = self._pool(x, pads)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__}(pool_size={self.pool_size}): {error}") from None
        return F.permute(y, 0, 2, 3, 1) if self.data_format == "channels_last" else y

    def _pool(self, x: Tensor, pads: list[tuple[int, int]]) -> Tensor:
        raise NotImplementedError

    def _config(self) -> dict[str, Any]:
        return {"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding,
                "data_format": self.data_format}

    def extra_repr(self) -> str:
        return f"pool_size={self.pool_size}, strides={self.strides}, padding={self.padding!r}"


class MaxPooling2D(_Pooling2D):
    """Keras's ``MaxPooling2D`` on ``(N, H, W, C)``; ``strides`` default to ``pool_size``;
    ``padding="same"`` pads with -inf as TensorFlow does."""

    def _pool(self, x: Tensor, pads: list[tuple[int, int]]) -> Tensor:
        if any(p for pair in pads for p in pair):
            x = F.pad(x, [(0, 0), (0, 0), *pads], value=-np.inf)
        return P.max_pool2d(x, self.pool_size, self.strides)


class AveragePooling2D(_Pooling2D):
    """Keras's ``AveragePooling2D`` on ``(N, H, W, C)``; with ``padding="same"`` the padded
    cells are left out of each window's mean, as in Keras."""

    def _pool(self, x: Tensor, pads: list[tuple[int, int]]) -> Tensor:
        if not any(p for pair in pads for p in pair):
            return P.avg_pool2d(x, self.pool_size, self.strides)
        width = [(0, 0), (0, 0), *pads]
        ones = np.ones((1, 1, *x.shape[2:]), dtype=x.array.dtype)
        counts = P.avg_pool2d(as_tensor(np.pad(ones, width)), self.pool_size, self.strides).array
        return P.avg_pool2d(F.pad(x, width), self.pool_size, self.strides) / as_tensor(counts)


# ----- the rest ---------------------------------------------------------------------------------
class Flatten(Layer):
    """Keras's ``Flatten``: ``(N, d1, d2, ...) -> (N, d1 * d2 * ...)`` in the input's own order
    (channels-last images flatten as (H, W, C), as in Keras)."""

    def __init__(self, data_format: Any = None, input_shape: Any = None, name: str | None = None) -> None:
        Module.__init__(self)
        self.data_format = _data_format(data_format, "Flatten")
        Layer.__init__(self, input_shape, name)

    def call(self, x: Tensor) -> Tensor:
        if x.ndim < 2:
            raise ValueError(f"Flatten expects an input (N, ...), got shape {tuple(x.shape)}")
        if self.data_format == "channels_first" and x.ndim > 2:
            x = F.permute(x, 0, *range(2, x.ndim), 1)  # Keras flattens channels-first as channels-last
        return F.flatten(x, 1, -1)

    def _config(self) -> dict[str, Any]:
        return {"data_format": self.data_format}


class Dropout(Layer):
    """Keras's ``Dropout(rate)``: inverted dropout while training, the identity otherwise."""

    def __init__(self, rate: float, input_shape: Any = None, name: str | None = None) -> None:
        Module.__init__(self)
        self.rate = float(rate)
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate!r}")
        Layer.__init__(self, input_shape, name)

    def call(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.rate, self.training) if self.rate else x

    def _config(self) -> dict[str, Any]:
        return {"rate": self.rate}

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class Activation(Layer):
    """Keras's ``Activation(name)``, the name looked up in nurinet's activation table."""

    def __init__(self, activation: Any, input_shape: Any = None, name: str | None = None) -> None:
        Module.__init__(self)
        self.activation = activation
        self._fn = _activation(activation)
        Layer.__init__(self, input_shape, name)

    def call(self, x: Tensor) -> Tensor:
        return x if self._fn is None else self._fn(x)

    def _config(self) -> dict[str, Any]:
        return {"activation": self.activation}

    def extra_repr(self) -> str:
        return f"{self.activation!r}"


class BatchNormalization(Layer):
    """Keras's ``BatchNormalization`` over the last axis (``axis=-1``, the channels of a
    channels-last image), with Keras's defaults ``momentum=0.99``, ``epsilon=1e-3``.

    The moving statistics are updated as ``moving = momentum * moving + (1 - momentum) * batch``
    (the batch variance unbiased, as nurinet's/PyTorch's batch norm does; Keras uses the biased one).
    """

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, input_shape: Any = None, name: str | None = None) -> None:
        Module.__init__(self)
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.gamma: Parameter | None = None
        self.beta: Parameter | None = None
        Layer.__init__(self, input_shape, name)

    def build(self, input_shape: tuple[Any, ...]) -> None:
        if len(input_shape) < 2:
            raise ValueError(f"BatchNormalization expects an input (N, ...), got shape {tuple(input_shape)}")
        n = int(input_shape[self.axis])
        if self.scale:
            self.gamma = Parameter(np.ones(n, np.float32))
        if self.center:
            self.beta = Parameter(np.zeros(n, np.float32))
        self.register_buffer("moving_mean", Tensor(np.zeros(n, np.float32)))
        self.register_buffer("moving_variance", Tensor(np.ones(n, np.float32)))
        Layer.build(self, input_shape)

    def call(self, x: Tensor) -> Tensor:
        axis = self.axis % x.ndim
        moved = axis != 1
        if moved:
            order = [0, axis, *(d for d in range(1, x.ndim) if d != axis)]
            x = F.permute(x, *order)
        y = F.batch_norm(x, self.moving_mean, self.moving_variance, self.gamma, self.beta,
                         training=self.training, momentum=1.0 - self.momentum, eps=self.epsilon)
        if moved:
            y = F.permute(y, *np.argsort(order).tolist())
        return y

    def _config(self) -> dict[str, Any]:
        return {"axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale}


def build_on(layers: list[Module], sample_shape: tuple[int, ...]) -> None:
    """Build ``layers`` in turn by running them once on zeros of ``(1, *sample_shape)``."""
    x: Any = Tensor(np.zeros((1, *sample_shape), np.float32))
    with no_grad():
        for layer in layers:
            was = layer.training
            layer.eval()
            try:
                x = layer(x)
            finally:
                layer.train(was)


# The merge layers live in their own file, which subclasses Layer from this one: imported last,
# once Layer exists, so that keras.layers.Add is there as in Keras.
from nurinet.keras.merging import (
    Add,
    Average,
    Concatenate,
    Maximum,
    Minimum,
    Multiply,
    Subtract,
)
