"""Normalization layers: BatchNorm1d, BatchNorm2d, LayerNorm and GroupNorm (PyTorch's API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nurinet.autograd.tensor import Parameter, Tensor, as_tensor
from nurinet.functional._util import check_input_dtype
from nurinet.functional.normalization import batch_norm, group_norm, layer_norm
from nurinet.nn.linear import _check_size, _float_dtype
from nurinet.nn.module import Module


class _BatchNorm(Module):
    """Shared code of BatchNorm1d and BatchNorm2d (they differ only in the input dims they accept)."""

    _dims: tuple[int, ...] = ()
    _shape_text = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype: Any = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = _check_size(num_features, "num_features", name)
        if eps <= 0:
            raise ValueError(f"{name}: eps must be positive, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1] or None (cumulative average), got {momentum}")
        dtype = _float_dtype(dtype, name)
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight = Parameter(np.ones(self.num_features, dtype)) if affine else None
        self.bias = Parameter(np.zeros(self.num_features, dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(self.num_features, dtype)))
            self.register_buffer("running_var", Tensor(np.ones(self.num_features, dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.zeros((), np.int64)))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches counted."""
        if self.track_running_stats:
            self.running_mean.array = np.zeros_like(self.running_mean.array)
            self.running_var.array = np.ones_like(self.running_var.array)
            self.num_batches_tracked.array = np.zeros((), np.int64)

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        name = type(self).__name__
        if x.ndim not in self._dims or x.shape[1] != self.num_features:
            raise ValueError(
                f"{name} expects an input of shape {self._shape_text} with C={self.num_features}, got "
                f"shape {x.shape}"
            )
        check_input_dtype(x, self.weight, name)
        if self.training and x.numel() == self.num_features:  # an empty batch is fine: an empty output
            raise ValueError(f"{name}: expected more than 1 value per channel when training, got an input of "
                             f"shape {x.shape}; use a batch of 2 or more samples, or eval mode")
        # Batch statistics while training, and always when no running statistics are kept.
        use_batch = self.training or not self.track_running_stats
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, use_batch,
                          self.momentum, self.eps, self.num_batches_tracked)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization over a mini-batch of vectors or sequences (Ioffe and Szegedy 2015).

    ``y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias`` per feature (channel ``C``), with
    the batch mean and biased variance while training, and the running statistics in
    evaluation mode. Each training step updates
    ``running = (1 - momentum) * running + momentum * batch`` (the unbiased batch variance
    for ``running_var``); ``momentum=None`` keeps a cumulative average instead.

    Args:
        num_features: ``C``.
        eps: Added to the variance.
        momentum: Weight of each new batch in the running statistics, or ``None``.
        affine: Learn ``weight`` (ones) and ``bias`` (zeros).
        track_running_stats: Keep running statistics; without them the batch
            statistics are used in evaluation mode too.
        dtype: Parameter dtype (float32 by default).

    Shape:
        - Input: ``(N, C)`` or ``(N, C, L)``
        - Output: the shape of the input

    Attributes:
        running_mean, running_var: Buffers of shape ``(C,)``.
        num_batches_tracked: Integer buffer counting the training batches seen.
    """

    _dims = (2, 3)
    _shape_text = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization over a mini-batch of images, per channel over ``N``, ``H`` and ``W``.

    See :class:`BatchNorm1d` for the computation and the arguments.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, H, W)``
    """

    _dims = (4,)
    _shape_text = "(N, C, H, W)"


class LayerNorm(Module):
    """Layer normalization (Ba et al. 2016) over the trailing ``normalized_shape`` dims of each sample.

    The same computation in training and evaluation (no running statistics).

    Args:
        normalized_shape: The trailing dims normalized together (an int for the last dim).
        eps: Added to the variance.
        elementwise_affine: Learn an elementwise ``weight`` (ones) and ``bias`` (zeros)
            of shape ``normalized_shape``.
        bias: Learn the bias (with ``elementwise_affine``).
        dtype: Parameter dtype (float32 by default).

    Shape:
        - Input: ``(*, *normalized_shape)``
        - Output: the shape of the input
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True, dtype: Any = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else normalized_shape
        self.normalized_shape = tuple(_check_size(s, "normalized_shape", "LayerNorm") for s in shape)
        if not self.normalized_shape:
            raise ValueError("LayerNorm: normalized_shape must name at least one dim")
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        dtype = _float_dtype(dtype, "LayerNorm")
        affine = self.elementwise_affine
        self.weight = Parameter(np.ones(self.normalized_shape, dtype)) if affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype)) if affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        shape = self.normalized_shape
        if x.ndim < len(shape) or tuple(x.shape[x.ndim - len(shape):]) != shape:
            raise ValueError(f"LayerNorm: normalized_shape {shape} must equal the trailing dims of the input "
                             f"(*, {', '.join(map(str, shape))}), got input shape {x.shape}")
        check_input_dtype(x, self.weight if self.weight is not None else self.bias, "LayerNorm")
        return layer_norm(x, shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class GroupNorm(Module):
    """Group normalization (Wu and He 2018): per sample, over groups of consecutive channels.

    Independent of the batch size and the same in training and evaluation.

    Args:
        num_groups: Number of groups; must divide ``num_channels``.
        num_channels: ``C``.
        eps: Added to the variance.
        affine: Learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        dtype: Parameter dtype (float32 by default).

    Shape:
        - Input: ``(N, C, *)``
        - Output: the shape of the input
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 dtype: Any = None) -> None:
        super().__init__()
        self.num_groups = _check_size(num_groups, "num_groups", "GroupNorm")
        self.num_channels = _check_size(num_channels, "num_channels", "GroupNorm")
        if self.num_channels % self.num_groups:
            raise ValueError(f"GroupNorm: num_channels={num_channels} must be divisible by "
                             f"num_groups={num_groups}")
        self.eps, self.affine = float(eps), bool(affine)
        dtype = _float_dtype(dtype, "GroupNorm")
        self.weight = Parameter(np.ones(self.num_channels, dtype)) if affine else None
        self.bias = Parameter(np.zeros(self.num_channels, dtype)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm expects an input of shape (N, {self.num_channels}, *), got shape "
                             f"{x.shape}")
        check_input_dtype(x, self.weight, "GroupNorm")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
