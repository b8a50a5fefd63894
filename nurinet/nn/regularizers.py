"""Per-parameter weight penalties (L1, L2, L1L2) and constraints (MaxNorm, NonNeg, ...), as in Keras.

Layers keep their signatures; a penalty or a constraint is attached to a
parameter of a module by name::

    layer = nn.Linear(64, 32)
    add_regularizer(layer, "weight", L2(1e-4))
    add_constraint(layer, "weight", MaxNorm(3.0))

``regularization_loss(model)`` sums every attached penalty in a model (a
differentiable scalar to add to the loss; ``Model.fit`` does it and logs it as
``"regularization"``), and ``apply_constraints(model)`` projects every
constrained parameter in place (``Model.fit`` calls it after each optimizer
step). Penalties follow Keras: ``L2(l2)`` is ``l2 * sum(w**2)`` (no 1/2).

Attachments are stored on the module (``module._regularizers``,
``module._constraints``), so they travel with ``copy.deepcopy`` and never
enter ``state_dict``.

Activity penalties (Keras's ``activity_regularizer``) penalize a layer's *output*
instead of a parameter: ``nn.Linear(..., activity_regularizer=L1(1e-3))``, the conv
layers' argument of that name and ``nn.ActivityRegularization(l1=, l2=)`` record
``regularizer.activity_penalty(output)`` at each call (:func:`record_activity`);
``Model.compute_loss`` adds what the forward recorded (:func:`add_activity_penalties`)
to the loss and to the ``"regularization"`` log. ``KLSparsity(rho, beta)`` is the sparse
autoencoder's penalty, ``beta * sum_j KL(rho || rho_hat_j)``. A layer's activity
regularizer is part of its architecture: ``nurinet.save``, ``Model.save`` and the
configurations store it by name and arguments (:func:`serialize_regularizer`).
"""

from __future__ import annotations

import inspect
import math
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet import backend
from nurinet.autograd.tensor import Tensor
from nurinet.autograd.versions import increment_version
from nurinet.names import NameTable
from nurinet.nn.module import Module, module_device

# ----- penalties ---------------------------------------------------------------------------


class Regularizer:
    """A penalty on a parameter: ``regularizer(param)`` returns a scalar Tensor.

    ``get_config()`` / ``from_config(config)`` are Keras's: the constructor arguments, kept
    under their own names, which is how a saved layer stores its ``activity_regularizer``
    (:func:`serialize_regularizer`).
    """

    def __call__(self, param: Tensor) -> Tensor:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, read back from the attributes of the same names.

        Raises:
            TypeError: an argument is not kept as an attribute of its own name (a subclass
                that renames one must define ``get_config`` itself).
        """
        config: dict[str, Any] = {}
        for name, parameter in list(inspect.signature(type(self).__init__).parameters.items())[1:]:
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            if name not in self.__dict__:
                raise TypeError(f"{type(self).__name__}.get_config: the constructor argument {name!r} "
                                f"is not kept as self.{name}; define get_config() returning the "
                                "constructor arguments")
            config[name] = self.__dict__[name]
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        """The regularizer of :meth:`get_config`'s arguments: ``cls(**config)``."""
        return cls(**config)

    def activity_penalty(self, output: Tensor) -> Tensor:
        """The penalty of a layer's output as an activity regularizer: ``self(output)``
        divided by the batch size (the first dim), as tf.keras 2 does, so that the
        coefficient means the same at every batch size and beside a mean loss."""
        return self(output) * (1.0 / max(int(output.shape[0]), 1)) if output.ndim else self(output)


def _coefficient(value: Any, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or math.isinf(value):
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {name}={value!r}")
    return float(value)


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w**2)``.

    Args:
        l1: L1 coefficient (>= 0).
        l2: L2 coefficient (>= 0).
    """

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = _coefficient(l1, "l1", type(self).__name__)
        self.l2 = _coefficient(l2, "l2", type(self).__name__)

    def __call__(self, param: Tensor) -> Tensor:
        terms = []
        if self.l1:
            terms.append(F.abs(param).sum() * self.l1)
        if self.l2:
            terms.append((param * param).sum() * self.l2)
        if not terms:
            return (param * 0.0).sum()
        return terms[0] if len(terms) == 1 else terms[0] + terms[1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(l1={self.l1:g}, l2={self.l2:g})"


class L1(L1L2):
    """``l1 * sum(|w|)``: pushes weights to exactly zero (sparse weights).

    Args:
        l1: Coefficient (>= 0).
    """

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)


class L2(L1L2):
    """``l2 * sum(w**2)``: weight decay through the loss (gradient ``2 * l2 * w``).

    Args:
        l2: Coefficient (>= 0).
    """

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)


class KLSparsity(Regularizer):
    """The sparse autoencoder's penalty ``beta * sum_j KL(rho || rho_hat_j)`` (Ng's notes, 2011).

    ``rho_hat_j`` is unit j's mean activation over the batch (the first dim; every other
    position is a unit of its own) and ``KL(rho || q) = rho log(rho / q) + (1 - rho)
    log((1 - rho) / (1 - q))``, the divergence between Bernoulli means: 0 when the unit is
    active a fraction ``rho`` of the time, growing steeply as ``rho_hat_j`` leaves it. The
    activations must lie in (0, 1), as a sigmoid's do; ``rho_hat`` is clipped to
    ``[1e-6, 1 - 1e-6]`` so that a dead unit gives a large, finite penalty.

    As an activity regularizer it is already a batch mean, so ``activity_penalty`` is the
    penalty itself (not divided by the batch size).

    Args:
        rho: Target mean activation, in (0, 1) (e.g. 0.05).
        beta: Weight of the penalty (>= 0).
    """

    def __init__(self, rho: float = 0.05, beta: float = 1.0) -> None:
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 < rho < 1:
            raise ValueError(f"KLSparsity: rho must lie in (0, 1), got rho={rho!r}")
        self.rho = float(rho)
        self.beta = _coefficient(beta, "beta", "KLSparsity")

    def __call__(self, activations: Tensor) -> Tensor:
        rho_hat = F.clip(F.mean(activations, axis=0), 1e-6, 1.0 - 1e-6)
        rho = self.rho
        divergence = (F.log(rho_hat) * -rho + rho * math.log(rho)
                      + F.log(1.0 - rho_hat) * -(1.0 - rho) + (1.0 - rho) * math.log(1.0 - rho))
        return divergence.sum() * self.beta

    def activity_penalty(self, output: Tensor) -> Tensor:
        return self(output)

    def __repr__(self) -> str:
        return f"KLSparsity(rho={self.rho:g}, beta={self.beta:g})"


# ----- constraints -------------------------------------------------------------------------


class Constraint:
    """A projection applied to a parameter's array in place after each update: ``constraint(array)``."""

    def __call__(self, w: Any) -> None:
        raise NotImplementedError


def _unit_axes(w: Any, axis: int | tuple[int, ...] | None) -> tuple[int, ...]:
    """The axes a unit's norm runs over: all but the first by default (a Linear row, a conv filter)."""
    if axis is None:
        return tuple(range(1, w.ndim)) if w.ndim > 1 else (0,)
    return (axis,) if isinstance(axis, int) else tuple(axis)


def _norms(w: Any, axis: int | tuple[int, ...] | None) -> Any:
    xp = backend.get_array_module(w)
    return xp.sqrt((w * w).sum(axis=_unit_axes(w, axis), keepdims=True))


class Clip(Constraint):
    """Clip every entry into ``[min_value, max_value]`` (either bound may be None).

    Args:
        min_value: Lower bound, or None.
        max_value: Upper bound, or None.
    """

    def __init__(self, min_value: float | None = None, max_value: float | None = None) -> None:
        if min_value is None and max_value is None:
            raise ValueError("Clip needs min_value, max_value or both")
        if min_value is not None and max_value is not None and min_value > max_value:
            raise ValueError(f"Clip: min_value={min_value!r} is above max_value={max_value!r}")
        self.min_value, self.max_value = min_value, max_value

    def __call__(self, w: Any) -> None:
        backend.get_array_module(w).clip(w, self.min_value, self.max_value, out=w)


class MaxValue(Clip):
    """Every entry at most ``max_value``.

    Args:
        max_value: Upper bound.
    """

    def __init__(self, max_value: float) -> None:
        super().__init__(None, max_value)


class NonNeg(Constraint):
    """Every entry ``>= 0`` (negative entries become 0)."""

    def __call__(self, w: Any) -> None:
        backend.get_array_module(w).maximum(w, 0, out=w)


class MaxNorm(Constraint):
    """Rescale each unit whose L2 norm exceeds ``max_value`` down to norm ``max_value``.

    Args:
        max_value: Largest norm allowed (> 0).
        axis: Axes of one unit's norm; None means all but the first, i.e. the
            incoming weights of each output unit (rows of a Linear weight).
    """

    def __init__(self, max_value: float = 2.0, axis: int | tuple[int, ...] | None = None) -> None:
        if not max_value > 0:
            raise ValueError(f"MaxNorm: max_value must be > 0, got max_value={max_value!r}")
        self.max_value, self.axis = float(max_value), axis

    def __call__(self, w: Any) -> None:
        norms = _norms(w, self.axis)
        xp = backend.get_array_module(w)
        # Units already inside the ball are left exactly as they are.
        w *= xp.where(norms > self.max_value, self.max_value / xp.maximum(norms, 1e-30), 1.0).astype(w.dtype)


class UnitNorm(Constraint):
    """Rescale each unit to L2 norm 1 (units of norm 0 stay 0).

    Args:
        axis: Axes of one unit's norm (default: all but the first).
    """

    def __init__(self, axis: int | tuple[int, ...] | None = None) -> None:
        self.axis = axis

    def __call__(self, w: Any) -> None:
        norms = _norms(w, self.axis)
        w /= backend.get_array_module(w).where(norms > 0, norms, 1.0).astype(w.dtype)


class MinMaxNorm(Constraint):
    """Move each unit's norm into ``[min_value, max_value]``, by the fraction ``rate``.

    The new norm is ``rate * clip(norm, min_value, max_value) + (1 - rate) * norm``.

    Args:
        min_value: Smallest norm (>= 0).
        max_value: Largest norm (>= min_value).
        rate: 1 enforces the bounds at once; smaller values move part way each step.
        axis: Axes of one unit's norm (default: all but the first).
    """

    def __init__(self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0,
                 axis: int | tuple[int, ...] | None = None) -> None:
        if not 0 <= min_value <= max_value:
            raise ValueError(f"MinMaxNorm needs 0 <= min_value <= max_value, got min_value={min_value!r}, "
                             f"max_value={max_value!r}")
        if not 0 < rate <= 1:
            raise ValueError(f"MinMaxNorm: rate must lie in (0, 1], got rate={rate!r}")
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w: Any) -> None:
        xp = backend.get_array_module(w)
        norms = _norms(w, self.axis)
        target = self.rate * xp.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        w *= xp.where(norms > 0, target / xp.where(norms > 0, norms, 1.0), 1.0).astype(w.dtype)


# ----- attaching them to modules -----------------------------------------------------------


def _check_parameter(module: Any, name: str, what: str) -> None:
    if not isinstance(module, Module):
        raise TypeError(f"{what} expects a Module, got {type(module).__name__}")
    if module._parameters.get(name) is None:
        present = [k for k, v in module._parameters.items() if v is not None]
        raise KeyError(f"{what}: {type(module).__name__} has no parameter {name!r}; its parameters are "
                       f"{present}")


def add_regularizer(module: Module, name: str, regularizer: Regularizer) -> Module:
    """Attach a penalty to ``module``'s parameter ``name`` (replacing any earlier one); returns the module.

    Args:
        module: The layer owning the parameter (e.g. an ``nn.Linear``).
        name: The parameter's attribute name (``"weight"``, ``"bias"``).
        regularizer: A :class:`Regularizer` such as ``L2(1e-4)``.
    """
    _check_parameter(module, name, "add_regularizer")
    if not isinstance(regularizer, Regularizer):
        raise TypeError(f"add_regularizer expects a Regularizer such as L2(1e-4), got {regularizer!r}")
    module.__dict__.setdefault("_regularizers", {})[name] = regularizer
    return module


def add_constraint(module: Module, name: str, constraint: Constraint) -> Module:
    """Attach a constraint to ``module``'s parameter ``name`` (replacing any earlier one); returns the module.

    Args:
        module: The layer owning the parameter.
        name: The parameter's attribute name.
        constraint: A :class:`Constraint` such as ``MaxNorm(3.0)``.
    """
    _check_parameter(module, name, "add_constraint")
    if not isinstance(constraint, Constraint):
        raise TypeError(f"add_constraint expects a Constraint such as MaxNorm(3.0), got {constraint!r}")
    module.__dict__.setdefault("_constraints", {})[name] = constraint
    return module


def _attached(model: Module, kind: str) -> Iterator[tuple[Tensor, Any]]:
    for module in model.modules():
        for name, item in module.__dict__.get(kind, {}).items():
            param = module._parameters.get(name)
            if param is not None:
                yield param, item


def attached_regularizers(model: Module) -> list[tuple[Tensor, Regularizer]]:
    """Every ``(parameter, regularizer)`` pair in ``model`` (a training loop may keep this list)."""
    return list(_attached(model, "_regularizers"))


def attached_constraints(model: Module) -> list[tuple[Tensor, Constraint]]:
    """Every ``(parameter, constraint)`` pair in ``model`` (a training loop may keep this list)."""
    return list(_attached(model, "_constraints"))


def has_regularizers(model: Module) -> bool:
    """Whether any parameter of ``model`` has a penalty attached."""
    return any(True for _ in _attached(model, "_regularizers"))


def penalty_or_none(pairs: list[tuple[Tensor, Regularizer]]) -> Tensor | None:
    """The sum of the penalties of ``(parameter, regularizer)`` pairs, or None when there are none."""
    total = None
    for param, regularizer in pairs:
        penalty = regularizer(param)
        total = penalty if total is None else total + penalty
    return total


def regularization_loss(model: Module) -> Tensor:
    """The sum of every attached penalty in ``model``: a differentiable scalar (0 when there is none)."""
    total = penalty_or_none(attached_regularizers(model))
    if total is not None:
        return total
    device = module_device(model)  # the zero meets the model's loss
    return Tensor._wrap(backend.to_device(np.zeros((), np.float32), device), False)


def apply_constraints(model: Module | list[tuple[Tensor, Constraint]]) -> None:
    """Project every constrained parameter in place (call after ``optimizer.step()``).

    Args:
        model: A module, or the pairs returned by :func:`attached_constraints`.
    """
    pairs = _attached(model, "_constraints") if isinstance(model, Module) else model
    for param, constraint in pairs:
        constraint(param.array)
        increment_version(param)  # projected in place, as an optimizer step


# ----- activity penalties: on a layer's output ---------------------------------------------
# module -> the penalty it recorded since the last collection: an empty table lets a model
# without activity regularizers skip the walk over its modules at every step.
_PENDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_activity_regularizer(regularizer: Any, owner: str) -> Regularizer | None:
    """``regularizer`` when it is None or a :class:`Regularizer`, else a TypeError naming ``owner``."""
    if regularizer is not None and not isinstance(regularizer, Regularizer):
        raise TypeError(f"{owner}: activity_regularizer must be a Regularizer such as L1(1e-3) or "
                        f"KLSparsity(0.05), or None; got {regularizer!r}")
    return regularizer


def record_activity(module: Module, output: Tensor, regularizer: Regularizer) -> None:
    """Keep ``regularizer.activity_penalty(output)`` on ``module`` until the loss collects it.

    A later call of the same module replaces it (a layer called twice in one forward
    contributes its last call).
    """
    _PENDING[module] = regularizer.activity_penalty(output)


def add_activity_penalties(model: Module, penalty: Tensor | None = None) -> Tensor | None:
    """``penalty`` plus every activity penalty the modules of ``model`` recorded in their last
    forward, which are collected (removed) so that none counts twice; None when both are none."""
    if not _PENDING:
        return penalty
    for module in model.modules():
        recorded = _PENDING.pop(module, None)
        if recorded is not None:
            penalty = recorded if penalty is None else penalty + recorded
    return penalty


# ----- by name ------------------------------------------------------------------------------
# Filled from __all__ on first lookup (the module is complete by then).
CONSTRAINTS = NameTable("constraint")
REGULARIZERS = NameTable("regularizer")


def _subclass_of(base: type) -> Callable[[Any], bool]:
    return lambda obj: isinstance(obj, type) and issubclass(obj, base) and obj is not base


CONSTRAINTS.add_loader(lambda table: table.add_public(sys.modules[__name__], _subclass_of(Constraint)))
REGULARIZERS.add_loader(lambda table: table.add_public(sys.modules[__name__], _subclass_of(Regularizer)))


def get_constraint(name: str) -> type[Constraint]:
    """The constraint class called ``name`` (Keras's names: ``"MaxNorm"``, ``"max_norm"``, ``"non_neg"``).

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: no constraint has that name (the message lists the known names).
    """
    return CONSTRAINTS.get(name)


def get_regularizer(name: str) -> type[Regularizer]:
    """The regularizer class called ``name`` (``"L2"``, ``"l1_l2"``).

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: no regularizer has that name (the message lists the known names).
    """
    return REGULARIZERS.get(name)


def _registered_name(cls: type) -> str | None:
    """The name under which the table finds ``cls`` (its class name first), or None."""
    if REGULARIZERS.find(cls.__name__) is cls:
        return cls.__name__
    return next((key for key, found in REGULARIZERS.items() if found is cls), None)


def serialize_regularizer(regularizer: Regularizer) -> dict[str, Any]:
    """``{"class": name, "config": {argument: value}}``, Keras's ``regularizers.serialize``:
    JSON data from which :func:`deserialize_regularizer` rebuilds an equal regularizer.

    Raises:
        TypeError: ``regularizer`` is not a :class:`Regularizer`, its class is not known by
            name (register your own: ``REGULARIZERS.register("MyPenalty", MyPenalty)``), or an
            argument is not a JSON number, string, bool or None.
    """
    if not isinstance(regularizer, Regularizer):
        raise TypeError(f"serialize_regularizer expects a Regularizer, got {regularizer!r}")
    cls = type(regularizer)
    name = _registered_name(cls)
    if name is None:
        raise TypeError(f"cannot store the regularizer {regularizer!r}: its class "
                        f"{cls.__module__}.{cls.__qualname__} has no name in "
                        "nurinet.nn.regularizers.REGULARIZERS, so loading could not rebuild it; "
                        f"register it first: REGULARIZERS.register({cls.__name__!r}, {cls.__name__})")
    config = regularizer.get_config()
    if not isinstance(config, dict):
        raise TypeError(f"{cls.__name__}.get_config() must return a dict, got {type(config).__name__}")
    for key, value in config.items():
        if not isinstance(key, str) or not (value is None or isinstance(value, (bool, int, float, str))):
            raise TypeError(f"cannot store the regularizer {regularizer!r}: argument {key!r} = "
                            f"{value!r} is not a JSON number, string, bool or None")
    return {"class": name, "config": dict(config)}


def deserialize_regularizer(data: Any) -> Regularizer:
    """The regularizer that :func:`serialize_regularizer` described (Keras's ``deserialize``).

    Raises:
        ValueError: ``data`` is not ``{"class": name, "config": {...}}``, the name is not a
            known regularizer (the message lists the known names), or the arguments do not
            build one.
    """
    if not isinstance(data, dict) or set(data) - {"class", "config"} or not isinstance(data.get("class"), str) \
            or not isinstance(data.get("config", {}), dict):
        raise ValueError(f"a stored regularizer is {{'class': name, 'config': {{...}}}}, got {data!r}")
    cls = get_regularizer(data["class"])  # a str: an unknown name is a ValueError listing the known ones
    if not (isinstance(cls, type) and issubclass(cls, Regularizer)):
        raise ValueError(  # noqa: TRY004 (bad stored content: a name registered to something else)
            f"{data['class']!r} does not name a Regularizer class")
    config = data.get("config", {})
    try:
        return cls.from_config(dict(config))
    except TypeError as error:  # an argument the constructor does not take
        raise ValueError(f"cannot rebuild the regularizer {data['class']} from {config!r}: {error}") from None


__all__ = [
    "L1",
    "L1L2",
    "L2",
    "Clip",
    "Constraint",
    "KLSparsity",
    "MaxNorm",
    "MaxValue",
    "MinMaxNorm",
    "NonNeg",
    "Regularizer",
    "UnitNorm",
    "add_activity_penalties",
    "add_constraint",
    "add_regularizer",
    "apply_constraints",
    "attached_constraints",
    "attached_regularizers",
    "check_activity_regularizer",
    "deserialize_regularizer",
    "get_constraint",
    "get_regularizer",
    "has_regularizers",
    "penalty_or_none",
    "record_activity",
    "regularization_loss",
    "serialize_regularizer",
]
