"""Pooling and resizing layers (PyTorch's API): max, average, adaptive, global pooling and Upsample.

None has parameters; each wraps one function of :mod:`nurinet.functional.pooling`
or :func:`nurinet.functional.interpolate`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nurinet.autograd.tensor import Tensor
from nurinet.functional import pooling as P
from nurinet.functional.upsample import interpolate
from nurinet.nn.module import Module


def _named(layer: Module, fn: Callable[..., Any], x: Any, *args: Any) -> Any:
    """``fn(x, *args)``; a shape or size error (wrong rank, window larger than the input) names the layer."""
    try:
        return fn(x, *args)
    except ValueError as error:
        raise ValueError(f"{type(layer).__name__}: {error}") from None


class _Pool(Module):
    """Stores the window arguments and prints them."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, kernel_size if stride is None else stride
        self.padding, self.ceil_mode = padding, bool(ceil_mode)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}")


class MaxPool2d(_Pool):
    """2-D max pooling (padding counts as -inf; ties go to the first element of the window).

    Args:
        kernel_size: Window size (int or pair).
        stride: Step between windows (default: the kernel size).
        padding: Implicit -inf padding on each side (at most ``kernel_size // 2``, whatever the dilation).
        dilation: Spacing between window elements.
        return_indices: Also return each maximum's flat index in the input's ``H * W`` plane.
        ceil_mode: Round the output size up (a last, partial window).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, Ho, Wo)``, ``Ho = (H + 2 * padding - dilation * (k - 1) - 1) // stride + 1``
          (rounded up with ``ceil_mode``)
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation, self.return_indices = dilation, bool(return_indices)

    def forward(self, x: Tensor) -> Any:
        return _named(self, P.max_pool2d, x, self.kernel_size, self.stride, self.padding, self.dilation,
                      self.ceil_mode, self.return_indices)


class MaxPool1d(MaxPool2d):
    """1-D max pooling (as MaxPool2d along the last axis).

    Shape:
        - Input: ``(N, C, L)``
        - Output: ``(N, C, Lo)``, ``Lo = (L + 2 * padding - dilation * (k - 1) - 1) // stride + 1``
    """

    def forward(self, x: Tensor) -> Any:
        return _named(self, P.max_pool1d, x, self.kernel_size, self.stride, self.padding, self.dilation,
                      self.ceil_mode, self.return_indices)


class AvgPool2d(_Pool):
    """2-D average pooling.

    Args:
        kernel_size: Window size (int or pair).
        stride: Step between windows (default: the kernel size).
        padding: Implicit zero padding on each side (at most half the kernel).
        ceil_mode: Round the output size up (a last, partial window).
        count_include_pad: Count padded zeros in the divisor.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, Ho, Wo)``, ``Ho = (H + 2 * padding - k) // stride + 1`` (rounded up with ``ceil_mode``)
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x: Tensor) -> Tensor:
        return _named(self, P.avg_pool2d, x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                      self.count_include_pad)


class AvgPool1d(AvgPool2d):
    """1-D average pooling (as AvgPool2d along the last axis).

    Shape:
        - Input: ``(N, C, L)``
        - Output: ``(N, C, Lo)``, ``Lo = (L + 2 * padding - k) // stride + 1``
    """

    def forward(self, x: Tensor) -> Tensor:
        return _named(self, P.avg_pool1d, x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                      self.count_include_pad)


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size; bin i spans ``floor(i*H/Ho) .. ceil((i+1)*H/Ho)``.

    Args:
        output_size: ``(Ho, Wo)``, an int for both, or ``None`` in a place to keep that input size.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, Ho, Wo)``
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return _named(self, P.adaptive_avg_pool2d, x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(AdaptiveAvgPool2d):
    """Max pooling to a fixed output size (the bins of AdaptiveAvgPool2d).

    Args:
        output_size: ``(Ho, Wo)``, an int for both, or ``None`` in a place to keep that input size.
        return_indices: Also return each maximum's flat index in the input's ``H * W`` plane.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, Ho, Wo)``
    """

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = bool(return_indices)

    def forward(self, x: Tensor) -> Any:
        return _named(self, P.adaptive_max_pool2d, x, self.output_size, self.return_indices)


class GlobalAvgPool2d(Module):
    """Mean over the whole feature map of each channel.

    Args:
        keepdims: Keep the spatial dims as ``(1, 1)``.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdims``
    """

    def __init__(self, keepdims: bool = False) -> None:
        super().__init__()
        self.keepdims = bool(keepdims)

    def forward(self, x: Tensor) -> Tensor:
        return _named(self, P.global_avg_pool2d, x, self.keepdims)

    def extra_repr(self) -> str:
        return f"keepdims={self.keepdims}"


class GlobalMaxPool2d(GlobalAvgPool2d):
    """Maximum over the whole feature map of each channel.

    Args:
        keepdims: Keep the spatial dims as ``(1, 1)``.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdims``
    """

    def forward(self, x: Tensor) -> Tensor:
        return _named(self, P.global_max_pool2d, x, self.keepdims)


class Upsample(Module):
    """Resize by ``F.interpolate`` (nearest, linear or bilinear, PyTorch's index conventions).

    Args:
        size: Output spatial size (exactly one of size and scale_factor).
        scale_factor: Multiplier(s) of the spatial size.
        mode: ``"nearest"``, ``"linear"`` (3-D input) or ``"bilinear"`` (4-D input).
        align_corners: Linear modes: map corner pixel centers onto each other.

    Shape:
        - Input: ``(N, C, L)`` or ``(N, C, H, W)``
        - Output: ``(N, C, Lo)`` or ``(N, C, Ho, Wo)``: ``size``, or the input size times
          ``scale_factor``, floored
    """

    def __init__(self, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: bool | None = None) -> None:
        super().__init__()
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, x: Tensor) -> Tensor:
        return _named(self, interpolate, x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"
