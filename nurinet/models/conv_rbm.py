"""Convolutional RBM with probabilistic max-pooling (Lee, Grosse, Ranganath and Ng, 2009).

The visible layer is an image ``v`` of shape ``(C, H, W)``. Hidden group ``k`` is a map
``h^k`` of shape ``(H - r + 1, W - r + 1)``, every unit of which sees one ``r x r`` patch
through the group's shared filter ``W^k`` (``(C, r, r)``), so the energy is::

    E(v, h) = -sum_k sum_ij h^k_ij (I^k_ij - b_k) - sum_k b_k sum_ij h^k_ij - sum_c a_c sum_ij v_cij
    I^k = (W^k * v) + b_k   (a valid cross-correlation, as ``F.conv2d``)

with ``+ ||v||^2 / 2`` for Gaussian (unit-variance) visible units. Probabilistic max-pooling
splits each hidden map into ``p x p`` blocks ``B``, allows at most one unit of a block to be on,
and makes the block's pooling unit the OR of them. A block then has ``p^2 + 1`` states, and::

    P(h^k_ij = 1 | v) = exp(I^k_ij) / (1 + sum_{(i',j') in B} exp(I^k_i'j'))
    P(pool_B = 0 | v) = 1 / (1 + sum_{(i',j') in B} exp(I^k_i'j'))

(``p = 1`` is the plain sigmoid of an RBM). Going down, ``v`` given ``h`` is independent per
pixel with mean ``sigmoid(sum_k W^k (*) h^k + a)`` (a full convolution: ``F.conv_transpose2d``)
or that pre-activation as a Gaussian's mean. Training is contrastive divergence, as
:class:`nurinet.models.RBM`: the estimate of the negative log-likelihood's gradient is written
into the parameters' ``.grad`` so that any optimizer applies it. A sparsity target pulls each
group's mean hidden activation toward ``sparsity_target`` through the hidden biases (Lee et al.'s
regularizer, as they apply it).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet import backend, optim
from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Parameter, Tensor, as_tensor
from nurinet.functional.activation import sigmoid_array
from nurinet.models._arguments import _KeepsArguments
from nurinet.models.rbm import gibbs_chain, train_by_contrastive_divergence
from nurinet.random import Generator, resolve

_VISIBLE_KINDS = ("bernoulli", "gaussian")
_EXACT_LIMIT = 16  # log_partition enumerates 2**(C*H*W) visible images


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"ConvRBM: {name} must be a positive integer, got {value!r}")
    return int(value)


def to_blocks(x: Any, pool: int) -> Any:
    """``(N, K, H, W)`` -> ``(N, K, H / pool, W / pool, pool * pool)``: the units of each pooling block last."""
    n, k, h, w = x.shape
    grouped = x.reshape(n, k, h // pool, pool, w // pool, pool).transpose(0, 1, 2, 4, 3, 5)
    return grouped.reshape(n, k, h // pool, w // pool, pool * pool)


def from_blocks(blocks: Any, pool: int) -> Any:
    """The inverse of :func:`to_blocks`."""
    n, k, hp, wp, _ = blocks.shape
    grouped = blocks.reshape(n, k, hp, wp, pool, pool).transpose(0, 1, 2, 4, 3, 5)
    return grouped.reshape(n, k, hp * pool, wp * pool)


def block_probabilities(pre: Any, pool: int) -> tuple[Any, Any]:
    """Probabilistic max-pooling of pre-activations ``I`` ``(N, K, H, W)``.

    Returns ``(P(h = 1 | v)`` of every hidden unit, ``P(pool = 0 | v)`` of every block
    ``(N, K, H / pool, W / pool))``: a softmax over each block's ``pool^2`` units and the
    "all off" state, whose energy is 0. The largest exponent is taken out first, so no ``exp``
    overflows.
    """
    xp = backend.get_array_module(pre)
    blocks = to_blocks(pre, pool)
    top = xp.maximum(blocks.max(axis=-1, keepdims=True), 0.0)
    on = xp.exp(blocks - top)
    off = xp.exp(-top)
    total = off + on.sum(axis=-1, keepdims=True)
    return from_blocks(on / total, pool), (off / total)[..., 0]


def log_block_sums(pre: Any, pool: int) -> Any:
    """``log(1 + sum_{i in B} exp(I_i))`` of every block: what summing out a block's states leaves."""
    xp = backend.get_array_module(pre)
    blocks = to_blocks(pre, pool)
    top = xp.maximum(blocks.max(axis=-1), 0.0)
    return top + xp.log(xp.exp(-top) + xp.exp(blocks - top[..., None]).sum(axis=-1))


class ConvRBM(_KeepsArguments):
    """A convolutional RBM with shared filters and probabilistic max-pooling, trained by CD-k.

    Initialization (as :class:`nurinet.models.RBM`): filters ~ N(0, 0.01^2), biases 0.

    Args:
        in_channels: Visible channels ``C``.
        filters: Hidden groups ``K`` (one shared filter each).
        kernel_size: Filter side ``r`` (square filters).
        pool_size: Side ``p`` of the pooling blocks; the hidden maps' sides must be multiples
            of it. 1 is a convolutional RBM without pooling.
        visible: ``"bernoulli"`` (inputs in [0, 1]) or ``"gaussian"`` (real inputs, best
            standardized to unit variance).
        sparsity_target: Target mean activation of each hidden group (e.g. 0.05), or None.
        sparsity_cost: Strength of the pull toward the target: ``sparsity_cost * (q_k - target)``
            is added to hidden bias k's gradient, ``q_k`` the group's mean ``P(h = 1 | v)`` over
            the batch (Lee et al. regularize the hidden biases only, with this update).
        dtype: Parameter dtype (float32 by default).
        generator: Random source of the initialization and of every Gibbs sample.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output of ``forward``: ``(N, K, (H - r + 1) / p, (W - r + 1) / p)``, the pooling units'
          probabilities ``P(pool = 1 | v)``; ``hidden_probs`` gives the ``(N, K, H - r + 1, W - r + 1)``
          detection units'.

    Attributes:
        weight: ``(K, C, r, r)``, the layout of ``nn.Conv2d``'s weight.
        hidden_bias: ``(K,)``, one per group.
        visible_bias: ``(C,)``, one per channel.
    """

    def __init__(self, in_channels: int, filters: int, kernel_size: int, pool_size: int = 2,
                 visible: str = "bernoulli", sparsity_target: float | None = None, sparsity_cost: float = 0.0,
                 dtype: Any = None, generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        if visible not in _VISIBLE_KINDS:
            raise ValueError(f"ConvRBM: visible must be one of {_VISIBLE_KINDS}, got {visible!r}")
        if sparsity_target is not None and not 0 < sparsity_target < 1:
            raise ValueError(f"ConvRBM: sparsity_target must lie in (0, 1) or be None, got {sparsity_target!r}")
        if not sparsity_cost >= 0:
            raise ValueError(f"ConvRBM: sparsity_cost must be >= 0, got {sparsity_cost!r}")
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.filters = _positive_int(filters, "filters")
        self.kernel_size = _positive_int(kernel_size, "kernel_size")
        self.pool_size = _positive_int(pool_size, "pool_size")
        self.visible, self.generator = visible, generator
        self.sparsity_target, self.sparsity_cost = sparsity_target, float(sparsity_cost)
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        shape = (self.filters, self.in_channels, self.kernel_size, self.kernel_size)
        self.weight = Parameter((resolve(generator).standard_normal(shape) * 0.01).astype(dtype))
        self.hidden_bias = Parameter(np.zeros(self.filters, dtype))
        self.visible_bias = Parameter(np.zeros(self.in_channels, dtype))
        self._chain: Any = None  # the persistent chain's visible state (PCD)

    # ----- shapes --------------------------------------------------------------------------------
    def _visible_array(self, v: Any) -> Any:
        array = backend.to_device(as_tensor(v).array, self.weight.device)
        name = f"ConvRBM({self.in_channels}, {self.filters}, kernel_size={self.kernel_size})"
        if array.ndim != 4 or array.shape[1] != self.in_channels:
            raise ValueError(f"{name}: expected visible images of shape (N, {self.in_channels}, H, W), "
                             f"got {array.shape}")
        hidden = [side - self.kernel_size + 1 for side in array.shape[2:]]
        if min(hidden) < 1 or any(side % self.pool_size for side in hidden):
            raise ValueError(f"{name}: images of {array.shape[2]}x{array.shape[3]} give hidden maps of "
                             f"{hidden[0]}x{hidden[1]}, which must be positive multiples of pool_size="
                             f"{self.pool_size} (crop or pad the images)")
        return array.astype(self.weight.dtype, copy=False)

    # ----- conditionals (on arrays) --------------------------------------------------------------
    def hidden_input(self, v: Any) -> Any:
        """The pre-activations ``I^k = W^k * v + b_k``, ``(N, K, H - r + 1, W - r + 1)``."""
        with no_grad():
            return F.conv2d(v, self.weight.array, self.hidden_bias.array).array

    def hidden_probs(self, v: Any) -> Any:
        """``P(h^k_ij = 1 | v)`` of every detection unit, under probabilistic max-pooling."""
        return block_probabilities(self.hidden_input(v), self.pool_size)[0]

    def pooled_probs(self, v: Any) -> Any:
        """``P(pool = 1 | v)`` of every pooling unit: the features the next layer sees."""
        # 1 - P(block all off) = 1 - 1 / (1 + sum exp(I)), from the block sums alone (no unit map)
        pre = self.hidden_input(v)
        return -backend.get_array_module(pre).expm1(-log_block_sums(pre, self.pool_size))

    def visible_mean(self, h: Any) -> Any:
        """``E[v | h]``: ``sigmoid(sum_k W^k (*) h^k + a)`` for Bernoulli units, the pre-activation otherwise."""
        with no_grad():
            pre = F.conv_transpose2d(h, self.weight.array).array
        pre = pre + self.visible_bias.array[:, None, None]
        return sigmoid_array(pre) if self.visible == "bernoulli" else pre

    def sample_hidden(self, v: Any) -> tuple[Any, Any]:
        """``(P(h = 1 | v), a sample of h)``: per block, one unit on or none, drawn from the block's softmax."""
        probs, _ = block_probabilities(self.hidden_input(v), self.pool_size)
        blocks = to_blocks(probs, self.pool_size)
        xp = backend.get_array_module(blocks)
        u = self._draw("random", blocks.shape[:-1]).astype(blocks.dtype)[..., None]
        chosen = (xp.cumsum(blocks, axis=-1) <= u).sum(axis=-1, keepdims=True)  # pool^2 means "all off"
        sample = (xp.arange(blocks.shape[-1]) == chosen).astype(probs.dtype)
        return probs, from_blocks(sample, self.pool_size)

    def sample_visible(self, h: Any) -> tuple[Any, Any]:
        """``(E[v | h], a sample of v)``."""
        mean = self.visible_mean(h)
        if self.visible == "bernoulli":
            return mean, (self._draw("random", mean.shape) < mean).astype(mean.dtype)
        return mean, mean + self._draw("standard_normal", mean.shape).astype(mean.dtype)

    def _draw(self, distribution: str, shape: tuple[int, ...]) -> Any:
        values = getattr(resolve(self.generator), distribution)(shape)
        return backend.to_device(values.astype(self.weight.dtype), self.weight.device)

    # ----- training ------------------------------------------------------------------------------
    def _correlate(self, v: Any, h: Any) -> Any:
        """``sum_n sum_ij h^k_ij v_c,i+a,j+b`` for every (k, c, a, b): the filters' statistics, as
        the convolution of ``v`` with ``h`` over the batch (batch and channels swapped)."""
        xp = backend.get_array_module(v)
        with no_grad():
            out = F.conv2d(xp.ascontiguousarray(v.transpose(1, 0, 2, 3)),
                           xp.ascontiguousarray(h.transpose(1, 0, 2, 3))).array
        return out.transpose(1, 0, 2, 3)

    def contrastive_divergence(self, v: Any, k: int = 1, persistent: bool = False) -> float:
        """Estimate the gradient of the mean negative log-likelihood by CD-k; write it into ``.grad``.

        As :meth:`nurinet.models.RBM.contrastive_divergence`, with the statistics summed over
        positions and, as Lee et al. write the updates, averaged over them too, so that one
        learning rate suits every image size: ``weight.grad = -(corr(v_0, P(h | v_0)) -
        corr(v_k, P(h | v_k))) / (N * Hh * Wh)`` (``Hh x Wh`` a hidden map), ``hidden_bias.grad``
        the same with ``sum_ij P(h^k_ij)``, ``visible_bias.grad`` with ``sum_ij v_cij`` over
        ``N * H * W``. Each is the gradient of the mean negative log-likelihood divided by that
        count. Plus the sparsity term on the hidden biases.

        Returns:
            The batch's mean squared reconstruction error after one deterministic up-down pass.
        """
        v0, h0_prob, v_neg, hk_prob = gibbs_chain(self, v, k, persistent)
        hidden_count = h0_prob.shape[0] * h0_prob.shape[2] * h0_prob.shape[3]
        visible_count = v0.shape[0] * v0.shape[2] * v0.shape[3]
        weight_grad = -(self._correlate(v0, h0_prob) - self._correlate(v_neg, hk_prob)) / hidden_count
        self.weight.grad = as_tensor(weight_grad.astype(self.weight.dtype))
        hidden_grad = -(h0_prob.sum(axis=(0, 2, 3)) - hk_prob.sum(axis=(0, 2, 3))) / hidden_count
        if self.sparsity_target is not None and self.sparsity_cost:
            hidden_grad = hidden_grad + self.sparsity_cost * (h0_prob.mean(axis=(0, 2, 3)) - self.sparsity_target)
        self.hidden_bias.grad = as_tensor(hidden_grad.astype(self.weight.dtype))
        visible_grad = -(v0.sum(axis=(0, 2, 3)) - v_neg.sum(axis=(0, 2, 3))) / visible_count
        self.visible_bias.grad = as_tensor(visible_grad.astype(self.weight.dtype))
        return float(((v0 - self.visible_mean(h0_prob)) ** 2).mean())

    def fit(self, x: Any, epochs: int = 10, batch_size: int = 64, lr: float = 0.1, k: int = 1,
            momentum: float = 0.5, weight_decay: float = 0.0, persistent: bool = False,
            optimizer: optim.Optimizer | None = None, verbose: bool = False) -> list[float]:
        """Train on the images ``x`` ``(N, C, H, W)`` by CD-k with mini-batch SGD (as ``RBM.fit``).

        Returns the mean reconstruction error of each epoch.
        """
        opt = optimizer or optim.SGD(self.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        label = f"ConvRBM {self.in_channels}->{self.filters}" if verbose else None
        return train_by_contrastive_divergence(self, self._visible_array(x), opt, epochs, batch_size, k,
                                               persistent, label)

    # ----- inference -----------------------------------------------------------------------------
    def forward(self, v: Any) -> Tensor:
        """The pooling units' probabilities ``P(pool = 1 | v)`` (not differentiable: see ``CDBN.to_classifier``)."""
        return as_tensor(self.pooled_probs(self._visible_array(v)))

    def reconstruction_error(self, v: Any) -> float:
        """Mean squared error of one deterministic up-down pass, ``E[v | h = P(h | v)]``."""
        data = self._visible_array(v)
        return float(((data - self.visible_mean(self.hidden_probs(data))) ** 2).mean())

    def free_energy(self, v: Any) -> Tensor:
        """``F(v) = -log sum_h exp(-E(v, h))``, one value per image (the hidden states sum out per block)."""
        data = self._visible_array(v)
        pre = self.hidden_input(data).astype(np.float64)
        data = data.astype(np.float64)
        a = self.visible_bias.array.astype(np.float64)[:, None, None]
        hidden_term = log_block_sums(pre, self.pool_size).sum(axis=(1, 2, 3))
        if self.visible == "bernoulli":
            visible_term = -(data * a).sum(axis=(1, 2, 3))
        else:
            visible_term = 0.5 * ((data - a) ** 2).sum(axis=(1, 2, 3))
        return as_tensor(visible_term - hidden_term)

    def log_partition(self, image_size: tuple[int, int]) -> float:
        """``log Z`` for images of ``image_size`` (H, W), by enumerating every binary image
        (Bernoulli units, at most 16 visible units: a tool for checking small models)."""
        if self.visible != "bernoulli":
            raise ValueError("ConvRBM.log_partition: exact enumeration needs Bernoulli visible units")
        shape = (self.in_channels, *image_size)
        if math.prod(shape) > _EXACT_LIMIT:
            raise ValueError(f"ConvRBM.log_partition: {math.prod(shape)} visible units means 2**"
                             f"{math.prod(shape)} images; exact enumeration is limited to {_EXACT_LIMIT}")
        images = np.array(list(itertools.product((0.0, 1.0), repeat=math.prod(shape)))).reshape(-1, *shape)
        log_terms = -self.free_energy(images.astype(self.weight.dtype)).numpy()
        top = log_terms.max()
        return float(top + np.log(np.exp(log_terms - top).sum()))

    def log_likelihood(self, v: Any) -> float:
        """Mean exact ``log p(v)`` of the images ``v`` (small Bernoulli models only, see ``log_partition``)."""
        data = self._visible_array(v)
        return float(-self.free_energy(data).numpy().mean() - self.log_partition(data.shape[2:]))

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.filters}, kernel_size={self.kernel_size}, pool_size={self.pool_size}, "
                f"visible={self.visible!r}")
        if self.sparsity_target is not None:
            text += f", sparsity_target={self.sparsity_target}, sparsity_cost={self.sparsity_cost}"
        return text
