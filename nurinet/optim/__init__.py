"""Optimizers: update parameters from their gradients.

Each algorithm lives in its own module with its update rule written out in its
docstring; :class:`Optimizer` holds what they share (parameter groups, lazily
created state saved by position, ``zero_grad``, ``step(closure)``,
``state_dict``). :func:`get_optimizer` builds one from a name, as a training
configuration would.
"""

from __future__ import annotations

from typing import Any

from nurinet.optim.adadelta import Adadelta
from nurinet.optim.adagrad import Adagrad
from nurinet.optim.adam import Adam
from nurinet.optim.adamw import AdamW
from nurinet.optim.lr_finder import LRFinderResult, lr_finder
from nurinet.optim.lr_scheduler import (
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)
from nurinet.optim.nadam import NAdam
from nurinet.optim.optimizer import Optimizer, ParamsT
from nurinet.optim.rmsprop import RMSprop
from nurinet.optim.sgd import SGD

# name -> (class, defaults the name implies; keyword arguments override them)
_REGISTRY: dict[str, tuple[type[Optimizer], dict[str, Any]]] = {
    "sgd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (Adagrad, {}),
    "adadelta": (Adadelta, {}),
    "rmsprop": (RMSprop, {}),
    "adam": (Adam, {}),
    "adamw": (AdamW, {}),
    "nadam": (NAdam, {}),
}


def get_optimizer(name: str, params: ParamsT, **kwargs: Any) -> Optimizer:
    """Build an optimizer from its name (case-insensitive).

    ``"momentum"`` is SGD with ``momentum=0.9`` and ``"nesterov"`` SGD with
    Nesterov momentum 0.9, unless ``momentum`` is given.

    Args:
        name: One of ``sgd, momentum, nesterov, adagrad, adadelta, rmsprop,
            adam, adamw, nadam``.
        params: Tensors to optimize, or dicts defining parameter groups.
        **kwargs: Hyperparameters passed to the optimizer (``lr=0.01``, ...).

    Raises:
        ValueError: the name is not known (the message lists the known names).
    """
    if not isinstance(name, str):
        raise TypeError(f"get_optimizer expects an optimizer name (str), got {name!r}")
    entry = _REGISTRY.get(name.lower())
    if entry is None:
        raise ValueError(
            f"unknown optimizer {name!r}; known names are: {', '.join(sorted(_REGISTRY))}"
        )
    cls, preset = entry
    return cls(params, **{**preset, **kwargs})


__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "ExponentialLR",
    "LRFinderResult",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "NAdam",
    "OneCycleLR",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
    "get_optimizer",
    "lr_finder",
]
