"""Convolutions: conv1d, conv2d and conv_transpose2d (NCHW, PyTorch's weight layouts).

The general path (array kernels in :mod:`nurinet.functional._im2col`) copies the
sliding windows of the padded input once into a column matrix and does one GEMM
per group. Three ops close the set under differentiation, since each is bilinear
in its two array inputs and the gradients of each are the other two:

* :class:`Conv2d` ``(x, w) -> y``;
* :class:`ConvTranspose2d` ``(y, w) -> x``: conv2d's input gradient (col2im);
* :class:`Conv2dWeightGrad` ``(x, y) -> w``: conv2d's weight gradient.

So the Tensor ``backward`` of each is made of the others and gradients of any
order work; ``backward_arrays`` does the same arithmetic on arrays and reuses the
column matrix forward kept. Stride-1 convolutions on NumPy arrays (the common case)
take the wide-row path of :mod:`nurinet._runtime.fast.conv` instead: cache-sized
chunks of samples, split over threads, and no column matrix kept between forward
and backward. The slow twins in :mod:`nurinet.functional.conv_reference`
are the test oracles.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet._runtime import buffers
from nurinet._runtime.fast import conv as fast_conv
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional import reduction as rd
from nurinet.functional._im2col import (
    Geometry,
    conv2d_forward,
    conv2d_input_grad,
    conv2d_weight_grad,
    exact_weight_grad,
    im2col,
    rows,
)
from nurinet.functional._util import check_operand_dtype
from nurinet.functional.shape import reshape


class Conv2d(Function):
    """2-D cross-correlation ``y = conv2d(x, w) + b`` (bias optional).

    backward_arrays: the CNN and conv benchmarks.
    """

    def __init__(self, geom: Geometry) -> None:
        self.geom = geom

    def forward(self, x: Any, w: Any, b: Any = None) -> Any:
        # Stride-1 convs on NumPy arrays run chunk by chunk and keep no column matrix (backward
        # rebuilds it from x, chunk by chunk, in cache); the others keep theirs for the weight grad.
        self.cols = None
        y = fast_conv.conv2d_forward(x, w, b, self.geom)
        if y is None:
            y, self.cols = conv2d_forward(x, w, b, self.geom)
        return y

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        x, w = self.inputs[0], self.inputs[1]
        needs = self.needs_input_grad
        gx = ConvTranspose2d(self.geom, x.shape[2:])(gy, w) if needs[0] else None
        gw = Conv2dWeightGrad(self.geom, w.shape)(x, gy) if needs[1] else None
        if len(needs) == 2:
            return gx, gw
        return gx, gw, (rd.sum(gy, axis=(0, 2, 3)) if needs[2] else None)

    def backward_arrays(self, gy: Any) -> tuple[Any, ...]:
        x, w = self.inputs[0].array, self.inputs[1].array
        needs = self.needs_input_grad
        grads = fast_conv.conv2d_backward(gy, x, w, self.geom, needs[0], needs[1]) if self.cols is None else None
        gx, gw, gb = self._im2col_backward(gy, x, w) if grads is None else grads
        gw = None if gw is None else exact_weight_grad(gw, x, gy, self.geom)
        if len(needs) == 2:
            return gx, gw
        return gx, gw, (gb if needs[2] else None)

    def _im2col_backward(self, gy: Any, x: Any, w: Any) -> tuple[Any, Any, Any]:
        """The input, weight and bias gradients (each None where not wanted) from the column matrix."""
        needs, cols = self.needs_input_grad, self.cols
        if cols is None and needs[1]:  # a wide forward kept none (and inf or NaN in w sent us here)
            cols, _ = im2col(x, w.shape[2:], self.geom)
        g2 = rows(gy)
        gx = conv2d_input_grad(g2, w, x.shape, self.geom) if needs[0] else None
        gw = conv2d_weight_grad(g2, cols, w.shape, self.geom.groups) if needs[1] else None
        return gx, gw, (g2.sum(axis=1) if len(needs) == 3 and needs[2] else None)

    def release(self) -> None:
        # The graph is done with: the column matrix (only ever referenced here) goes back to the
        # buffer pool, so the next step's forward reuses it instead of faulting in fresh pages.
        buffers.give_back(getattr(self, "cols", None))
        self.cols = None
        super().release()


class ConvTranspose2d(Function):
    """Transposed convolution ``(x, w[, b]) -> y`` of spatial size ``out_hw``: conv2d's input gradient."""

    def __init__(self, geom: Geometry, out_hw: tuple[int, int]) -> None:
        self.geom, self.out_hw = geom, tuple(out_hw)

    def forward(self, x: Any, w: Any, b: Any = None) -> Any:
        out_shape = (x.shape[0], w.shape[1] * self.geom.groups, *self.out_hw)
        y = conv2d_input_grad(rows(x), w, out_shape, self.geom)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        x, w = self.inputs[0], self.inputs[1]
        needs = self.needs_input_grad
        gx = Conv2d(self.geom)(gy, w) if needs[0] else None
        gw = Conv2dWeightGrad(self.geom, w.shape)(gy, x) if needs[1] else None
        if len(needs) == 2:
            return gx, gw
        return gx, gw, (rd.sum(gy, axis=(0, 2, 3)) if needs[2] else None)


class Conv2dWeightGrad(Function):
    """``(x, gy) -> gw``: the weight gradient of conv2d (differentiable, for second-order gradients)."""

    def __init__(self, geom: Geometry, w_shape: tuple[int, ...]) -> None:
        self.geom, self.w_shape = geom, tuple(w_shape)

    def forward(self, x: Any, gy: Any) -> Any:
        cols, _ = im2col(x, self.w_shape[2:], self.geom)
        gw = conv2d_weight_grad(rows(gy), cols, self.w_shape, self.geom.groups)
        buffers.give_back(cols)
        return exact_weight_grad(gw, x, gy, self.geom)

    def backward(self, ggw: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, gy = self.inputs
        needs = self.needs_input_grad
        gx = ConvTranspose2d(self.geom, x.shape[2:])(gy, ggw) if needs[0] else None
        ggy = Conv2d(self.geom)(x, ggw) if needs[1] else None
        return gx, ggy


# ----- argument parsing and checks -----

def _tuple(value: Any, n: int, name: str, op: str, minimum: int = 1) -> tuple[int, ...]:
    """An int or a length-``n`` sequence of ints, each at least ``minimum``, as a tuple."""
    values = (value,) * n if isinstance(value, (int, np.integer)) else value
    if (not isinstance(values, (tuple, list)) or len(values) != n
            or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum for v in values)):
        raise ValueError(f"{op}: {name} must be an int >= {minimum} or {n} of them, got {value!r}")
    return tuple(int(v) for v in values)


def _padding(padding: Any, kernel: tuple[int, ...], dilation: tuple[int, ...], stride: tuple[int, ...],
             op: str) -> tuple[tuple[int, int], ...]:
    """Padding as ``((before, after), ...)`` per spatial dim; "same" puts the odd extra after, as PyTorch."""
    if isinstance(padding, str):
        if padding == "valid":
            return tuple((0, 0) for _ in kernel)
        if padding != "same":
            raise ValueError(f"{op}: padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' needs stride 1 (as in PyTorch), got stride {stride}; "
                             "give the padding as numbers instead")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in _tuple(padding, len(kernel), "padding", op, minimum=0))


def _check_conv(x: Tensor, w: Tensor, b: Tensor | None, groups: int, op: str, ndim: int,
                in_channels: int) -> None:
    spatial = "(N, C, L)" if ndim == 3 else "(N, C, H, W)"
    if x.ndim != ndim:
        raise ValueError(f"{op}: expected a {ndim}-D input {spatial}, got shape {x.shape}")
    if w.ndim != ndim:
        raise ValueError(f"{op}: expected a {ndim}-D weight, got shape {w.shape}")
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    out_c = w.shape[1] * groups if op.startswith("conv_transpose") else w.shape[0]
    if x.shape[1] % groups or out_c % groups or in_channels != x.shape[1]:
        raise ValueError(
            f"{op}: input of shape {x.shape} has {x.shape[1]} channels but the weight of shape {w.shape} "
            f"with groups={groups} expects {in_channels}; groups must divide both the input channels and "
            f"the output channels ({out_c})"
        )
    if b is not None and b.shape != (out_c,):
        raise ValueError(f"{op}: bias must have shape ({out_c},), got {b.shape}")
    check_operand_dtype(x, w, op)
    if b is not None:
        check_operand_dtype(b, w, op, what="bias")


def _check_extent(x_hw: tuple[int, ...], kernel: tuple[int, ...], pads: Any, dilation: tuple[int, ...],
                  op: str) -> None:
    padded = [n + lo + hi for n, (lo, hi) in zip(x_hw, pads)]
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if any(e > p for e, p in zip(extent, padded)):
        raise ValueError(
            f"{op}: the kernel {kernel} (dilation {dilation}) spans {tuple(extent)} but the padded input "
            f"is only {tuple(padded)} (input {tuple(x_hw)}, padding {pads}); use a smaller kernel or more padding"
        )


# ----- public wrappers -----

def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) of ``x`` (N, C_in, H, W) with ``weight`` (C_out, C_in/groups, kh, kw).

    Args:
        x: Input of shape ``(N, C_in, H, W)``.
        weight: Filters of shape ``(C_out, C_in / groups, kh, kw)``.
        bias: Optional ``(C_out,)``.
        stride, dilation: An int or a pair (height, width).
        padding: An int, a pair, ``"valid"`` (none) or ``"same"`` (output as large as the
            input; stride 1 only; an odd total puts the extra row/column at the bottom/right).
        groups: Split the channels into this many independent groups (``groups = C_in``
            with ``C_out = k * C_in`` is a depthwise convolution).

    Returns:
        ``(N, C_out, Ho, Wo)`` with ``Ho = (H + pad_h - dilation_h * (kh - 1) - 1) // stride_h + 1``.
    """
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    _check_conv(x, weight, bias, groups, "conv2d", 4, weight.shape[1] * groups if weight.ndim == 4 else -1)
    kernel = weight.shape[2:]
    stride, dilation = _tuple(stride, 2, "stride", "conv2d"), _tuple(dilation, 2, "dilation", "conv2d")
    pads = _padding(padding, kernel, dilation, stride, "conv2d")
    _check_extent(x.shape[2:], kernel, pads, dilation, "conv2d")
    fn = Conv2d(Geometry(stride, pads, dilation, groups))
    return fn(x, weight) if bias is None else fn(x, weight, bias)


def conv1d(x: Any, weight: Any, bias: Any = None, stride: int = 1, padding: Any = 0, dilation: int = 1,
           groups: int = 1) -> Tensor:
    """1-D convolution of ``x`` (N, C_in, L) with ``weight`` (C_out, C_in/groups, k): conv2d with a unit height.

    ``padding`` is an int, ``"valid"`` or ``"same"`` (stride 1 only). Returns ``(N, C_out, Lo)``.
    """
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    _check_conv(x, weight, bias, groups, "conv1d", 3, weight.shape[1] * groups if weight.ndim == 3 else -1)
    (s,), (d,) = _tuple(stride, 1, "stride", "conv1d"), _tuple(dilation, 1, "dilation", "conv1d")
    pads = ((0, 0), *_padding(padding, weight.shape[2:], (d,), (s,), "conv1d"))
    _check_extent(x.shape[2:], weight.shape[2:], pads[1:], (d,), "conv1d")
    n, c, length = x.shape
    x4 = reshape(x, (n, c, 1, length))
    w4 = reshape(weight, (*weight.shape[:2], 1, weight.shape[2]))
    fn = Conv2d(Geometry((1, s), pads, (1, d), groups))
    y = fn(x4, w4) if bias is None else fn(x4, w4, bias)
    return reshape(y, (n, y.shape[1], y.shape[3]))


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """Transposed 2-D convolution (the input gradient of conv2d), PyTorch's signature and weight layout.

    Args:
        x: Input of shape ``(N, C_in, H, W)``.
        weight: ``(C_in, C_out / groups, kh, kw)``.
        bias: Optional ``(C_out,)``.
        stride, padding, dilation: Those of the conv2d this transposes (ints or pairs).
        output_padding: Extra rows/columns at the bottom/right of the output (smaller than
            the stride or the dilation), which pick among the input sizes a strided conv2d maps to ``H``.
        groups: Channel groups.

    Returns:
        ``(N, C_out, Ho, Wo)`` with ``Ho = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1``.
    """
    op = "conv_transpose2d"
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    _check_conv(x, weight, bias, groups, op, 4, weight.shape[0] if weight.ndim == 4 else -1)
    stride, dilation = _tuple(stride, 2, "stride", op), _tuple(dilation, 2, "dilation", op)
    pad = _tuple(padding, 2, "padding", op, minimum=0)
    extra = _tuple(output_padding, 2, "output_padding", op, minimum=0)
    if any(e >= s and e >= d for e, s, d in zip(extra, stride, dilation)):
        raise ValueError(f"{op}: output_padding {extra} must be smaller than the stride {stride} or the "
                         f"dilation {dilation} in each dim")
    out_hw = tuple((n - 1) * s - 2 * p + d * (k - 1) + e + 1
                   for n, s, p, d, k, e in zip(x.shape[2:], stride, pad, dilation, weight.shape[2:], extra))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: input {x.shape} with kernel {weight.shape[2:]}, stride {stride}, padding "
                         f"{pad} gives an empty output {out_hw}; use less padding")
    pads = tuple((p, p - e) for p, e in zip(pad, extra))  # the conv2d whose adjoint this is sees H rows
    fn = ConvTranspose2d(Geometry(stride, pads, dilation, groups), out_hw)
    return fn(x, weight) if bias is None else fn(x, weight, bias)
