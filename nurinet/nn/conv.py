"""Convolution layers: Conv1d, Conv2d and ConvTranspose2d (PyTorch's API, weight layouts and initialization)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet.autograd.tensor import Parameter, Tensor, as_tensor
from nurinet.functional._util import check_input_dtype
from nurinet.functional.conv import _tuple
from nurinet.functional.padding import pad_mode
from nurinet.nn import init
from nurinet.nn.linear import _check_size, _float_dtype
from nurinet.nn.module import Module
from nurinet.nn.regularizers import (
    Regularizer,
    check_activity_regularizer,
    record_activity,
)
from nurinet.random import Generator

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared parameters, initialization and input checks of the convolution layers."""

    _ndim = 2  # spatial dims
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any, padding: Any,
                 dilation: Any, groups: int, bias: bool, dtype: Any, generator: Generator | None) -> None:
        super().__init__()
        name, n = type(self).__name__, self._ndim
        self.in_channels = _check_size(in_channels, "in_channels", name)
        self.out_channels = _check_size(out_channels, "out_channels", name)
        self.groups = _check_size(groups, "groups", name)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{name}: groups={self.groups} must divide in_channels={self.in_channels} and "
                             f"out_channels={self.out_channels}")
        self.kernel_size = _tuple(kernel_size, n, "kernel_size", name)
        self.stride = _tuple(stride, n, "stride", name)
        self.dilation = _tuple(dilation, n, "dilation", name)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, n, "padding", name, minimum=0)
        self.padding_mode = "zeros"  # Conv1d and Conv2d set theirs (_set_padding_mode)
        self.activity_regularizer: Regularizer | None = None  # each layer sets its own
        dtype = _float_dtype(dtype, name)
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight = Parameter(np.empty(shape, dtype))
        self.bias = Parameter(np.empty(self.out_channels, dtype)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """Draw weight and bias from U(-k, k) with k = 1 / sqrt(fan_in).

        ``fan_in = weight.shape[1] * kh * kw``: ``in_channels / groups * kh * kw`` for a
        convolution, ``out_channels / groups * kh * kw`` for a transposed one. This is
        PyTorch's default (what its ``kaiming_uniform_(a=sqrt(5))`` on the weight and
        its bias rule amount to).
        """
        bound = 1.0 / math.sqrt(self.weight.shape[1] * math.prod(self.kernel_size))
        init.uniform_(self.weight, -bound, bound, generator)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound, generator)

    def _check(self, x: Tensor) -> None:
        layout = "(N, C, L)" if self._ndim == 1 else "(N, C, H, W)"
        if x.ndim != self._ndim + 2:
            raise ValueError(f"{self!r} expects a {self._ndim + 2}-D input {layout}, got shape {x.shape}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expects {self.in_channels} input channels but got {x.shape[1]} "
                             f"(input shape {x.shape})")
        check_input_dtype(x, self.weight, type(self).__name__)

    def _set_padding_mode(self, padding_mode: str) -> None:
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{type(self).__name__}: padding_mode must be one of {PADDING_MODES}, "
                             f"got {padding_mode!r}")
        self.padding_mode = padding_mode

    def _border_pads(self) -> list[tuple[int, int]]:
        """(before, after) per spatial axis; ``"same"`` puts the odd extra one after, as PyTorch."""
        if self.padding == "valid":
            return [(0, 0)] * self._ndim
        if self.padding == "same":
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            return [(total // 2, total - total // 2) for total in totals]
        return [(p, p) for p in self.padding]

    def _padded_input(self, x: Any) -> tuple[Any, Any]:
        """The input and the padding left to the convolution: zeros are the convolution's own
        padding; the other modes pad the input first (PyTorch's order) and convolve unpadded."""
        if self.padding_mode == "zeros":
            padding = self.padding if isinstance(self.padding, str) or self._ndim > 1 else self.padding[0]
            return x, padding
        x = as_tensor(x)
        self._check(x)  # before padding, so that a wrong input gets the layer's own error
        if self.padding == "same" and any(s != 1 for s in self.stride):
            raise ValueError(f"{self!r}: padding='same' needs stride 1")
        padded = pad_mode(x, [(0, 0), (0, 0), *self._border_pads()], self.padding_mode)
        return padded, (0,) * self._ndim if self._ndim > 1 else 0

    def _call(self, fn: Any, x: Any, *args: Any) -> Tensor:
        x = as_tensor(x)
        self._check(x)
        try:
            y = fn(x, self.weight, self.bias, *args)
        except ValueError as error:  # a size problem (kernel larger than the input): name the layer
            raise ValueError(f"{self!r}: {error}") from None
        if self.activity_regularizer is not None:
            record_activity(self, y, self.activity_regularizer)
        return y

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode!r}"
        if any(d != 1 for d in self.dilation):
            text += f", dilation={self.dilation}"
        if self.activity_regularizer is not None:
            text += f", activity_regularizer={self.activity_regularizer!r}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    """2-D convolution over ``(N, C_in, H, W)`` (a cross-correlation, as in PyTorch).

    Initialization: weight and bias ~ U(-k, k), k = 1 / sqrt(C_in / groups * kh * kw).

    Args:
        in_channels: Input channels ``C_in``.
        out_channels: Output channels ``C_out``.
        kernel_size: An int or ``(kh, kw)``.
        stride: An int or a pair.
        padding: An int, a pair, ``"valid"`` or ``"same"`` (stride 1 only).
        dilation: Spacing between kernel taps (an int or a pair).
        groups: Channel groups; must divide ``C_in`` and ``C_out`` (``groups = C_in`` is depthwise).
        bias: Learn an additive per-channel bias.
        padding_mode: What the padding holds, PyTorch's modes: ``"zeros"`` (default),
            ``"reflect"`` (mirrored, edge not repeated), ``"replicate"`` (the edge value
            repeated) or ``"circular"`` (wrapped around, as on a torus).
        dtype: Parameter dtype (float32 by default).
        generator: Random source of the initialization.
        activity_regularizer: A penalty on the layer's output, Keras's argument (e.g.
            ``nn.regularizers.L1(1e-4)``); ``Model.fit`` adds it to the loss.

    Shape:
        - Input: ``(N, C_in, H, W)``
        - Output: ``(N, C_out, Ho, Wo)`` with
          ``Ho = (H + 2 * padding_h - dilation_h * (kh - 1) - 1) // stride_h + 1`` (likewise ``Wo``)

    Attributes:
        weight: ``(C_out, C_in / groups, kh, kw)``.
        bias: ``(C_out,)`` or ``None``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 dtype: Any = None, generator: Generator | None = None,
                 activity_regularizer: Regularizer | None = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype,
                         generator)
        self._set_padding_mode(padding_mode)
        self.activity_regularizer = check_activity_regularizer(activity_regularizer, type(self).__name__)

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self._padded_input(x)
        return self._call(F.conv2d, x, self.stride, padding, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """1-D convolution over ``(N, C_in, L)``.

    Initialization: weight and bias ~ U(-k, k), k = 1 / sqrt(C_in / groups * kernel_size).

    Args:
        in_channels: Input channels ``C_in``.
        out_channels: Output channels ``C_out``.
        kernel_size: Kernel length.
        stride: Step between windows.
        padding: An int, ``"valid"`` or ``"same"`` (stride 1 only).
        dilation: Spacing between kernel taps.
        groups: Channel groups; must divide ``C_in`` and ``C_out``.
        bias: Learn an additive per-channel bias.
        padding_mode: ``"zeros"`` (default), ``"reflect"``, ``"replicate"`` or ``"circular"``
            (as :class:`Conv2d`).
        dtype: Parameter dtype (float32 by default).
        generator: Random source of the initialization.
        activity_regularizer: A penalty on the layer's output, Keras's argument (e.g.
            ``nn.regularizers.L1(1e-4)``); ``Model.fit`` adds it to the loss.

    Shape:
        - Input: ``(N, C_in, L)``
        - Output: ``(N, C_out, Lo)``, ``Lo = (L + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1``

    Attributes:
        weight: ``(C_out, C_in / groups, kernel_size)``.
        bias: ``(C_out,)`` or ``None``.
    """

    _ndim = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: Any = 0,
                 dilation: int = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 dtype: Any = None, generator: Generator | None = None,
                 activity_regularizer: Regularizer | None = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype,
                         generator)
        self._set_padding_mode(padding_mode)
        self.activity_regularizer = check_activity_regularizer(activity_regularizer, type(self).__name__)

    def forward(self, x: Tensor) -> Tensor:
        x, padding = self._padded_input(x)
        return self._call(F.conv1d, x, self.stride[0], padding, self.dilation[0], self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution (the gradient of Conv2d with respect to its input), e.g. to upsample.

    Initialization: weight and bias ~ U(-k, k), k = 1 / sqrt(C_out / groups * kh * kw)
    (``fan_in`` of the ``(C_in, C_out / groups, kh, kw)`` weight, as PyTorch computes it).

    Args:
        in_channels: Input channels ``C_in``.
        out_channels: Output channels ``C_out``.
        kernel_size: An int or ``(kh, kw)``.
        stride: Those of the Conv2d this layer transposes (int or pair).
        padding: Rows/columns removed from each border of the output (int or pair).
        output_padding: Extra rows/columns at the bottom/right of the output (smaller
            than the stride or the dilation).
        groups: Channel groups; must divide ``C_in`` and ``C_out``.
        bias: Learn an additive per-channel bias.
        dilation: Spacing between kernel taps.
        dtype: Parameter dtype (float32 by default).
        generator: Random source of the initialization.
        activity_regularizer: A penalty on the layer's output, Keras's argument (e.g.
            ``nn.regularizers.L1(1e-4)``); ``Model.fit`` adds it to the loss.

    Shape:
        - Input: ``(N, C_in, H, W)``
        - Output: ``(N, C_out, Ho, Wo)`` with
          ``Ho = (H - 1) * stride_h - 2 * padding_h + dilation_h * (kh - 1) + output_padding_h + 1``

    Attributes:
        weight: ``(C_in, C_out / groups, kh, kw)``.
        bias: ``(C_out,)`` or ``None``.
    """

    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
                 dtype: Any = None, generator: Generator | None = None,
                 activity_regularizer: Regularizer | None = None) -> None:
        if isinstance(padding, str):
            raise TypeError(f"ConvTranspose2d: padding must be an int or a pair (no 'same'/'valid'), "
                            f"got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, dtype,
                         generator)
        self.output_padding = _tuple(output_padding, 2, "output_padding", "ConvTranspose2d", minimum=0)
        self.activity_regularizer = check_activity_regularizer(activity_regularizer, "ConvTranspose2d")

    def forward(self, x: Tensor) -> Tensor:
        return self._call(F.conv_transpose2d, x, self.stride, self.padding, self.output_padding, self.groups,
                          self.dilation)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (f", output_padding={self.output_padding}" if any(self.output_padding) else "")
