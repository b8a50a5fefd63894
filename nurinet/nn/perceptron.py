"""Rosenblatt's perceptron: a single threshold unit trained by the perceptron learning rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Parameter, Tensor
from nurinet.nn import init
from nurinet.nn.module import Module
from nurinet.random import Generator

WEIGHT_INITS = ("zeros", "uniform", "normal")


@dataclass
class PerceptronFit:
    """What :meth:`Perceptron.fit` did.

    Attributes:
        converged: An epoch classified every sample correctly (training stopped there).
        epochs: Number of epochs run.
        errors: Misclassified samples in each epoch.
    """

    converged: bool
    epochs: int
    errors: list[int] = field(default_factory=list)


class Perceptron(Module):
    """A single-layer perceptron with a step activation.

    ``y_hat = 1 if w . x + b > threshold else 0``. Trained by Rosenblatt's rule,
    not by gradients: for each sample it gets wrong,
    ``w += lr * (y - y_hat) * x`` and ``b += lr * (y - y_hat)``. The rule finds a
    separating line whenever one exists (AND, OR, NAND) and never settles when
    none does (XOR).

    Args:
        in_features: Number of inputs.
        threshold: The unit fires when ``w . x + b`` exceeds it.
        lr: Learning rate of the rule (> 0).
        weight_init: Where weight and bias start: ``"zeros"`` (the default, Rosenblatt's
            textbook start, which makes training deterministic), ``"uniform"`` (U(-init_scale,
            init_scale)) or ``"normal"`` (N(0, init_scale^2)). A random start shows that the
            rule finds a different separating line from each start.
        init_scale: Half-width or standard deviation of the random start (> 0).
        generator: Random source of the random start (default: ``nurinet.manual_seed``'s).

    Shape:
        - Input: ``(N, in_features)``
        - Output: ``(N,)`` of 0 and 1

    Attributes:
        weight: Parameter of shape ``(in_features,)``, starting at 0 unless ``weight_init`` says
            otherwise (not trained by gradients).
        bias: Parameter of shape ``()``, starting as the weight.
    """

    def __init__(self, in_features: int, threshold: float = 0.5, lr: float = 1.0, weight_init: str = "zeros",
                 init_scale: float = 0.5, generator: Generator | None = None) -> None:
        super().__init__()
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"Perceptron: in_features must be a positive integer, got {in_features!r}")
        if not lr > 0:
            raise ValueError(f"Perceptron: the learning rate lr must be > 0, got {lr!r}")
        self.in_features = in_features
        self.threshold = float(threshold)
        self.lr = float(lr)
        self.weight = Parameter(np.zeros(in_features, np.float32), requires_grad=False)
        self.bias = Parameter(np.zeros((), np.float32), requires_grad=False)
        self.converged = False
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"Perceptron: weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}")
        if not init_scale > 0:
            raise ValueError(f"Perceptron: init_scale must be > 0, got {init_scale!r}")
        self.weight_init, self.init_scale = weight_init, float(init_scale)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """Set weight and bias as ``weight_init`` says (zeros, or a random draw from ``generator``)."""
        for param in (self.weight, self.bias):
            if self.weight_init == "uniform":
                init.uniform_(param, -self.init_scale, self.init_scale, generator)
            elif self.weight_init == "normal":
                init.normal_(param, 0.0, self.init_scale, generator)
            else:
                init.zeros_(param)
        self.converged = False

    def _inputs(self, x: Any) -> np.ndarray:
        array = backend.to_numpy(x.array) if isinstance(x, Tensor) else np.asarray(x)
        if array.ndim != 2 or array.shape[1] != self.in_features:
            raise ValueError(
                f"{self!r} expects inputs of shape (N, {self.in_features}), got shape {array.shape}"
            )
        return array.astype(self.weight.dtype)

    def _fire(self, x: np.ndarray) -> np.ndarray:
        return (x @ self.weight.array + self.bias.array > self.threshold).astype(np.int64)

    def predict(self, x: Any) -> np.ndarray:
        """The 0/1 outputs for the rows of ``x``, as an int64 NumPy array."""
        return self._fire(self._inputs(x))

    def forward(self, x: Any) -> Tensor:
        """The 0/1 outputs as a Tensor of the parameters' dtype (the step has no gradient)."""
        return Tensor(self.predict(x).astype(self.weight.dtype))

    def fit(self, x: Any, y: Any, epochs: int = 100) -> PerceptronFit:
        """Apply the perceptron rule over the samples in order, for up to ``epochs`` passes.

        Training stops after the first epoch with no mistake.

        Args:
            x: Inputs of shape ``(N, in_features)``.
            y: Targets of shape ``(N,)``, each 0 or 1.
            epochs: Maximum number of passes over the data.

        Returns:
            Whether it converged, the epochs run and the mistakes per epoch.
        """
        inputs = self._inputs(x)
        targets = backend.to_numpy(y.array) if isinstance(y, Tensor) else np.asarray(y)
        if targets.shape != (len(inputs),) or not np.isin(targets, (0, 1)).all():
            raise ValueError(f"Perceptron.fit: y must hold one 0 or 1 per sample, shape ({len(inputs)},); "
                             f"got shape {targets.shape} with values {np.unique(targets)[:5]}")
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"Perceptron.fit: epochs must be a positive integer, got {epochs!r}")
        result = PerceptronFit(converged=False, epochs=0)
        for _ in range(epochs):
            result.errors.append(self._epoch(inputs, targets))
            result.epochs += 1
            if result.errors[-1] == 0:
                result.converged = True
                break
        self.converged = result.converged
        return result

    def _epoch(self, inputs: np.ndarray, targets: np.ndarray) -> int:
        """One pass of the rule; returns the number of mistakes."""
        mistakes = 0
        for xi, yi in zip(inputs, targets):
            error = int(yi) - int(self._fire(xi[None])[0])
            if error:
                mistakes += 1
                self.weight.array += self.weight.dtype.type(self.lr * error) * xi
                self.bias.array += self.bias.dtype.type(self.lr * error)
        return mistakes

    def extra_repr(self) -> str:
        text = f"in_features={self.in_features}, threshold={self.threshold}, lr={self.lr}"
        if self.weight_init != "zeros":
            text += f", weight_init={self.weight_init!r}, init_scale={self.init_scale}"
        return text
