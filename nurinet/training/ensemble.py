"""Ensembles of independently trained classifiers: probability averaging and majority vote.

Members trained from different seeds make partly independent errors, so
averaging their class probabilities (or counting their votes) is usually more
accurate than the typical member.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nurinet.training.metrics import _array

_METHODS = ("average", "vote")


def _probabilities(outputs: np.ndarray, from_logits: bool) -> np.ndarray:
    """Class probabilities (N, C) from a member's outputs; binary (N,)/(N, 1) become two columns."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 1 or outputs.shape[-1] == 1:
        p = outputs.reshape(-1)
        p = 1.0 / (1.0 + np.exp(-p)) if from_logits else p
        return np.stack([1.0 - p, p], axis=1)
    if not from_logits:
        return outputs
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class Ensemble:
    """Combine trained classifiers (anything with ``predict(x)``, e.g. Models).

    Args:
        members: The trained models.
        method: ``"average"`` averages the members' class probabilities;
            ``"vote"`` takes the most common predicted class (ties go to the
            class with the higher average probability).
        weights: Optional weight per member (normalized to sum to 1).
        from_logits: The members output logits (softmax / sigmoid is applied);
            False when they already output probabilities.

    Example:
        >>> ens = Ensemble([m1, m2, m3]); ens.accuracy(x_test, y_test)
    """

    def __init__(self, members: Sequence[Any], method: str = "average",
                 weights: Sequence[float] | None = None, from_logits: bool = True) -> None:
        members = list(members)
        if not members:
            raise ValueError("Ensemble needs at least one member")
        if method not in _METHODS:
            raise ValueError(f"Ensemble: method must be one of {_METHODS}, got {method!r}")
        for i, m in enumerate(members):
            if not hasattr(m, "predict"):
                raise TypeError(f"Ensemble member {i} ({type(m).__name__}) has no predict(x) method")
        w = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(members),) or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"Ensemble: weights must be {len(members)} non-negative numbers with a "
                             f"positive sum, got {weights!r}")
        self.members, self.method, self.from_logits = members, method, from_logits
        self.weights = w / w.sum()

    def member_probabilities(self, x: Any) -> np.ndarray:
        """Each member's class probabilities, stacked: (members, N, C)."""
        probs = [_probabilities(_array(m.predict(x)), self.from_logits) for m in self.members]
        shapes = {p.shape for p in probs}
        if len(shapes) > 1:
            raise ValueError(f"Ensemble: the members' outputs differ in shape: {sorted(shapes)}")
        return np.stack(probs)

    def predict_proba(self, x: Any) -> np.ndarray:
        """Combined class scores (N, C): mean probabilities, or vote shares with ``"vote"``."""
        probs = self.member_probabilities(x)
        if self.method == "average":
            return np.tensordot(self.weights, probs, axes=1)
        votes = np.eye(probs.shape[-1])[probs.argmax(axis=-1)]  # (members, N, C) one-hot
        return np.tensordot(self.weights, votes, axes=1)

    def predict(self, x: Any) -> np.ndarray:
        """Predicted class labels (N,)."""
        if self.method == "vote":
            probs = self.member_probabilities(x)
            votes = np.tensordot(self.weights, np.eye(probs.shape[-1])[probs.argmax(axis=-1)], axes=1)
            # Average probability is below 1, so adding a fraction of it only breaks exact ties.
            return (votes + 1e-6 * np.tensordot(self.weights, probs, axes=1)).argmax(axis=1)
        return self.predict_proba(x).argmax(axis=1)

    def accuracy(self, x: Any, y: Any) -> float:
        """Fraction of samples the ensemble classifies correctly."""
        return float(np.mean(self.predict(x) == _labels(y)))

    def evaluate(self, x: Any, y: Any) -> dict[str, Any]:
        """``{"members": [accuracy of each member], "ensemble": accuracy}``."""
        labels = _labels(y)
        probs = self.member_probabilities(x)
        members = [float(np.mean(p.argmax(axis=1) == labels)) for p in probs]
        return {"members": members, "ensemble": self.accuracy(x, labels)}

    def report(self, x: Any, y: Any) -> str:
        """The accuracies as text, one line per member and one for the ensemble."""
        scores = self.evaluate(x, y)
        lines = [f"member {i}: accuracy {a:.4f}" for i, a in enumerate(scores["members"])]
        lines.append(f"ensemble ({self.method}, {len(self.members)} members): accuracy "
                     f"{scores['ensemble']:.4f}")
        return "\n".join(lines)

    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return f"Ensemble({len(self.members)} members, method={self.method!r})"


def _labels(y: Any) -> np.ndarray:
    labels = np.asarray(_array(y))
    return labels.argmax(axis=1) if labels.ndim == 2 and labels.shape[1] > 1 else labels.ravel()


def train_ensemble(build_model: Callable[[], Any], n: int, x: Any, y: Any,
                   seeds: Sequence[int] | None = None, fit_kwargs: dict[str, Any] | None = None,
                   method: str = "average", from_logits: bool = True) -> Ensemble:
    """Train ``n`` models from different seeds and combine them.

    Each member is built after ``nurinet.manual_seed(seed)`` (so its initial
    weights differ) and shuffled by its own ``Generator(seed)``.

    Args:
        build_model: Returns a fresh compiled Model.
        n: Number of members.
        x, y: Training data.
        seeds: One seed per member; default ``0..n-1``.
        fit_kwargs: Passed to each ``fit`` (``epochs``, ``batch_size``...);
            ``verbose`` defaults to 0.
        method: ``"average"`` or ``"vote"``.
        from_logits: The members output logits.
    """
    import nurinet as nt

    if not isinstance(n, int) or n < 1:
        raise ValueError(f"train_ensemble: n must be a positive int, got {n!r}")
    seeds = list(range(n)) if seeds is None else list(seeds)
    if len(seeds) != n:
        raise ValueError(f"train_ensemble: {len(seeds)} seeds given for n={n} members")
    kwargs = {"verbose": 0, **(fit_kwargs or {})}
    members = []
    for seed in seeds:
        nt.manual_seed(int(seed))
        model = build_model()
        model.fit(x, y, generator=nt.Generator(int(seed)), **kwargs)
        members.append(model)
    return Ensemble(members, method=method, from_logits=from_logits)
