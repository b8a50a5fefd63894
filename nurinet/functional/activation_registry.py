"""The activation registry: activations by name, as in Deeplearning4j's ``activation("relu")``.

``get_activation`` resolves a name (case, ``_``, ``-`` and spaces ignored) or passes a
callable through; ``register_activation`` adds a user's own activation, written as a
forward formula of Tensor ops whose gradient autograd derives. The names live in a
:class:`nurinet.names.NameTable` (``ACTIVATIONS``), the lookup every kind found by name shares.
"""

from __future__ import annotations

from typing import Any

from nurinet.autograd.tensor import Tensor
from nurinet.functional import elementwise as ew
from nurinet.functional.activation import (
    celu,
    cube,
    elu,
    gelu,
    hard_sigmoid_keras,
    hardsigmoid,
    hardtanh,
    identity,
    leaky_relu,
    log_softmax,
    mish,
    rational_tanh,
    relu,
    relu6,
    rrelu,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    softsign,
)
from nurinet.names import NameTable, name_key


def _gelu_tanh(x: Tensor) -> Tensor:
    return gelu(x, approximate="tanh")


def _prelu_by_name(x: Tensor) -> Tensor:
    raise ValueError(
        "activation 'prelu' has a learned weight, so it is a layer, not a function: use "
        "nn.PReLU() or nn.Activation('prelu')"
    )


# The activations by name (explicit registration: the functions, and their common aliases).
# Tests and user code that register for a while may ``_REGISTRY.pop(name)`` afterwards.
_REGISTRY = NameTable("activation", hint="Add your own with register_activation(name, fn).")
ACTIVATIONS = _REGISTRY

_BUILTIN = (  # (name, function, aliases...)
    ("identity", identity, "linear"),
    ("sigmoid", sigmoid, "logistic"),
    ("tanh", ew.tanh),
    ("relu", relu), ("relu6", relu6),
    ("leakyrelu", leaky_relu, "lrelu"),
    ("prelu", _prelu_by_name),
    ("rrelu", rrelu),
    ("elu", elu), ("selu", selu), ("celu", celu),
    ("gelu", gelu), ("gelutanh", _gelu_tanh),
    ("silu", silu, "swish"),
    ("mish", mish),
    ("softplus", softplus), ("softsign", softsign),
    ("hardsigmoid", hardsigmoid), ("hardtanh", hardtanh),
    # Keras 2's and DL4J's 0.2 x + 0.5 (plain "hardsigmoid" is PyTorch's x / 6 + 1/2).
    ("hardsigmoidkeras", hard_sigmoid_keras, "hardsigmoiddl4j"),
    ("rationaltanh", rational_tanh),
    ("cube", cube),
    ("softmax", softmax), ("logsoftmax", log_softmax),
)
for _name, _fn, *_aliases in _BUILTIN:
    _REGISTRY.register(_name, _fn, *_aliases)
del _name, _fn, _aliases

# Names users reach for as activations that are layers with weights of their own, so no
# function can stand for them: the error says which layer to use instead.
_LAYER_ACTIVATIONS = {
    "maxout": (
        "maxout is a layer with its own weights (the max over `pieces` linear maps), not an "
        "activation function: use nn.Maxout(in_features, out_features, pieces) in place of a "
        "Linear layer and its activation (in a configuration: {type: Maxout, out_features: 64, "
        "pieces: 2}, whose in_features is the previous layer's width)"
    ),
}


def activation_key(name: str) -> str:
    """The registry key of ``name``: lowercase letters and digits (``"Leaky_ReLU"`` -> ``"leakyrelu"``)."""
    return name_key(name)


def activation_names() -> list[str]:
    """The names :func:`get_activation` knows (normalized: lowercase, no ``_`` or ``-``)."""
    return _REGISTRY.names()


def get_activation(name_or_fn: Any) -> Any:
    """The activation function called ``name`` (or ``name_or_fn`` itself when callable).

    Names ignore case, ``_``, ``-`` and spaces: ``"relu"``, ``"LeakyReLU"`` and
    ``"leaky_relu"`` all work. ``None`` and ``"linear"`` give the identity. The
    returned function takes a Tensor and returns a Tensor; ``"rrelu"`` gives the
    inference form (use ``nn.RReLU`` for the training form).

    Raises:
        ValueError: the name is unknown (the message lists the known names), or it names a
            layer with weights of its own such as ``"maxout"`` (the message says which layer).
    """
    if name_or_fn is None:
        return identity
    if callable(name_or_fn):
        return name_or_fn
    if not isinstance(name_or_fn, str):
        raise TypeError(f"get_activation expects a name or a callable, got {name_or_fn!r}")
    fn = _REGISTRY.find(name_or_fn)
    if fn is not None:
        return fn
    layer_advice = _LAYER_ACTIVATIONS.get(activation_key(name_or_fn))
    if layer_advice is not None:
        raise ValueError(f"activation {name_or_fn!r}: {layer_advice}. Known activation names: "
                         f"{', '.join(activation_names())}.")
    return _REGISTRY.get(name_or_fn)  # raises, listing the known names


def register_activation(name: str, fn: Any = None, overwrite: bool = False) -> Any:
    """Make ``fn`` available to :func:`get_activation` (and ``nn.Activation``) as ``name``.

    ``fn`` is a forward formula only: a function of a Tensor built from nurinet ops
    (``lambda x: x * F.sigmoid(1.702 * x)``); its gradient comes from autograd. Used
    without ``fn``, this is a decorator.

    Raises:
        ValueError: ``name`` is taken and ``overwrite`` is False.
    """
    if fn is None:
        return lambda f: register_activation(name, f, overwrite)
    if not callable(fn):
        raise TypeError(f"register_activation: {name!r} must map to a callable, got {fn!r}")
    key = activation_key(name)
    if not key:
        raise ValueError(f"register_activation: {name!r} is not a usable name")
    if key in _REGISTRY and not overwrite:
        raise ValueError(
            f"register_activation: an activation named {name!r} exists already; "
            "pass overwrite=True to replace it"
        )
    return _REGISTRY.register(key, fn, overwrite=True)
