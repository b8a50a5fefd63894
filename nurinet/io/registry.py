"""The layer registry: turn a module into a JSON architecture config and back.

A layer's config is ``{"class": NAME, "config": {constructor argument: value}}``;
rebuilding calls ``cls(**config)`` (or ``cls.from_config(config)`` when the
class defines it) and the weights are loaded afterwards. Where the constructor
arguments come from, first match wins:

1. the containers (``Sequential``, ``ModuleList``, ``ModuleDict``),
   ``nn.Activation`` and ``training.Model`` have built-in rules;
2. a layer with a ``get_config()`` method returns them itself (Keras's convention);
3. a class decorated with :func:`register_layer` records them when an instance is built;
4. otherwise they are read back from attributes named like the constructor's
   parameters, PyTorch's convention (``Linear(in_features, ...)`` keeps
   ``self.in_features``). A ``bias: bool`` parameter is read as "the bias
   Parameter is not None", ``dtype`` from the first floating parameter, and
   ``generator`` is never saved (the rebuilt layer uses the default generator).

So a new built-in layer needs nothing special as long as it keeps its
constructor arguments under their own names; a user layer only needs
``@register_layer``. Built-in layers are the ``Module`` classes that
``nurinet.nn`` and ``nurinet.models`` export (their ``__all__``), plus ``Model``
and the configurations' ``OutputLayer``, which saved models hold. Names are
looked up in name tables (:class:`nurinet.names.NameTable`: case and punctuation ignored),
user layers first.

Values are JSON; what JSON lacks is tagged: ``{"__tuple__": [...]}``,
``{"__dtype__": "float32"}``, ``{"__layer__": {...}}`` (a submodule),
``{"__array__": [...], "dtype": ...}``, ``{"__activation__": "relu"}``,
``{"__dict__": {...}}``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Tensor
from nurinet.names import NameTable, unknown_name
from nurinet.nn.module import Module
from nurinet.random import Generator

# User layers (register_layer) are searched before the built-in ones. A test that registers
# a layer for a while may ``_USER.pop(name)`` afterwards.
_USER = NameTable("layer type")
_RECORD = "_nurinet_init_args"
_MISSING = object()


# ----- registration ---------------------------------------------------------------------------
def register_layer(cls: Any = None, *, name: str | None = None, overwrite: bool = False) -> Any:
    """Make a layer class known by name, so that :func:`nurinet.load` can rebuild it.

    Use as ``@register_layer``, ``@register_layer("MyBlock")`` or
    ``register_layer(MyBlock, name="MyBlock")``. The constructor's arguments are
    recorded on each instance (they must be JSON values, tuples, dtypes, arrays,
    activation functions or modules), so the layer needs no ``get_config()``.

    Raises:
        TypeError: ``cls`` is not a Module subclass.
        ValueError: the name is taken by another class (pass ``overwrite=True``).
    """
    if isinstance(cls, str):
        return functools.partial(register_layer, name=cls, overwrite=overwrite)
    if cls is None:
        return functools.partial(register_layer, name=name, overwrite=overwrite)
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"register_layer expects a subclass of nurinet.nn.Module, got {cls!r}")
    key = name or cls.__name__
    taken = _USER.find(key) or _BUILTIN.find(key)
    if taken is not None and taken is not cls and getattr(taken, "__wrapped_class__", None) is not cls \
            and not overwrite:
        raise ValueError(f"cannot register {cls.__qualname__} as layer {key!r}: the name is already "
                         f"used by {taken.__module__}.{taken.__qualname__}; choose another name or "
                         "pass overwrite=True")
    if "__init__" in cls.__dict__ and not getattr(cls.__init__, "_nurinet_records", False):
        cls.__init__ = _recording_init(cls, cls.__init__)
    cls._nurinet_layer_name = key
    _USER.register(key, cls, overwrite=True)
    return cls


def _recording_init(cls: type, original: Callable) -> Callable:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self: Module, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if type(self) is cls:  # only the outermost constructor describes the instance
            bound = signature.bind(self, *args, **kwargs)
            record: dict[str, Any] = {}
            for pname, value in list(bound.arguments.items())[1:]:
                kind = signature.parameters[pname].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    record.update(value)
                elif kind is inspect.Parameter.VAR_POSITIONAL:
                    record["*args"] = list(value)
                else:
                    record[pname] = value
            object.__setattr__(self, _RECORD, record)

    __init__._nurinet_records = True  # type: ignore[attr-defined]
    return __init__


def _is_layer_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, Module)


@functools.cache
def _builtin_classes() -> dict[str, type[Module]]:
    """The built-in layer classes by their public name.

    Every Module class of ``nurinet.nn.__all__`` and ``nurinet.models.__all__``, plus
    ``Model`` (``nurinet.training``) and ``OutputLayer`` (``nurinet.config``): saved models
    hold them, though the layer packages do not export them. Never a walk over subclasses,
    so the answer does not depend on what happens to be imported.
    """
    import nurinet.models
    from nurinet import nn
    from nurinet.config import OutputLayer
    from nurinet.training import Model

    found: dict[str, type[Module]] = {}
    for package in (nn, nurinet.models):
        found.update({name: getattr(package, name) for name in package.__all__
                      if _is_layer_class(getattr(package, name))})
    found.update({"Model": Model, "OutputLayer": OutputLayer})
    return found


def _fill_builtin_layers(table: NameTable) -> None:
    for name, cls in _builtin_classes().items():
        table.register(name, cls)  # two public names of different classes would clash here


_BUILTIN = NameTable("layer type")
_BUILTIN.add_loader(_fill_builtin_layers)


def layer_type_names() -> list[str]:
    """The layer names :func:`get_layer_class` knows, user layers included (normalized)."""
    return sorted({*_USER.names(), *_BUILTIN.names()})


def get_layer_class(name: str) -> type[Module]:
    """The layer class registered as ``name`` (user layers first, then nurinet's own).

    Case, ``_``, ``-`` and spaces are ignored: ``"Conv2d"`` and ``"conv_2d"`` are one name.

    Raises:
        ValueError: no layer of that name (the message lists the known names and says how
            to register one).
    """
    cls = _USER.find(name) or _BUILTIN.find(name)
    if cls is None:
        raise unknown_name("layer type", name, layer_type_names(),
                           f"If it is your own layer, decorate its class with "
                           f"@nurinet.io.register_layer (or register_layer(cls, name={name!r})) "
                           "before loading.")
    return cls


def layer_name(module: Module) -> str:
    """The name under which ``module``'s class is registered."""
    cls = type(module)
    registered = cls.__dict__.get("_nurinet_layer_name")  # not inherited: a subclass is another layer
    if registered is not None and _USER.find(registered) is cls:
        return registered
    if cls.__module__.startswith("nurinet.") and _BUILTIN.find(cls.__name__) is cls:
        return cls.__name__
    raise ValueError(f"cannot save a layer of type {cls.__module__}.{cls.__qualname__}: it is not "
                     "registered, so it could not be rebuilt when loading; decorate the class with "
                     "@nurinet.io.register_layer")


# ----- module -> config ---------------------------------------------------------------------
def layer_config(module: Module) -> dict[str, Any]:
    """The JSON-able architecture of ``module``: ``{"class": name, "config": {...}}``."""
    if not isinstance(module, Module):
        raise TypeError(f"layer_config expects a Module, got {type(module).__name__}")
    name = layer_name(module)
    args = _constructor_args(module)
    where = f"{name}"
    return {"class": name, "config": {k: encode_value(v, f"{where}.{k}") for k, v in args.items()}}


def _constructor_args(module: Module) -> dict[str, Any]:
    from nurinet.nn import Activation, ModuleDict, ModuleList, Sequential
    from nurinet.training import Model

    cls = type(module)
    if cls is Sequential:
        return {"layers": {name: m for name, m in module._modules.items()}}
    if cls is ModuleList:
        return {"modules": list(module._modules.values())}
    if cls is ModuleDict:
        return {"modules": dict(module._modules)}
    if cls is Activation:
        # A layer-backed activation ("prelu") was built from its name; a function is stored by name.
        return {"activation": module.name if module.layer is not None else module.fn}
    if cls is Model:
        return {"network": module._modules.get("network")}
    if callable(getattr(module, "get_config", None)):
        config = module.get_config()
        if not isinstance(config, dict):
            raise TypeError(f"{cls.__name__}.get_config() must return a dict of constructor "
                            f"arguments, got {type(config).__name__}")
        return config
    recorded = module.__dict__.get(_RECORD)
    if recorded is not None:
        return dict(recorded)
    return _introspect(module)


def _lookup(module: Module, name: str) -> Any:
    for registry in (module.__dict__, module._parameters, module._buffers, module._modules):
        if name in registry:
            return registry[name]
    if isinstance(getattr(type(module), name, None), property):
        return getattr(module, name)
    return _MISSING


def _first_float_dtype(module: Module) -> Any:
    for param in module.parameters():
        if param.data.dtype.kind == "f":
            return param.data.dtype
    return _MISSING


def _introspect(module: Module) -> dict[str, Any]:
    cls = type(module)
    args: dict[str, Any] = {}
    for pname, p in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD) \
                or pname == "generator":
            continue
        value = _lookup(module, pname)
        if value is _MISSING and pname == "dtype":
            value = _first_float_dtype(module)
        if value is _MISSING:
            if p.default is inspect.Parameter.empty:
                raise ValueError(
                    f"cannot save layer {cls.__name__}: its constructor argument {pname!r} is not "
                    f"kept as attribute self.{pname}, so it cannot be rebuilt. Keep the argument "
                    "under its own name, give the class a get_config() returning its constructor "
                    "arguments, or decorate it with @nurinet.io.register_layer"
                )
            continue
        if isinstance(p.default, bool) and (value is None or isinstance(value, Tensor)):
            value = value is not None  # e.g. bias=True kept as the bias Parameter
        args[pname] = value
    return args


def encode_value(value: Any, where: str) -> Any:
    """``value`` as JSON data, with tags for tuples, dtypes, arrays, modules and activations."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return value.item()
    if isinstance(value, Generator):
        return None  # generators are not architecture; checkpoints save their states
    if isinstance(value, Module):
        return {"__layer__": layer_config(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: encode_value(v, f"{where}.{k}") for k, v in value.items()}}
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return {"__dtype__": np.dtype(value).name}
    if isinstance(value, (Tensor, np.ndarray)) or backend.is_cupy_array(value):
        array = backend.to_numpy(value.data if isinstance(value, Tensor) else value)
        return {"__array__": np.asarray(array).tolist(), "dtype": array.dtype.name}
    if callable(value):
        name = _activation_name(value)
        if name is not None:
            return {"__activation__": name}
    raise TypeError(f"cannot save {where} = {value!r} ({type(value).__name__}) as part of the "
                    "architecture: only JSON values, tuples, dtypes, arrays, modules and registered "
                    "activation functions can be stored; give the layer a get_config() that "
                    "returns storable arguments")


def _activation_name(fn: Any) -> str | None:
    from nurinet.functional import get_activation

    name = getattr(fn, "__name__", None)
    try:
        return name if name and get_activation(name) is fn else None
    except (ValueError, TypeError):
        return None


# ----- config -> module --------------------------------------------------------------------
def decode_value(value: Any) -> Any:
    """Inverse of :func:`encode_value`."""
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__layer__" in value:
        return module_from_config(value["__layer__"])
    if "__tuple__" in value:
        return tuple(decode_value(v) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: decode_value(v) for k, v in value["__dict__"].items()}
    if "__dtype__" in value:
        return np.dtype(value["__dtype__"])
    if "__array__" in value:
        return np.array(value["__array__"], dtype=value["dtype"])
    if "__activation__" in value:
        from nurinet.functional import get_activation

        return get_activation(value["__activation__"])
    raise ValueError(f"unrecognized tagged value in an architecture config: {sorted(value)}")


def module_from_config(config: dict[str, Any]) -> Module:
    """Build a module (with fresh weights) from :func:`layer_config`'s output."""
    from nurinet.nn import ModuleDict, ModuleList, Sequential

    if not isinstance(config, dict) or "class" not in config:
        raise ValueError(f"a layer config must be a dict with a 'class' entry, got {config!r}")
    cls = get_layer_class(config["class"])
    args = {k: decode_value(v) for k, v in config.get("config", {}).items()}
    if cls is Sequential:
        return Sequential(args["layers"])
    if cls in (ModuleList, ModuleDict):
        return cls(args["modules"])
    if callable(getattr(cls, "from_config", None)):
        return cls.from_config(args)
    positional = args.pop("*args", [])
    try:
        return cls(*positional, **args)
    except TypeError as error:
        raise ValueError(f"cannot rebuild layer {config['class']} from its saved arguments "
                         f"{sorted(args)}: {error}") from error
