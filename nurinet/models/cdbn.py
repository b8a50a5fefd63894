"""Convolutional deep belief network (Lee, Grosse, Ranganath and Ng, 2009): stacked ConvRBMs.

As :class:`nurinet.models.DBN` stacks RBMs, a CDBN stacks :class:`ConvRBM` layers: each is
trained greedily, by CD-k, on the pooling units' probabilities of the one below, so that a
layer's filters see the (max-pooled, smaller) feature maps of the previous one and learn larger
parts: strokes at the first layer, parts of digits above. ``transform`` gives the features of
the trained stack for another learner; ``to_classifier`` turns the stack into a network of
convolutions and :class:`ProbabilisticMaxPool2d` layers, which computes the same bottom-up
features, plus a new ``Linear`` output layer, for supervised fine-tuning by back-propagation.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet import backend, nn
from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.models._arguments import _KeepsArguments
from nurinet.models.conv_rbm import ConvRBM
from nurinet.random import Generator


class ProbabilisticMaxPool2d(nn.Module):
    """The pooling units' probability ``P(pool = 1 | v)`` of probabilistic max-pooling, from the
    detection units' pre-activations: ``sigmoid(logsumexp(block))`` over each ``p x p`` block
    (``1 - 1 / (1 + sum exp(I))`` written without overflow). Differentiable, so a CDBN's
    bottom-up pass can be fine-tuned.

    Args:
        pool_size: Side ``p`` of the non-overlapping blocks (the input's sides must be multiples of it).

    Shape:
        - Input: ``(N, K, H, W)``, pre-activations
        - Output: ``(N, K, H / p, W / p)``, probabilities
    """

    def __init__(self, pool_size: int) -> None:
        super().__init__()
        self.pool_size = int(pool_size)

    def forward(self, x: Any) -> Tensor:
        x = as_tensor(x)
        n, k, h, w = x.shape
        p = self.pool_size
        if h % p or w % p:
            raise ValueError(f"{self!r}: the input's sides {h}x{w} must be multiples of pool_size={p}")
        blocks = F.reshape(x, (n, k, h // p, p, w // p, p))
        return F.sigmoid(F.logsumexp(blocks, axis=(3, 5)))

    def extra_repr(self) -> str:
        return f"pool_size={self.pool_size}"


class CDBN(_KeepsArguments):
    """A convolutional deep belief network: ConvRBMs pre-trained greedily, one layer at a time.

    Args:
        rbms: The layers, bottom first; layer ``i + 1``'s ``in_channels`` is layer ``i``'s ``filters``.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output of ``forward``: the top layer's pooling probabilities ``(N, K_top, H_top, W_top)``
    """

    def __init__(self, rbms: Sequence[ConvRBM]) -> None:
        super().__init__()
        self._keep_arguments(locals())
        rbms = list(rbms)
        if not rbms:
            raise ValueError("CDBN needs at least one ConvRBM")
        for i, (below, above) in enumerate(itertools.pairwise(rbms)):
            if above.in_channels != below.filters:
                raise ValueError(f"CDBN: layer {i + 1} expects {above.in_channels} input channels but layer {i} "
                                 f"has {below.filters} filters")
        self.rbms = nn.ModuleList(rbms)

    def pretrain(self, x: Any, epochs: int = 10, batch_size: int = 64, lr: float | Sequence[float] = 0.1,
                 k: int = 1, momentum: float = 0.5, verbose: bool = False) -> list[list[float]]:
        """Greedy layer-wise pre-training: each ConvRBM learns, by CD-k, the pooled probabilities
        of the trained layers below. ``lr`` is one learning rate or one per layer (an upper layer,
        whose units see ``C * r^2`` inputs of many channels, often needs a smaller one). Returns
        each layer's reconstruction errors per epoch."""
        rates = [float(lr)] * len(self.rbms) if isinstance(lr, (int, float)) else [float(r) for r in lr]
        if len(rates) != len(self.rbms):
            raise ValueError(f"CDBN.pretrain: lr gives {len(rates)} learning rates for {len(self.rbms)} layers")
        data, histories = as_tensor(x).array, []
        for rbm, rate in zip(self.rbms, rates):
            histories.append(rbm.fit(data, epochs=epochs, batch_size=batch_size, lr=rate, k=k, momentum=momentum,
                                     verbose=verbose))
            data = rbm.pooled_probs(rbm._visible_array(data))
        return histories

    def _layer_outputs(self, x: Any) -> list[Any]:
        outputs, data = [], as_tensor(x).array
        for rbm in self.rbms:
            data = rbm.pooled_probs(rbm._visible_array(data))
            outputs.append(data)
        return outputs

    def forward(self, x: Any) -> Tensor:
        """The top layer's pooling probabilities (not differentiable: see ``to_classifier``)."""
        return as_tensor(self._layer_outputs(x)[-1])

    def transform(self, x: Any, layers: str = "top") -> np.ndarray:
        """Features for another learner, one row per image: the top layer's pooling probabilities
        flattened (``layers="top"``), or every layer's, concatenated bottom first (``"all"``, as
        Lee et al. fed their classifiers)."""
        if layers not in ("top", "all"):
            raise ValueError(f"CDBN.transform: layers must be 'top' or 'all', got {layers!r}")
        outputs = self._layer_outputs(x)
        chosen = outputs[-1:] if layers == "top" else outputs
        return np.concatenate([backend.to_numpy(o).reshape(len(o), -1) for o in chosen], axis=1)

    def to_classifier(self, num_classes: int, image_size: tuple[int, int],
                      generator: Generator | None = None) -> nn.Sequential:
        """A network that computes the stack's bottom-up pooled probabilities (``Conv2d`` with the
        filters and hidden biases, then :class:`ProbabilisticMaxPool2d`, per layer), flattens them
        and adds a new ``Linear`` output layer (logits for ``F.cross_entropy``). Its parameters are
        copies, so fine-tuning leaves the CDBN as it is.

        Args:
            num_classes: Outputs of the new output layer.
            image_size: ``(H, W)`` of the input images (sizes the output layer).
            generator: Random source of the output layer's initialization.
        """
        layers: list[nn.Module] = []
        for rbm in self.rbms:
            conv = nn.Conv2d(rbm.in_channels, rbm.filters, rbm.kernel_size, dtype=rbm.weight.dtype)
            conv = conv.to(rbm.weight.device)
            with no_grad():
                conv.weight.array[...] = rbm.weight.array
                conv.bias.array[...] = rbm.hidden_bias.array
            layers += [conv, ProbabilisticMaxPool2d(rbm.pool_size)]
        first = self.rbms[0]
        probe = np.zeros((1, first.in_channels, *image_size), first.weight.dtype)
        features = int(np.prod(self._layer_outputs(backend.to_device(probe, first.weight.device))[-1].shape))
        output = nn.Linear(features, num_classes, dtype=first.weight.dtype, generator=generator)
        return nn.Sequential(*layers, nn.Flatten(), output.to(first.weight.device))
