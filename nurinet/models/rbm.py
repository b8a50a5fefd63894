"""Restricted Boltzmann machines (제한 볼츠만 머신) and deep belief networks (심층 신뢰 신경망).

An RBM is an energy model over visible units ``v`` and hidden units ``h`` with no
connections inside a layer::

    E(v, h) = -b.v - c.h - h.W.v                     (Bernoulli visible units)
    E(v, h) = ||v - b||^2 / 2 - c.h - h.W.v          (Gaussian visible units, unit variance)

so both conditionals factorize: ``p(h_j = 1 | v) = sigmoid(c_j + W_j.v)`` and
``p(v_i = 1 | h) = sigmoid(b_i + h.W_:i)`` (Bernoulli) or ``v | h ~ N(b + h.W, 1)``
(Gaussian). It is not trained by back-propagation: the gradient of the data's
log-likelihood is ``<v h>_data - <v h>_model``, and contrastive divergence (CD-k)
estimates the model term from a Gibbs chain of ``k`` steps started at the data
(persistent CD keeps the chain between updates instead). nurinet writes that estimate,
negated, into the parameters' ``.grad`` so any optimizer can apply it.

A DBN stacks RBMs: each is trained greedily on the hidden activations of the one
below (unsupervised pre-training), then the stack becomes the initial weights of a
sigmoid MLP that is fine-tuned with labels by back-propagation.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from nurinet import backend, nn, optim
from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Parameter, Tensor, as_tensor
from nurinet.functional.activation import sigmoid_array, softplus_array
from nurinet.models._arguments import _KeepsArguments
from nurinet.random import Generator, resolve

_VISIBLE_KINDS = ("bernoulli", "gaussian")
_EXACT_LIMIT = 20  # exact partition functions enumerate 2**min(n_visible, n_hidden) states


def gibbs_chain(model: Any, v: Any, k: int, persistent: bool) -> tuple[Any, Any, Any, Any]:
    """The positive and negative phases of CD-k for an RBM-like ``model`` (one with
    ``hidden_probs``, ``sample_hidden``, ``sample_visible`` and a ``_chain``): k Gibbs steps from
    the data, or from the persistent chain (PCD), which it then moves on.

    Returns:
        ``(v0, P(h | v0), v_k, P(h | v_k))``.

    Raises:
        ValueError: ``k`` is not a positive integer.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{type(model).__name__}.contrastive_divergence: k must be a positive integer, "
                         f"got {k!r}")
    v0 = model._visible_array(v)
    if persistent:  # the positive phase from the data, the chain from where it stopped
        h0_prob = model.hidden_probs(v0)
        if model._chain is None or model._chain.shape != v0.shape:
            model._chain = v0.copy()
        _, h_sample = model.sample_hidden(model._chain)
    else:  # one pass gives the positive phase and the chain's first step
        h0_prob, h_sample = model.sample_hidden(v0)
    for _ in range(k):
        _, v_neg = model.sample_visible(h_sample)
        hk_prob, h_sample = model.sample_hidden(v_neg)
    if persistent:
        model._chain = v_neg
    return v0, h0_prob, v_neg, hk_prob


def train_by_contrastive_divergence(model: Any, data: Any, optimizer: optim.Optimizer, epochs: int,
                                    batch_size: int, k: int, persistent: bool, label: str | None) -> list[float]:
    """The CD-k training loop of an RBM-like ``model`` (one with ``contrastive_divergence`` and a
    ``generator``): shuffled mini-batches, one optimizer step each; prints each epoch's mean
    reconstruction error under ``label`` when one is given. Returns those errors."""
    rng, history = resolve(model.generator), []
    for epoch in range(epochs):
        order, errors = rng.permutation(len(data)), []
        for start in range(0, len(data), batch_size):
            errors.append(model.contrastive_divergence(data[order[start:start + batch_size]], k, persistent))
            optimizer.step()
        history.append(float(np.mean(errors)))
        if label is not None:
            print(f"{label} epoch {epoch + 1}/{epochs}: reconstruction error {history[-1]:.4f}")
    return history


class RBM(_KeepsArguments):
    """A restricted Boltzmann machine trained by contrastive divergence.

    Initialization (Hinton, "A practical guide to training RBMs", 2010): weight ~ N(0, 0.01^2),
    biases zero.

    Args:
        n_visible: Number of visible units.
        n_hidden: Number of hidden units.
        visible: ``"bernoulli"`` (inputs in [0, 1], such as pixel intensities) or ``"gaussian"``
            (real inputs, best standardized to unit variance).
        generator: Random source of the initialization and of every Gibbs sample.

    Shape:
        - Input: ``(N, n_visible)``
        - Output of ``forward``: ``(N, n_hidden)``, the hidden probabilities ``p(h = 1 | v)``
    """

    def __init__(self, n_visible: int, n_hidden: int, visible: str = "bernoulli",
                 generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        if visible not in _VISIBLE_KINDS:
            raise ValueError(f"RBM: visible must be one of {_VISIBLE_KINDS}, got {visible!r}")
        for name, value in (("n_visible", n_visible), ("n_hidden", n_hidden)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"RBM: {name} must be a positive integer, got {value!r}")
        self.n_visible, self.n_hidden, self.visible = int(n_visible), int(n_hidden), visible
        self.generator = generator
        rng = resolve(generator)
        self.weight = Parameter((rng.standard_normal((n_hidden, n_visible)) * 0.01).astype(np.float32))
        self.visible_bias = Parameter(np.zeros(n_visible, np.float32))
        self.hidden_bias = Parameter(np.zeros(n_hidden, np.float32))
        self._chain: np.ndarray | None = None  # the persistent chain's visible state (PCD)

    # ----- conditionals and sampling (on arrays) -------------------------------------------------
    def _visible_array(self, v: Any) -> np.ndarray:
        array = backend.to_device(as_tensor(v).array, self.weight.device)  # the data meets the weights
        if array.ndim != 2 or array.shape[1] != self.n_visible:
            raise ValueError(f"RBM({self.n_visible}, {self.n_hidden}): expected visible data of shape "
                             f"(N, {self.n_visible}), got {array.shape}")
        return array.astype(self.weight.dtype, copy=False)

    def hidden_probs(self, v: np.ndarray) -> np.ndarray:
        """``p(h = 1 | v)`` for each row of ``v``."""
        return sigmoid_array(v @ self.weight.array.T + self.hidden_bias.array)

    def visible_mean(self, h: np.ndarray) -> np.ndarray:
        """``E[v | h]``: ``p(v = 1 | h)`` for Bernoulli units, the Gaussian's mean otherwise."""
        pre = h @ self.weight.array + self.visible_bias.array
        return sigmoid_array(pre) if self.visible == "bernoulli" else pre

    def sample_hidden(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(p(h = 1 | v), a Bernoulli sample of h)``."""
        p = self.hidden_probs(v)
        return p, (self._draw("random", p.shape) < p).astype(p.dtype)

    def sample_visible(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(E[v | h], a sample of v)``."""
        mean = self.visible_mean(h)
        if self.visible == "bernoulli":
            return mean, (self._draw("random", mean.shape) < mean).astype(mean.dtype)
        return mean, mean + self._draw("standard_normal", mean.shape)

    def _draw(self, distribution: str, shape: tuple[int, ...]) -> Any:
        """float32 draws from the RBM's generator (on the host, then on the weights' device)."""
        values = getattr(resolve(self.generator), distribution)(shape, dtype=np.float32)
        return backend.to_device(values, self.weight.device)

    # ----- training ------------------------------------------------------------------------------
    def contrastive_divergence(self, v: Any, k: int = 1, persistent: bool = False) -> float:
        """Estimate the negative log-likelihood gradient by CD-k and write it into ``.grad``.

        Positive phase: ``p(h | v_data)``. Negative phase: ``k`` steps of block Gibbs sampling
        (``h ~ p(h | v)``, ``v ~ p(v | h)``) from the data, or from the persistent chain when
        ``persistent`` (PCD, Tieleman 2008); its statistics are ``p(h | v_k) v_k``, the hidden
        samples averaged out, which lowers the variance without bias. Then
        ``weight.grad = -(<h v>_data - <h v>_model) / N``, and likewise for the biases, so an
        optimizer's ``step()`` climbs the likelihood.

        Args:
            v: A batch of visible vectors, ``(N, n_visible)``.
            k: Gibbs steps (>= 1).
            persistent: Continue the persistent chain instead of restarting at the data.

        Returns:
            The mean squared reconstruction error of the batch after one up-down pass (a
            progress signal, not the objective).
        """
        v0, h0_prob, v_neg, hk_prob = gibbs_chain(self, v, k, persistent)
        n = v0.shape[0]
        self.weight.grad = as_tensor(-(h0_prob.T @ v0 - hk_prob.T @ v_neg) / n)
        self.visible_bias.grad = as_tensor(-(v0 - v_neg).mean(axis=0))
        self.hidden_bias.grad = as_tensor(-(h0_prob - hk_prob).mean(axis=0))
        return float(np.mean((v0 - self.visible_mean(h0_prob)) ** 2))

    def fit(self, x: Any, epochs: int = 10, batch_size: int = 64, lr: float = 0.05, k: int = 1,
            momentum: float = 0.5, weight_decay: float = 0.0, persistent: bool = False,
            optimizer: optim.Optimizer | None = None, verbose: bool = False) -> list[float]:
        """Train on ``x`` (rows are visible vectors) by CD-k with mini-batch SGD.

        Args:
            x: Training data, ``(N, n_visible)``.
            epochs: Passes over the data (shuffled each epoch with the RBM's generator).
            batch_size: Rows per update.
            lr, momentum, weight_decay: The default optimizer's settings (SGD with momentum).
            k: Gibbs steps per update.
            persistent: Use persistent CD.
            optimizer: Any nurinet optimizer over ``self.parameters()``, instead of the default.
            verbose: Print the reconstruction error after each epoch.

        Returns:
            The mean reconstruction error of each epoch.
        """
        opt = optimizer or optim.SGD(self.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        label = f"RBM {self.n_visible}-{self.n_hidden}" if verbose else None
        return train_by_contrastive_divergence(self, self._visible_array(x), opt, epochs, batch_size, k,
                                               persistent, label)

    # ----- inference -----------------------------------------------------------------------------
    def forward(self, v: Any) -> Tensor:
        """The hidden probabilities ``p(h = 1 | v)`` (not differentiable: use a DBN's classifier)."""
        return as_tensor(self.hidden_probs(self._visible_array(v)))

    def reconstruct(self, v: Any) -> Tensor:
        """One deterministic up-down pass: ``E[v | h = p(h | v)]``."""
        return as_tensor(self.visible_mean(self.hidden_probs(self._visible_array(v))))

    def gibbs(self, v: Any, steps: int = 1) -> Tensor:
        """Run ``steps`` of block Gibbs sampling from ``v``; returns the last visible means."""
        current = self._visible_array(v)
        mean = current
        for _ in range(steps):
            _, h = self.sample_hidden(current)
            mean, current = self.sample_visible(h)
        return as_tensor(mean)

    def free_energy(self, v: Any) -> Tensor:
        """``F(v) = -log sum_h exp(-E(v, h))``, so that ``p(v) = exp(-F(v)) / Z``; one value per row."""
        data = self._visible_array(v).astype(np.float64)
        w, b, c = (p.array.astype(np.float64) for p in (self.weight, self.visible_bias, self.hidden_bias))
        hidden_term = softplus_array(data @ w.T + c).sum(axis=1)
        if self.visible == "bernoulli":
            return as_tensor(-data @ b - hidden_term)
        return as_tensor(0.5 * ((data - b) ** 2).sum(axis=1) - hidden_term)

    def log_partition(self) -> float:
        """``log Z`` computed exactly by enumerating every hidden state (Bernoulli-Bernoulli RBMs
        with at most 20 hidden units: a tool for checking small models, exponential in size)."""
        if self.visible != "bernoulli":
            raise ValueError("RBM.log_partition: exact enumeration is only implemented for Bernoulli visible units")
        if self.n_hidden > _EXACT_LIMIT:
            raise ValueError(f"RBM.log_partition: {self.n_hidden} hidden units means 2**{self.n_hidden} states; "
                             f"exact enumeration is limited to {_EXACT_LIMIT}")
        w, b, c = (p.array.astype(np.float64) for p in (self.weight, self.visible_bias, self.hidden_bias))
        states = np.array(list(itertools.product((0.0, 1.0), repeat=self.n_hidden)))
        states = self.weight.xp.asarray(states)  # on the weights' device
        # sum_v exp(-E(v, h)) factorizes over visible units: exp(c.h) * prod_i (1 + exp(b_i + h.W_:i)).
        log_terms = states @ c + softplus_array(states @ w + b).sum(axis=1)
        top = log_terms.max()
        return float(top + np.log(np.exp(log_terms - top).sum()))

    def log_likelihood(self, v: Any) -> float:
        """Mean exact ``log p(v)`` of the rows of ``v`` (small Bernoulli RBMs only, see ``log_partition``)."""
        return float(-self.free_energy(v).numpy().mean() - self.log_partition())

    def extra_repr(self) -> str:
        return f"n_visible={self.n_visible}, n_hidden={self.n_hidden}, visible={self.visible!r}"


class DBN(_KeepsArguments):
    """A deep belief network: RBMs stacked and pre-trained greedily, one layer at a time.

    ``pretrain`` trains the first RBM on the data, then each next RBM on the hidden
    probabilities of the one below. ``to_classifier`` turns the stack into a sigmoid MLP whose
    hidden layers start from the RBMs' weights and hidden biases, with a new output layer, ready
    for supervised fine-tuning by back-propagation (``Model.fit`` or a training loop).

    Args:
        sizes: Units per layer, visible first: ``[784, 256, 64]`` stacks RBM(784, 256) and RBM(256, 64).
        visible: Kind of the first RBM's visible units (the upper ones are Bernoulli).
        generator: Random source of every RBM.

    Shape:
        - Input: ``(N, sizes[0])``
        - Output of ``forward``: ``(N, sizes[-1])``, the top layer's hidden probabilities
    """

    def __init__(self, sizes: Sequence[int], visible: str = "bernoulli", generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        sizes = list(sizes)
        if len(sizes) < 2:
            raise ValueError(f"DBN: sizes needs at least a visible and a hidden size, got {sizes}")
        self.sizes = sizes
        self.rbms = nn.ModuleList([RBM(n_in, n_out, visible if i == 0 else "bernoulli", generator)
                                   for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes))])

    def pretrain(self, x: Any, epochs: int = 10, batch_size: int = 64, lr: float = 0.05, k: int = 1,
                 momentum: float = 0.5, verbose: bool = False) -> list[list[float]]:
        """Greedy layer-wise unsupervised pre-training; returns each RBM's reconstruction errors."""
        data, histories = as_tensor(x).numpy(), []
        for rbm in self.rbms:
            histories.append(rbm.fit(data, epochs=epochs, batch_size=batch_size, lr=lr, k=k, momentum=momentum,
                                     verbose=verbose))
            data = rbm.hidden_probs(rbm._visible_array(data))
        return histories

    def forward(self, x: Any) -> Tensor:
        data = as_tensor(x).numpy()
        for rbm in self.rbms:
            data = rbm.hidden_probs(rbm._visible_array(data))
        return as_tensor(data)

    def to_classifier(self, num_classes: int, generator: Generator | None = None) -> nn.Sequential:
        """A sigmoid MLP initialized from the pre-trained stack, plus a fresh ``Linear`` output layer
        (logits for ``F.cross_entropy``); its parameters are copies, so fine-tuning leaves the DBN as it is."""
        layers: list[nn.Module] = []
        for rbm in self.rbms:
            linear = nn.Linear(rbm.n_visible, rbm.n_hidden).to(rbm.weight.device)
            with no_grad():
                linear.weight.array[...] = rbm.weight.array
                linear.bias.array[...] = rbm.hidden_bias.array
            layers += [linear, nn.Sigmoid()]
        layers.append(nn.Linear(self.sizes[-1], num_classes, generator=generator).to(self.rbms[-1].weight.device))
        return nn.Sequential(*layers)
