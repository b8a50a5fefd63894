"""Siamese networks (샴 네트워크): two inputs through one network, compared by a distance.

Both items of a pair go through the same embedding module, the same weights, so the
embedding is one function ``f`` and the model is symmetric. Training pulls the embeddings
of similar pairs together and pushes dissimilar ones apart, typically with the contrastive
loss (Hadsell, Chopra and LeCun 2006; ``nn.ContrastiveLoss``) on the Euclidean distance, or
``nn.CosineEmbeddingLoss`` on the cosine. Since the two branches share parameters, each
parameter's gradient is the sum of what both branches send it. Afterwards the distance
``d(f(a), f(b))`` says whether two items are alike, including items of classes never seen
in training (one-shot verification: signatures, faces).
"""

from __future__ import annotations

from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet import nn
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.models._arguments import _KeepsArguments
from nurinet.random import Generator, resolve

_DISTANCES = ("euclidean", "cosine")


class SiameseNetwork(_KeepsArguments):
    """Runs two inputs through one shared embedding module and compares the embeddings.

    Args:
        embedding: Any module mapping an input batch to ``(N, D)`` embeddings. It is held
            once: ``parameters()`` lists its weights once, and both branches use them.
        distance: ``"euclidean"`` (``F.pairwise_distance``, for ``nn.ContrastiveLoss``) or
            ``"cosine"`` (``1 - cosine similarity``, for ``nn.CosineEmbeddingLoss``).

    Shape:
        - Input: ``x1`` and ``x2``, each an input batch of ``embedding`` with the same ``N``
        - Output of ``forward``: ``(e1, e2)``, two ``(N, D)`` embeddings
        - Output of ``distance``: ``(N,)``
    """

    def __init__(self, embedding: nn.Module, distance: str = "euclidean") -> None:
        super().__init__()
        self._keep_arguments(locals())
        if not isinstance(embedding, nn.Module):
            raise TypeError(f"SiameseNetwork: embedding must be a nurinet.nn.Module, got {type(embedding).__name__}")
        if distance not in _DISTANCES:
            raise ValueError(f"SiameseNetwork: distance must be one of {_DISTANCES}, got {distance!r}")
        self.embedding, self.distance_kind = embedding, distance

    def embed(self, x: Any) -> Tensor:
        """The embeddings of one batch, ``(N, D)``."""
        e = self.embedding(as_tensor(x))
        if e.ndim != 2:
            raise ValueError(f"SiameseNetwork: the embedding module must return (N, D) embeddings, got shape "
                             f"{e.shape} (add nn.Flatten() at its end?)")
        return e

    def forward(self, x1: Any, x2: Any) -> tuple[Tensor, Tensor]:
        """The embeddings of both inputs (one branch each, the same weights)."""
        x1, x2 = as_tensor(x1), as_tensor(x2)
        if len(x1) != len(x2):
            raise ValueError(f"SiameseNetwork: the two inputs must pair up, got {len(x1)} and {len(x2)} items")
        return self.embed(x1), self.embed(x2)

    def embedding_distance(self, e1: Any, e2: Any) -> Tensor:
        """The model's distance between two batches of embeddings, ``(N,)``."""
        e1, e2 = as_tensor(e1), as_tensor(e2)
        if self.distance_kind == "euclidean":
            return F.pairwise_distance(e1, e2)
        eps = 1e-12  # keeps the cosine finite for a zero embedding
        dot = (e1 * e2).sum(axis=-1)
        norms = ((e1 * e1).sum(axis=-1) * (e2 * e2).sum(axis=-1) + eps) ** 0.5
        return 1.0 - dot / norms

    def distance(self, x1: Any, x2: Any) -> Tensor:
        """The distance between the embeddings of each pair ``(x1[i], x2[i])``, ``(N,)``: small means alike."""
        return self.embedding_distance(*self(x1, x2))

    def extra_repr(self) -> str:
        return f"distance={self.distance_kind!r}"


def make_pairs(x: Any, y: Any, n_pairs: int, positive_fraction: float = 0.5,
               generator: Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random pairs of items from labelled data: same class (label 1) or different classes (label 0).

    Each pair starts from a random item; a positive pair adds another item of its class (a
    different one where the class has two or more), a negative pair an item of another class.

    Args:
        x: Items, ``(N, ...)``.
        y: Their class labels, ``(N,)``.
        n_pairs: Number of pairs.
        positive_fraction: Fraction of same-class pairs (rounded; 0.5 balances them).
        generator: Random source.

    Returns:
        ``(x1, x2, label)``: ``(n_pairs, ...)`` twice, and ``(n_pairs,)`` float32 labels,
        1.0 for a same-class pair and 0.0 otherwise (``nn.ContrastiveLoss``'s convention;
        ``2 * label - 1`` gives ``nn.CosineEmbeddingLoss``'s 1 / -1).

    Raises:
        ValueError: shapes disagree, fewer than two classes, or bad counts.
    """
    items, labels = as_tensor(x).numpy(), np.asarray(as_tensor(y).numpy())
    if labels.ndim != 1 or len(labels) != len(items):
        raise ValueError(f"make_pairs: y must hold one label per item: x has {len(items)} items, y has shape "
                         f"{labels.shape}")
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, (int, np.integer)) or n_pairs < 1:
        raise ValueError(f"make_pairs: n_pairs must be a positive integer, got {n_pairs!r}")
    if not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(f"make_pairs: positive_fraction must be in [0, 1], got {positive_fraction}")
    classes, inverse = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"make_pairs: needs at least two classes to make different-class pairs, got {classes}")
    rng = resolve(generator)
    members = [np.flatnonzero(inverse == c) for c in range(len(classes))]
    strangers = [np.flatnonzero(inverse != c) for c in range(len(classes))]
    n_positive = round(n_pairs * positive_fraction)
    first = rng.integers(0, len(items), n_pairs)
    second = np.empty(n_pairs, dtype=np.int64)
    for i, anchor in enumerate(first):
        own = members[inverse[anchor]]
        if i < n_positive:
            others = own[own != anchor] if len(own) > 1 else own
        else:
            others = strangers[inverse[anchor]]
        second[i] = others[rng.integers(0, len(others))]
    order = rng.permutation(n_pairs)  # mix positives and negatives
    first, second = first[order], second[order]
    label = (inverse[first] == inverse[second]).astype(np.float32)
    return items[first], items[second], label
