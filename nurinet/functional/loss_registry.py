"""Losses by name, with Keras's and PyTorch's names (``get_loss("mse")``).

Every name resolves to a nurinet function, and nurinet's functions name their input:
``"categorical_crossentropy"``, ``"sparse_categorical_crossentropy"`` and
``"cross_entropy"`` all give :func:`cross_entropy`, which takes **logits** (PyTorch's
convention, unlike Keras's ``from_logits=False`` default): do not put a softmax before
it. ``"binary_crossentropy"`` gives :func:`binary_cross_entropy` on probabilities (as in
both Keras and PyTorch); ``"bce_with_logits"`` the stable logits form.

A custom loss is a plain function of Tensors returning a scalar Tensor; register it
with :func:`register_loss` to use it by name.
"""

from __future__ import annotations

from typing import Any

from nurinet.functional.loss import (
    contrastive_loss,
    cosine_embedding_loss,
    hinge_loss,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    smooth_l1_loss,
    squared_hinge_loss,
)
from nurinet.functional.loss_classification import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    nll_loss,
)

# Keys are normalized by _key: lowercase, letters and digits only, without a trailing "loss".
_REGISTRY: dict[str, Any] = {
    "mse": mse_loss, "meansquarederror": mse_loss, "l2": mse_loss,
    "mae": l1_loss, "l1": l1_loss, "meanabsoluteerror": l1_loss,
    "huber": huber_loss,
    "smoothl1": smooth_l1_loss,
    "binarycrossentropy": binary_cross_entropy, "bce": binary_cross_entropy,
    "binarycrossentropywithlogits": binary_cross_entropy_with_logits,
    "bcewithlogits": binary_cross_entropy_with_logits,
    "crossentropy": cross_entropy,
    "categoricalcrossentropy": cross_entropy,
    "sparsecategoricalcrossentropy": cross_entropy,
    "nll": nll_loss, "negativeloglikelihood": nll_loss,
    "kldiv": kl_div, "kld": kl_div, "kldivergence": kl_div,
    "kullbackleiblerdivergence": kl_div,
    "hinge": hinge_loss,
    "squaredhinge": squared_hinge_loss,
    "cosineembedding": cosine_embedding_loss,
    "contrastive": contrastive_loss,
}


def _key(name: str) -> str:
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    return key[: -len("loss")] if key.endswith("loss") and len(key) > 4 else key


def loss_names() -> list[str]:
    """The names :func:`get_loss` knows (normalized: lowercase, letters and digits)."""
    return sorted(_REGISTRY)


def get_loss(name_or_fn: Any) -> Any:
    """The loss function called ``name`` (or ``name_or_fn`` itself when callable).

    Names ignore case, ``_``, ``-``, spaces and a trailing "loss": ``"mse"``,
    ``"MSELoss"``, ``"mean_squared_error"``, ``"sparse_categorical_crossentropy"``,
    ``"CrossEntropyLoss"`` and ``"binary_crossentropy"`` all work. The cross-entropy
    names give :func:`cross_entropy`, which takes logits.

    Raises:
        ValueError: the name is unknown (the message lists the known names).
    """
    if callable(name_or_fn):
        return name_or_fn
    if not isinstance(name_or_fn, str):
        raise TypeError(f"get_loss expects a name or a callable, got {name_or_fn!r}")
    fn = _REGISTRY.get(_key(name_or_fn))
    if fn is None:
        raise ValueError(
            f"unknown loss {name_or_fn!r}; known losses: {', '.join(loss_names())}. "
            "Add your own with register_loss(name, fn)"
        )
    return fn


def register_loss(name: str, fn: Any = None, overwrite: bool = False) -> Any:
    """Make the loss function ``fn(input, target) -> Tensor`` available to :func:`get_loss`.

    Used without ``fn``, this is a decorator.

    Raises:
        ValueError: ``name`` is taken and ``overwrite`` is False.
    """
    if fn is None:
        return lambda f: register_loss(name, f, overwrite)
    if not callable(fn):
        raise TypeError(f"register_loss: {name!r} must map to a callable, got {fn!r}")
    key = _key(name)
    if not key:
        raise ValueError(f"register_loss: {name!r} is not a usable name")
    if key in _REGISTRY and not overwrite:
        raise ValueError(
            f"register_loss: a loss named {name!r} exists already; pass overwrite=True to "
            "replace it"
        )
    _REGISTRY[key] = fn
    return fn
