"""Normalization: batch, layer and group normalization as one fused op.

All three standardize ``x`` over some axes and apply a learned per-feature affine map:
``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the *biased* variance. They
differ only in the axes (and in how the input is viewed):

* batch norm: ``x`` of shape ``(N, C, *)``, statistics per channel over ``N`` and ``*``;
* layer norm: statistics per sample over the trailing ``normalized_shape`` dims;
* group norm: ``x`` viewed as ``(N, G, C // G, *)``, statistics per sample and group.

:class:`Normalize` is the fused op. Its backward is the closed form
``dx = rstd * (g - mean(g) - xhat * mean(g * xhat))`` with ``g = gy * weight``,
which needs one pass instead of the dozen nodes of the composite formula. The
Tensor ``backward`` recomputes the statistics with Tensor ops, so a gradient of
the gradient sees how they depend on ``x``; ``backward_arrays`` reuses what forward
saved. The composite twins in :mod:`nurinet.functional.normalization_reference`
are the oracles the tests compare against.

Layer norm over the last axis of a C-contiguous float32 NumPy array runs both passes as one native
kernel call each (:mod:`nurinet._runtime.fast.normalization`) from ``settings.NATIVE_NORM_MIN_ELEMENTS`` on; it keeps
the same statistics on the op, so everything downstream of ``forward`` sees no difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nurinet._runtime.fast import normalization as fast_normalization
from nurinet.autograd.function import Function
from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional import reduction as rd
from nurinet.functional._util import (
    check_input_dtype,
    check_operand_dtype,
    on_device_of,
    xp_of,
)
from nurinet.functional.shape import reshape


class Normalize(Function):
    """``(x - mean) * rstd * weight + bias`` with statistics over ``axes``.

    ``weight`` and ``bias`` (optional: ``affine=False`` omits both) have ``x``'s
    number of dims and broadcast against it. After a call, ``self.mean`` and
    ``self.var`` hold the statistics (keepdims shape; the variance is biased).

    backward_arrays: the Transformer benchmark (LayerNorm; BatchNorm shares it).
    """

    def __init__(self, axes: tuple[int, ...], eps: float, affine: bool) -> None:
        self.axes, self.eps, self.affine = axes, eps, affine

    def forward(self, x: Any, weight: Any = None, bias: Any = None) -> Any:
        self.scale = None
        done = fast_normalization.layer_norm(x, self.axes, self.eps, *((weight, bias) if self.affine else ()))
        self.native = done is not None  # backward may then run in the native kernel too
        if done is not None:
            y, self.xhat, self.mean, self.var, self.rstd = done
            return y
        xp = xp_of(x)
        self.mean = x.mean(axis=self.axes, keepdims=True)
        centered = x - self.mean
        with np.errstate(over="ignore"):  # an overflow is caught just below
            self.var = (centered * centered).mean(axis=self.axes, keepdims=True)
        if xp.isfinite(self.var).all():
            self.rstd = 1.0 / xp.sqrt(self.var + x.dtype.type(self.eps))
            self.xhat = centered * self.rstd
        else:  # The squares overflowed (or x holds inf or NaN): an infinite variance gave zeros.
            self.xhat = self._standardize_scaled(x, xp)
        return self.xhat * weight + bias if self.affine else self.xhat

    def _standardize_scaled(self, x: Any, xp: Any) -> Any:
        """``xhat`` from the statistics of ``x / max|x|`` (per group), which ``xhat`` does not change.

        The scaled squares cannot overflow, so finite values near the dtype's largest (1e20 and up
        in float32) are standardized right instead of to zeros. A group holding inf or NaN keeps
        its scale of 1 and gives NaN, as in PyTorch. ``self.var`` stays the true variance (inf
        where the dtype cannot hold it).
        """
        scale = xp.abs(x).max(axis=self.axes, keepdims=True)
        scale = xp.where((scale > 0) & xp.isfinite(scale), scale, x.dtype.type(1))
        xs = x / scale
        mean = xs.mean(axis=self.axes, keepdims=True)
        centered = xs - mean
        var = (centered * centered).mean(axis=self.axes, keepdims=True)
        with np.errstate(over="ignore", under="ignore"):  # scale**2 may overflow: eps / inf is 0
            rstd = 1.0 / xp.sqrt(var + x.dtype.type(self.eps) / (scale * scale))
            self.mean, self.var = mean * scale, var * scale * scale
        self.scale, self.rstd = scale, rstd / scale
        return centered * rstd

    def _param_axes(self, x_shape: tuple[int, ...], p_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The axes a parameter's gradient is summed over (where it was broadcast)."""
        return tuple(i for i, (n, m) in enumerate(zip(x_shape, p_shape)) if m == 1 and n != 1)

    def backward_arrays(self, gy: Any) -> tuple[Any, ...]:
        if self.native:  # forward ran in the native kernel, and kept what its backward reads
            weight = self.inputs[1].array if self.affine else None
            grads = fast_normalization.layer_norm_backward(gy, self.xhat, self.rstd, weight, self.needs_input_grad)
            if grads is not None:
                return grads if self.affine else grads[0]
        xhat, axes = self.xhat, self.axes
        g = gy * self.inputs[1].array if self.affine else gy
        gx = None
        if self.needs_input_grad[0]:
            gx = (g - g.mean(axis=axes, keepdims=True)
                  - xhat * (g * xhat).mean(axis=axes, keepdims=True)) * self.rstd
        if not self.affine:
            return gx
        w_shape = self.inputs[1].shape
        sum_axes = self._param_axes(gy.shape, w_shape)
        gw = (gy * xhat).sum(axis=sum_axes, keepdims=True) if self.needs_input_grad[1] else None
        gb = gy.sum(axis=sum_axes, keepdims=True) if self.needs_input_grad[2] else None
        return gx, gw, gb

    def backward(self, gy: Tensor) -> Any:
        # Recompute the statistics from the input Tensor so that they are part of the graph.
        x, axes = self.inputs[0], self.axes
        eps, inverse_scale = self.eps, None
        if self.scale is not None:  # forward scaled x to keep the squares finite: so does this
            inverse_scale = Tensor._wrap(1.0 / self.scale, False)
            with np.errstate(over="ignore", under="ignore"):
                eps = Tensor._wrap(x.array.dtype.type(self.eps) / (self.scale * self.scale), False)
            x = x * inverse_scale
        centered = x - rd.mean(x, axis=axes, keepdims=True)
        rstd = (rd.mean(centered * centered, axis=axes, keepdims=True) + eps) ** -0.5
        xhat = centered * rstd
        g = gy * self.inputs[1] if self.affine else gy
        gx = None
        if self.needs_input_grad[0]:
            gx = (g - rd.mean(g, axis=axes, keepdims=True)
                  - xhat * rd.mean(g * xhat, axis=axes, keepdims=True)) * rstd
            if inverse_scale is not None:  # d/dx = d/d(x / scale) / scale
                gx = gx * inverse_scale
        if not self.affine:
            return gx
        gw = gy * xhat if self.needs_input_grad[1] else None  # the engine sums these back
        gb = gy if self.needs_input_grad[2] else None
        return gx, gw, gb


def normalize(x: Tensor, axes: Sequence[int], weight: Tensor | None = None, bias: Tensor | None = None,
              eps: float = 1e-5) -> Tensor:
    """Standardize ``x`` over ``axes`` (biased variance), then ``* weight + bias``.

    Args:
        x: Input.
        axes: Non-negative axes of the statistics.
        weight: Scale broadcastable to ``x`` with ``x.ndim`` dims, or ``None``.
        bias: Shift of the same shape as ``weight``, or ``None``.
        eps: Added to the variance.
    """
    return _normalize(as_tensor(x), tuple(axes), weight, bias, eps)[0]


def _normalize(x: Tensor, axes: tuple[int, ...], weight: Tensor | None, bias: Tensor | None,
               eps: float) -> tuple[Tensor, Normalize]:
    """The output and the op (which holds the batch statistics)."""
    if weight is None and bias is None:
        fn = Normalize(axes, float(eps), False)
        return fn(x), fn
    if weight is None or bias is None:  # one of the two: the fused op always takes both
        xp, shape = xp_of(x.array), (weight if weight is not None else bias).shape
        if weight is None:
            weight = Tensor._wrap(xp.ones(shape, dtype=x.array.dtype), False)
        else:
            bias = Tensor._wrap(xp.zeros(shape, dtype=x.array.dtype), False)
    fn = Normalize(axes, float(eps), True)
    return fn(x, weight, bias), fn


# ----- checks ---------------------------------------------------------------------------


def _check_float(x: Tensor, where: str) -> None:
    check_input_dtype(x, None, where)


def _param(p: Any, size: int, name: str, where: str, x: Tensor) -> Tensor | None:
    """``p`` as a Tensor of ``size`` elements and ``x``'s dtype, or ``None``."""
    if p is None:
        return None
    p = as_tensor(p)
    if p.numel() != size:
        raise ValueError(f"{where}: {name} has shape {p.shape} ({p.numel()} elements) but the input of shape "
                         f"{x.shape} needs {size}")
    check_operand_dtype(x, p, where, name)
    return p


def _channel_shape(x: Tensor) -> tuple[int, ...]:
    """``(1, C, 1, ...)``: a per-channel array broadcast against ``(N, C, *)``."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


# ----- batch norm -----------------------------------------------------------------------


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    num_batches_tracked: Tensor | None = None,
) -> Tensor:
    """Batch normalization (Ioffe and Szegedy 2015), PyTorch's ``F.batch_norm``.

    While training (or without running statistics) the batch statistics per channel
    normalize ``x``, and the running statistics, when given, are updated in place:
    ``running = (1 - momentum) * running + momentum * batch`` with the *unbiased* batch
    variance (``momentum=None``: a cumulative average over ``num_batches_tracked``).
    Otherwise the running statistics normalize ``x``.

    Args:
        x: Input ``(N, C)`` or ``(N, C, *)``.
        running_mean: Buffer of shape ``(C,)`` (a Tensor, updated in place; an array is
            accepted in evaluation), or ``None``.
        running_var: Buffer of shape ``(C,)``, likewise, or ``None``.
        weight: Per-channel scale ``(C,)``, or ``None``.
        bias: Per-channel shift ``(C,)``, or ``None``.
        training: Use (and track) the batch statistics.
        momentum: Weight of the new batch in the running statistics.
        eps: Added to the variance.
        num_batches_tracked: Integer buffer of shape ``()``, counted up while tracking.

    Shape:
        - Input: ``(N, C)`` or ``(N, C, *)``
        - Output: the shape of the input
    """
    x = as_tensor(x)
    _check_float(x, "batch_norm")
    if x.ndim < 2:
        raise ValueError(f"batch_norm expects an input of shape (N, C) or (N, C, *), got shape {x.shape}")
    c, shape = x.shape[1], _channel_shape(x)
    weight, bias = (_param(p, c, n, "batch_norm", x) for p, n in ((weight, "weight"), (bias, "bias")))
    weight = None if weight is None else reshape(weight, shape)
    bias = None if bias is None else reshape(bias, shape)
    if not training and running_mean is not None and running_var is not None:
        return _batch_norm_eval(x, running_mean, running_var, weight, bias, eps, shape)
    if x.numel() == 0:  # an empty batch gives an empty output, as in PyTorch; it has no statistics to track
        return _affine(x, weight, bias)
    count = x.numel() // c
    if training and count <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input of "
                         f"shape {x.shape}; use a batch of 2 or more samples, or eval mode")
    axes = (0,) + tuple(range(2, x.ndim))
    y, fn = _normalize(x, axes, weight, bias, eps)
    if training and running_mean is not None and running_var is not None:
        _update_running(fn, running_mean, running_var, momentum, count, num_batches_tracked)
    return y


def _batch_norm_eval(x: Tensor, mean: Tensor, var: Tensor, weight: Tensor | None, bias: Tensor | None,
                     eps: float, shape: tuple[int, ...]) -> Tensor:
    """``(x - mean) * rsqrt(var + eps) * weight + bias``, folded into one scale and one shift."""
    xp, dtype = xp_of(x.array), x.array.dtype
    mean, var = as_tensor(on_device_of(mean, x)), as_tensor(on_device_of(var, x))  # NumPy statistics
    rstd = 1.0 / xp.sqrt(var.array.astype(dtype) + dtype.type(eps))
    scale = Tensor._wrap(rstd.reshape(shape), False)
    shift = Tensor._wrap((-mean.array.astype(dtype) * rstd).reshape(shape), False)
    if weight is not None:
        scale, shift = scale * weight, shift * weight
    if bias is not None:
        shift = shift + bias
    return x * scale + shift


def _affine(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """``x * weight + bias`` (either may be None): what normalizing an empty input leaves."""
    y = x if weight is None else x * weight
    return y if bias is None else y + bias


def _update_running(fn: Normalize, running_mean: Tensor, running_var: Tensor, momentum: float | None,
                    count: int, num_batches_tracked: Tensor | None) -> None:
    """Blend the batch statistics into the running buffers, in place (as PyTorch)."""
    if num_batches_tracked is not None:
        num_batches_tracked.array = num_batches_tracked.array + 1
    if momentum is None:  # a cumulative moving average
        steps = 1 if num_batches_tracked is None else int(num_batches_tracked.array)
        momentum = 1.0 / steps
    dtype = running_mean.array.dtype
    mean = fn.mean.reshape(-1).astype(dtype)
    unbiased = fn.var.reshape(-1).astype(dtype) * (count / (count - 1))
    with no_grad():
        running_mean.array = running_mean.array * (1.0 - momentum) + mean * momentum
        running_var.array = running_var.array * (1.0 - momentum) + unbiased * momentum


# ----- layer norm and group norm -----------------------------------------------------------


def layer_norm(x: Tensor, normalized_shape: Sequence[int] | int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Layer normalization (Ba et al. 2016): standardize over the trailing ``normalized_shape`` dims.

    Args:
        x: Input ``(*, *normalized_shape)``.
        normalized_shape: The trailing dims normalized together.
        weight: Elementwise scale of shape ``normalized_shape``, or ``None``.
        bias: Elementwise shift of shape ``normalized_shape``, or ``None``.
        eps: Added to the variance.

    Shape:
        - Input: ``(*, *normalized_shape)``
        - Output: the shape of the input
    """
    x = as_tensor(x)
    _check_float(x, "layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} must equal the trailing dims of the input, "
                         f"got input shape {x.shape}")
    size = int(_prod(shape))
    full = (1,) * (x.ndim - k) + shape
    weight, bias = (_param(p, size, n, "layer_norm", x) for p, n in ((weight, "weight"), (bias, "bias")))
    params = [None if p is None else reshape(p, full) for p in (weight, bias)]
    axes = tuple(range(x.ndim - k, x.ndim))
    return normalize(x, axes, params[0], params[1], eps)


def group_norm(x: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Group normalization (Wu and He 2018): standardize each sample over groups of channels.

    The ``C`` channels form ``num_groups`` consecutive groups; the statistics are per
    sample and group, over the group's channels and all positions.

    Args:
        x: Input ``(N, C, *)``.
        num_groups: Number of groups; must divide ``C``.
        weight: Per-channel scale ``(C,)``, or ``None``.
        bias: Per-channel shift ``(C,)``, or ``None``.
        eps: Added to the variance.

    Shape:
        - Input: ``(N, C, *)``
        - Output: the shape of the input
    """
    x = as_tensor(x)
    _check_float(x, "group_norm")
    if x.ndim < 2 or num_groups < 1 or x.shape[1] % num_groups:
        raise ValueError(f"group_norm: the input (shape {x.shape}) must be (N, C, *) with C divisible by "
                         f"num_groups={num_groups}")
    n, c = x.shape[0], x.shape[1]
    weight, bias = (_param(p, c, nm, "group_norm", x) for p, nm in ((weight, "weight"), (bias, "bias")))
    grouped = reshape(x, (n, num_groups, c // num_groups, _prod(x.shape[2:])))  # -1 is ambiguous when N = 0
    pshape = (1, num_groups, c // num_groups, 1)
    params = [None if p is None else reshape(p, pshape) for p in (weight, bias)]
    y = normalize(grouped, (2, 3), params[0], params[1], eps)
    return reshape(y, x.shape)


def _prod(values: Sequence[int]) -> int:
    total = 1
    for v in values:
        total *= int(v)
    return total
