"""Optimizers: update parameters from their gradients.

Each algorithm lives in its own module with its update rule written out in its
docstring; :class:`Optimizer` holds what they share (parameter groups, lazily
created state saved by position, ``zero_grad``, ``step(closure)``,
``state_dict``). The batch methods (``LBFGS``, ``ConjugateGradient``,
``LineGradientDescent``, ``HessianFree``) work on the flat parameter vector and
step through a closure that recomputes the loss (``batch_optimizer.py``,
``line_search.py``). :func:`get_optimizer` builds one from a name, as a training
configuration would; the names live in ``OPTIMIZERS``, a :class:`nurinet.names.NameTable`
(case and punctuation ignored).
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from nurinet.names import NameTable
from nurinet.optim.adadelta import Adadelta
from nurinet.optim.adagrad import Adagrad
from nurinet.optim.adam import Adam
from nurinet.optim.adamw import AdamW
from nurinet.optim.conjugate_gradient import ConjugateGradient
from nurinet.optim.hessian_free import HessianFree
from nurinet.optim.lbfgs import LBFGS
from nurinet.optim.line_gradient_descent import LineGradientDescent
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
    get_scheduler,
)
from nurinet.optim.nadam import NAdam
from nurinet.optim.noop import NoOp
from nurinet.optim.optimizer import Optimizer, ParamsT
from nurinet.optim.rmsprop import RMSprop
from nurinet.optim.sgd import SGD

# Each name gives a builder of an optimizer: a class of __all__, or a preset of one (SGD with
# momentum) whose defaults the caller's keyword arguments override.
OPTIMIZERS = NameTable("optimizer")


def _is_optimizer_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, Optimizer) and obj is not Optimizer


def _fill_optimizers(table: NameTable) -> None:
    table.add_public(sys.modules[__name__], _is_optimizer_class)
    table.register("momentum", functools.partial(SGD, momentum=0.9))
    # "nag": Nesterov accelerated gradient (study note 003); "nesterovs": Deeplearning4j's updater.
    table.register("nesterov", functools.partial(SGD, momentum=0.9, nesterov=True), "nag", "nesterovs")
    table.register("none", NoOp)  # Deeplearning4j's Updater.NONE / NoOp: parameters never change
    # Deeplearning4j's OptimizationAlgorithm names (any case: CONJUGATE_GRADIENT, HESSIAN_FREE...).
    table.register("lbfgs", LBFGS, "l_bfgs")
    table.register("conjugate_gradient", ConjugateGradient, "cg")
    table.register("line_gradient_descent", LineGradientDescent)
    table.register("hessian_free", HessianFree, "hf")


OPTIMIZERS.add_loader(_fill_optimizers)


def get_optimizer(name: str, params: ParamsT, **kwargs: Any) -> Optimizer:
    """Build an optimizer from its name (case, ``_``, ``-`` and spaces ignored).

    The names are the optimizer classes' (``sgd``, ``adam``, ``adamw``, ``nadam``,
    ``rmsprop``, ``adagrad``, ``adadelta``, ``noop``, and the batch methods ``lbfgs``,
    ``conjugate_gradient``, ``line_gradient_descent``, ``hessian_free``, which are also
    Deeplearning4j's names: ``LBFGS``, ``CONJUGATE_GRADIENT``, ...) and these presets:
    ``"momentum"`` is SGD with ``momentum=0.9``; ``"nesterov"`` (also ``"nag"``,
    Nesterov accelerated gradient, and Deeplearning4j's ``"nesterovs"``) is SGD with
    Nesterov momentum 0.9; ``"none"`` is :class:`NoOp` (Deeplearning4j's ``NoOp``:
    the parameters never change). Keyword arguments override a preset's values.

    Args:
        name: An optimizer name (see ``OPTIMIZERS.names()``).
        params: Tensors to optimize, or dicts defining parameter groups.
        **kwargs: Hyperparameters passed to the optimizer (``lr=0.01``, ...).

    Raises:
        ValueError: the name is not known (the message lists the known names).
    """
    if not isinstance(name, str):
        raise TypeError(f"get_optimizer expects an optimizer name (str), got {name!r}")
    return OPTIMIZERS.get(name)(params, **kwargs)


__all__ = [
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "ConjugateGradient",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "ExponentialLR",
    "HessianFree",
    "LRFinderResult",
    "LRScheduler",
    "LambdaLR",
    "LineGradientDescent",
    "LinearLR",
    "MultiStepLR",
    "NAdam",
    "NoOp",
    "OneCycleLR",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "SequentialLR",
    "StepLR",
    "get_optimizer",
    "get_scheduler",
    "lr_finder",
]
