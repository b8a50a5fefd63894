"""Autoencoders (오토인코더): an encoder compresses, a decoder reconstructs.

Trained to reproduce their input (``loss = mse(model(x), x)``, or ``Model.fit(x, x)``), they
learn a code of ``sizes[-1]`` numbers per sample: dimensionality reduction without labels.
With tied weights the decoder reuses the transposed encoder weights (half the weights; a
linear tied autoencoder spans the same subspace as PCA). With ``noise_std`` it is a denoising
autoencoder: Gaussian noise is added to the input while training, the target stays clean.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet import nn
from nurinet.autograd.tensor import Parameter, Tensor, as_tensor
from nurinet.models._arguments import _KeepsArguments
from nurinet.nn.linear import Linear, _resolve_activation
from nurinet.random import Generator, resolve


class _TiedLinear(nn.Module):
    """``y = x W + b`` where ``W`` is the weight of an encoder ``Linear`` (not a copy): the
    decoder layer that mirrors it. Only the bias is its own parameter."""

    def __init__(self, source: Linear, activation: Any = None) -> None:
        super().__init__()
        object.__setattr__(self, "_source", source)  # not a submodule: its weight is counted once
        self.bias = Parameter(np.zeros(source.in_features, dtype=source.weight.dtype))
        self.activation = _resolve_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        y = F.matmul(x, self._source.weight) + self.bias
        return y if self.activation is None else self.activation(y)

    def extra_repr(self) -> str:
        return f"tied to Linear({self._source.in_features}, {self._source.out_features}) transposed"


class Autoencoder(_KeepsArguments):
    """A fully connected autoencoder whose decoder mirrors its encoder.

    Args:
        sizes: Widths from the input to the code, e.g. ``[64, 32, 2]``: encoder 64-32-2,
            decoder 2-32-64.
        activation: Activation of every hidden layer (name, function or module).
        code_activation: Activation of the code layer (None: linear code).
        output_activation: Activation of the reconstruction (``"sigmoid"`` for data in [0, 1],
            None for real-valued data).
        tied_weights: Decoder layers use the transposed encoder weights.
        noise_std: Standard deviation of the Gaussian noise added to the input in training mode
            (0: a plain autoencoder).
        generator: Random source of the initialization and of the noise.

    Shape:
        - Input: ``(N, sizes[0])``
        - Output: ``(N, sizes[0])``, the reconstruction; ``encode`` gives ``(N, sizes[-1])``
    """

    def __init__(self, sizes: Sequence[int], activation: Any = "relu", code_activation: Any = None,
                 output_activation: Any = "sigmoid", tied_weights: bool = False, noise_std: float = 0.0,
                 generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"Autoencoder: sizes needs at least an input and a code width, all positive, got {sizes}")
        if noise_std < 0:
            raise ValueError(f"Autoencoder: noise_std must be >= 0, got {noise_std}")
        self.noise_std, self.generator = float(noise_std), generator
        depth = len(sizes) - 1
        encoder = [Linear(n_in, n_out, activation=activation if i < depth - 1 else code_activation,
                          generator=generator)
                   for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes))]
        decoder: list[nn.Module] = []
        for i, layer in enumerate(reversed(encoder)):
            act = activation if i < depth - 1 else output_activation
            decoder.append(_TiedLinear(layer, act) if tied_weights
                           else Linear(layer.out_features, layer.in_features, activation=act, generator=generator))
        self.encoder, self.decoder = nn.Sequential(*encoder), nn.Sequential(*decoder)

    def encode(self, x: Any) -> Tensor:
        """The code of each sample (no noise)."""
        return self.encoder(as_tensor(x))

    def decode(self, code: Any) -> Tensor:
        """The reconstruction of each code."""
        return self.decoder(as_tensor(code))

    def forward(self, x: Any) -> Tensor:
        x = as_tensor(x)
        if self.training and self.noise_std > 0:
            noise = resolve(self.generator).standard_normal(x.shape).astype(x.dtype) * x.dtype.type(self.noise_std)
            x = x + noise
        return self.decoder(self.encoder(x))
