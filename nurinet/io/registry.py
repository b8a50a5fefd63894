"""The layer registry: turn a module into a JSON architecture config and back.

A layer of nurinet's own is saved as ``{"class": NAME, "module": "nurinet.nn.linear",
"config": {constructor argument: value}}``: the class and the module that defines it. A
layer the user registered with :func:`register_layer` is saved as ``{"class":
REGISTERED_NAME, "config": {...}}``, found by that name when loading. Any other user class
defined at module level is saved by its module and qualified name (``{"class": "Net",
"module": "mypackage.nets", ...}``) and loaded only when the user allows it (:func:`allowing`:
``nurinet.load(path, classes=[Net])`` or ``allowed_modules=["mypackage"]``), or registers it. Rebuilding calls
``cls(**config)`` (or ``cls.from_config(config)`` when the class defines it) and the
weights are loaded afterwards.

Which class a saved layer names (:func:`layer_class_of`):

- with ``"module"``: the class of that name in that module, imported with importlib.
  Only modules under ``nurinet.`` are imported, and only a ``Module`` subclass is
  accepted, so a file never makes nurinet import a module of its choosing. A user module
  is refused (``CorruptFileError``) unless the class was passed explicitly, registered, or
  its package allowed by the user (:func:`allowing`);
- without it (a user layer, or a file written before the module was recorded): the
  name, looked up in the user's layers, then ``nurinet.nn.__all__``, then the exports of
  ``nurinet.models`` and ``nurinet.training``. The last two are imported by name, and
  only when the name is not a layer of ``nurinet.nn``: ``io`` sits below them.

Where the constructor arguments come from, first match wins:

1. the containers (``Sequential``, ``ModuleList``, ``ModuleDict``) and ``nn.Activation``
   have built-in rules;
2. a class decorated with :func:`register_layer` that does not define ``get_config``
   itself uses the arguments recorded when the instance was built (a parent's
   ``get_config`` describes the parent's constructor, not this one's);
3. a layer with a ``get_config()`` method returns them itself (Keras's convention;
   ``training.Model`` returns its ``network``), unless it is a user class whose own
   constructor differs from the one that ``get_config`` describes (a ``Model`` subclass
   taking ``n_in``): rule 5 then reads its arguments;
4. a class decorated with :func:`register_layer` records them when an instance is built;
5. otherwise they are read back from attributes named like the constructor's
   parameters, PyTorch's convention (``Linear(in_features, ...)`` keeps
   ``self.in_features``). A ``bias: bool`` parameter is read as "the bias
   Parameter is not None", ``dtype`` from the first floating parameter, and
   ``generator`` is never saved (the rebuilt layer uses the default generator).

So a new built-in layer needs nothing special as long as it keeps its
constructor arguments under their own names; a user layer only needs
``@register_layer``. Names are looked up in name tables
(:class:`nurinet.names.NameTable`: case and punctuation ignored), user layers first.

Values are JSON; what JSON lacks is tagged: ``{"__tuple__": [...]}``,
``{"__dtype__": "float32"}``, ``{"__layer__": {...}}`` (a submodule),
``{"__array__": [...], "dtype": ...}``, ``{"__activation__": "relu"}``,
``{"__dict__": {...}}``, ``{"__regularizer__": {"class": "L1L2", "config": {...}}}`` (a
layer's ``activity_regularizer``, found by name in
``nurinet.nn.regularizers.REGULARIZERS``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Tensor
from nurinet.io.safetensors import CorruptFileError
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
    taken = _USER.find(key) or find_builtin_layer(key)
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


# The packages whose exported layers are found by name, searched in this order. ``nn`` is
# below ``io``; the others are above it, so they are imported by name, on the first lookup
# that ``nn`` cannot answer, never by ``import nurinet``.
_LAYER_PACKAGES = ("nurinet.nn", "nurinet.models", "nurinet.training")


def _package_table(package: str) -> NameTable:
    def fill(table: NameTable) -> None:
        table.add_public(importlib.import_module(package), _is_layer_class)

    table = NameTable("layer type")
    table.add_loader(fill)
    return table


_BUILTIN_TABLES = tuple(_package_table(package) for package in _LAYER_PACKAGES)


def find_builtin_layer(name: str) -> type[Module] | None:
    """nurinet's own layer class exported as ``name``, or None (user layers not searched).

    The packages are searched in turn (``nurinet.nn``, ``nurinet.models``,
    ``nurinet.training``), so a name of ``nn`` imports nothing above it. Never a walk over
    subclasses, so the answer does not depend on what happens to be imported.
    """
    for table in _BUILTIN_TABLES:
        cls = table.find(name)
        if cls is not None:
            return cls
    return None


def _builtin_classes() -> dict[str, type[Module]]:
    """Every exported layer class of nurinet by its public name (imports all the packages)."""
    found: dict[str, type[Module]] = {}
    for package in _LAYER_PACKAGES:
        module = importlib.import_module(package)
        found.update({name: getattr(module, name) for name in module.__all__
                      if _is_layer_class(getattr(module, name)) and name not in found})
    return found


def layer_type_names() -> list[str]:
    """The layer names :func:`get_layer_class` knows, user layers included (normalized)."""
    return sorted({*_USER.names(), *(name for table in _BUILTIN_TABLES for name in table.names())})


def get_layer_class(name: str) -> type[Module]:
    """The layer class registered as ``name`` (user layers first, then nurinet's own).

    Case, ``_``, ``-`` and spaces are ignored: ``"Conv2d"`` and ``"conv_2d"`` are one name.

    Raises:
        ValueError: no layer of that name (the message lists the known names and says how
            to register one).
    """
    cls = _USER.find(name) or find_builtin_layer(name)
    if cls is None:
        raise unknown_name("layer type", name, layer_type_names(),
                           f"If it is your own layer, decorate its class with "
                           f"@nurinet.io.register_layer (or register_layer(cls, name={name!r})) "
                           "before loading.")
    return cls


def _registered_name(cls: type) -> str | None:
    """The name ``cls`` was registered under with :func:`register_layer`, or None."""
    registered = cls.__dict__.get("_nurinet_layer_name")  # not inherited: a subclass is another layer
    return registered if registered is not None and _USER.find(registered) is cls else None


def _is_nurinet_layer(cls: type) -> bool:
    """True for a public layer class of nurinet that its module holds under its own name,
    which is how loading finds it again. Looked up in ``sys.modules``: the class's module
    is loaded already."""
    defining = sys.modules.get(cls.__module__)
    return (_is_nurinet_module_name(cls.__module__) and not cls.__name__.startswith("_")
            and getattr(defining, cls.__name__, None) is cls)


def layer_name(module: Module) -> str:
    """The name under which ``module``'s class is saved: its registered name for a user
    layer, its class name for one of nurinet's own.

    Raises:
        ValueError: the class is neither registered nor one of nurinet's public layers.
    """
    cls = type(module)
    registered = _registered_name(cls)
    if registered is not None:
        return registered
    if _is_nurinet_layer(cls):
        return cls.__name__
    if _is_importable_class(cls):
        return cls.__qualname__  # a user class, saved with its module: loaded only when allowed
    raise ValueError(f"cannot save a layer of type {cls.__module__}.{cls.__qualname__}: it is not "
                     "registered, and loading could not find it by its module and name (a class "
                     "defined inside a function, or a private class), so it could not be rebuilt; "
                     "define it at module level, or decorate the class with "
                     "@nurinet.io.register_layer")


def _is_importable_class(cls: type) -> bool:
    """True when ``cls`` is what its module holds under its qualified name, so that loading
    can find it again (a class defined inside a function is not)."""
    if "<locals>" in cls.__qualname__ or not _DOTTED_NAME.fullmatch(cls.__qualname__) \
            or cls.__module__ == "nurinet" or cls.__module__.startswith("nurinet."):
        return False  # nurinet's own classes load only when public (_is_nurinet_layer)
    found: Any = sys.modules.get(cls.__module__)
    for part in cls.__qualname__.split("."):
        found = getattr(found, part, None)
    return found is cls


# ----- module -> config ---------------------------------------------------------------------
def layer_config(module: Module) -> dict[str, Any]:
    """The JSON-able architecture of ``module``.

    Returns:
        ``{"class": name, "module": "nurinet.nn.linear", "config": {...}}`` for nurinet's
        own layers; ``{"class": registered name, "config": {...}}`` for a user layer.

    Raises:
        ValueError: a layer is not registered, or an argument is not kept (see the module
            docstring).
        TypeError: an argument cannot be stored as JSON.
    """
    if not isinstance(module, Module):
        raise TypeError(f"layer_config expects a Module, got {type(module).__name__}")
    name = layer_name(module)
    args = constructor_args(module)
    config = {"class": name}
    if _registered_name(type(module)) is None:
        config["module"] = type(module).__module__  # where loading imports it from
    config["config"] = {k: encode_value(v, f"{name}.{k}") for k, v in args.items()}
    return config


def constructor_args(module: Module) -> dict[str, Any]:
    """The arguments that rebuild ``module`` with ``type(module)(**args)``, as Python values
    (see the module docstring for where they come from).

    Raises:
        ValueError: a constructor argument is not kept under its own name.
        TypeError: ``get_config()`` returns something other than a dict.
    """
    from nurinet.nn import Activation, ModuleDict, ModuleList, Sequential

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
    recorded = module.__dict__.get(_RECORD)
    if recorded is not None and "get_config" not in cls.__dict__:
        return dict(recorded)  # an inherited get_config describes the parent's constructor
    if callable(getattr(module, "get_config", None)) and not _config_of_another_constructor(cls):
        config = module.get_config()
        if not isinstance(config, dict):
            raise TypeError(f"{cls.__name__}.get_config() must return a dict of constructor "
                            f"arguments, got {type(config).__name__}")
        return config
    if recorded is not None:
        return dict(recorded)
    return _introspect(module)


def _config_of_another_constructor(cls: type) -> bool:
    """True for a user class with its own constructor whose ``get_config`` is inherited from
    a class with another one (a ``Model`` subclass taking ``n_in``, not ``network``): that
    ``get_config`` describes the parent's arguments, so they are read back by name instead."""
    if _is_nurinet_module_name(cls.__module__):
        return False
    owner = next(k for k in cls.__mro__ if "get_config" in k.__dict__)
    return owner.__init__ is not cls.__init__


def _lookup(module: Module, name: str) -> Any:
    for registry in (module.__dict__, module._parameters, module._buffers, module._modules):
        if name in registry:
            return registry[name]
    if isinstance(getattr(type(module), name, None), property):
        return getattr(module, name)
    return _MISSING


def _first_float_dtype(module: Module) -> Any:
    for param in module.parameters():
        if param.array.dtype.kind == "f":
            return param.array.dtype
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
        array = backend.to_numpy(value.array if isinstance(value, Tensor) else value)
        return {"__array__": np.asarray(array).tolist(), "dtype": array.dtype.name}
    from nurinet.nn.regularizers import Regularizer, serialize_regularizer

    if isinstance(value, Regularizer):  # a layer's activity_regularizer (callable: checked first)
        try:
            return {"__regularizer__": serialize_regularizer(value)}
        except TypeError as error:
            raise TypeError(f"cannot save {where}: {error}") from None
    if callable(value):
        name = activation_name(value)
        if name is not None:
            return {"__activation__": name}
    raise TypeError(f"cannot save {where} = {value!r} ({type(value).__name__}) as part of the "
                    "architecture: only JSON values, tuples, dtypes, arrays, modules and registered "
                    "activation functions can be stored; give the layer a get_config() that "
                    "returns storable arguments")


def activation_name(fn: Any) -> str | None:
    """The registered activation name of the function ``fn``, or None when it has none."""
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
    if "__regularizer__" in value:
        from nurinet.nn.regularizers import deserialize_regularizer

        return deserialize_regularizer(value["__regularizer__"])
    raise ValueError(f"unrecognized tagged value in an architecture config: {sorted(value)}")


# Dotted names under nurinet; no dunder part (never ``nurinet.__main__``, an entry point).
_NURINET_MODULE = re.compile(r"nurinet(\.(?!__)[A-Za-z_][A-Za-z0-9_]*)+")
_CLASS_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# A user class's module and qualified name: dotted identifiers (``__main__`` included).
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_DOTTED_NAME = re.compile(_DOTTED)  # a module path or a qualified class name


def _is_nurinet_module_name(name: Any) -> bool:
    return isinstance(name, str) and _NURINET_MODULE.fullmatch(name) is not None


# ----- the user's own classes: loaded only when the user allows them --------------------------
@dataclass(frozen=True)
class _Allowance:
    """The user classes one load may build besides the registered ones: classes passed
    explicitly, and the packages whose modules it may import."""

    classes: tuple[type, ...] = ()
    modules: tuple[str, ...] = ()

    def explicit_class(self, module: str, qualname: str) -> type | None:
        """The class passed explicitly as ``module.qualname``; failing that, the only one passed
        whose qualified name is ``qualname`` (a class saved from a script is ``__main__.Net``,
        loaded elsewhere from its own module)."""
        exact = [c for c in self.classes if (c.__module__, c.__qualname__) == (module, qualname)]
        named = [c for c in self.classes if c.__qualname__ == qualname]
        return exact[0] if exact else named[0] if len(named) == 1 else None

    def imports(self, module: str) -> bool:
        return any(module == allowed or module.startswith(allowed + ".") for allowed in self.modules)


_NOTHING_ALLOWED = _Allowance()
# Per thread and per asyncio task, so that one load's allowance never leaks into another's.
_ALLOWED: contextvars.ContextVar[_Allowance | None] = contextvars.ContextVar("nurinet_allowed_classes",
                                                                            default=None)


def _allowance() -> _Allowance:
    return _ALLOWED.get() or _NOTHING_ALLOWED


@contextlib.contextmanager
def allowing(classes: Iterable[type] | None = None,
             allowed_modules: Iterable[str] | None = None) -> Iterator[None]:
    """Let the loads inside the block build these user classes (saved by module and name).

    A file names its classes; nurinet builds only its own, the registered ones, and those the
    user allows here, so a file never makes nurinet import a module of its choosing.

    Args:
        classes: ``Module`` subclasses the file may name (``[MyNet]``): used as they are,
            nothing is imported.
        allowed_modules: Packages or modules (``["mypackage"]``) that a file's classes may be
            imported from, with their submodules.

    Raises:
        TypeError: a class is not a ``Module`` subclass, or a module is not a dotted name.
    """
    # One class or one module name is taken as a list of one.
    classes = (classes,) if isinstance(classes, type) else tuple(classes or ())
    modules = (allowed_modules,) if isinstance(allowed_modules, str) else tuple(allowed_modules or ())
    for cls in classes:
        if not _is_layer_class(cls):
            raise TypeError(f"classes= takes subclasses of nurinet.nn.Module, got {cls!r}")
    for module in modules:
        if not isinstance(module, str) or not _DOTTED_NAME.fullmatch(module):
            raise TypeError(f"allowed_modules= takes dotted module names such as 'mypackage', got "
                            f"{module!r}")
    outer = _allowance()
    token = _ALLOWED.set(_Allowance(outer.classes + classes, outer.modules + modules))
    try:
        yield
    finally:
        _ALLOWED.reset(token)


def _registered_user_class(module: str, qualname: str) -> type | None:
    """A registered class that is ``module.qualname`` (registered after the file was saved)."""
    for name in _USER.names():
        cls = _USER.find(name)
        if (cls.__module__, cls.__qualname__) == (module, qualname):
            return cls
    return None


def _user_class(module: str, qualname: str) -> type | None:
    """The user class ``module.qualname`` if the user allows it (explicitly, by registration,
    or by its package), else None. Only an allowed module is imported."""
    allowance = _allowance()
    found = allowance.explicit_class(module, qualname) or _registered_user_class(module, qualname)
    if found is not None or not allowance.imports(module):
        return found
    value: Any = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part, None)
    if not _is_layer_class(value):
        raise CorruptFileError(f"{module}.{qualname} is not a layer (a subclass of nurinet.nn.Module)")
    return value


def _refused_user_class(module: str, name: Any) -> str | None:
    if not isinstance(name, str) or not _DOTTED_NAME.fullmatch(name) \
            or not _DOTTED_NAME.fullmatch(module):
        return f"layer class {name!r} of module {module!r} is not a class name"
    allowance = _allowance()
    if allowance.explicit_class(module, name) or _registered_user_class(module, name) \
            or allowance.imports(module):
        return None
    return (f"layer {name!r} names module {module!r}; only nurinet's own modules (nurinet.*) are "
            "imported when loading. If it is your own class, allow it: "
            f"nurinet.load(path, classes=[{name.rsplit('.', 1)[-1]}]), "
            f"nurinet.load(path, allowed_modules=[{module.split('.')[0]!r}]), or register it with "
            "@nurinet.io.register_layer before loading")


def refused_module(config: dict[str, Any]) -> str | None:
    """Why a layer config's ``"module"`` may not be imported, or None when it may (or when
    it has none). Dotted names under ``nurinet.`` are imported, for a public class name; a
    user class only when the user allows it (:func:`allowing`): a file never chooses what
    nurinet imports."""
    module = config.get("module")
    if module is None:
        return None
    if not isinstance(module, str):
        return f"layer {config.get('class')!r} names module {module!r}, which is not a module name"
    if not _is_nurinet_module_name(module):
        if module == "nurinet" or module.startswith("nurinet."):  # a malformed nurinet name
            return (f"layer {config.get('class')!r} names module {module!r}; only nurinet's own "
                    "modules (nurinet.*) are imported when loading")
        return _refused_user_class(module, config.get("class"))
    if not isinstance(config.get("class"), str) or not _CLASS_NAME.fullmatch(config["class"]):
        return f"layer class {config.get('class')!r} of module {module!r} is not a public class name"
    return None


def layer_class_of(config: dict[str, Any]) -> type[Module]:
    """The class a saved layer config names (see the module docstring).

    Raises:
        CorruptFileError: the module is not one of nurinet's (:func:`refused_module`), or the
            class it names there is not a layer (a ``ValueError``).
        ValueError: no layer has that name (the message says how to register one).
    """
    reason = refused_module(config)
    if reason is not None:
        raise CorruptFileError(reason)
    if config.get("module") is None:
        return get_layer_class(config["class"])
    if not _is_nurinet_module_name(config["module"]):
        cls = _user_class(config["module"], config["class"])
        if cls is None:  # refused_module allowed it, so it is importable: a class that is gone
            raise ValueError(f"layer {config['module']}.{config['class']} is not found")
        return cls
    cls = _class_in_module(config["module"], config["class"])
    return cls if cls is not None else get_layer_class(config["class"])


def _class_in_module(module_name: str, class_name: str) -> type[Module] | None:
    """``module_name.class_name`` for a checked nurinet module name; None when the module or
    the name is gone (a class that moved since the file was saved is then found by name).

    Raises:
        CorruptFileError: the name exists but is not a layer class.
    """
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name is None or not f"{module_name}.".startswith(f"{error.name}."):
            raise  # a module that exists is missing a dependency: not a class that moved
        return None
    found = getattr(module, class_name, None)
    if found is None:
        return None
    if not _is_layer_class(found):
        raise CorruptFileError(f"{module_name}.{class_name} is not a layer (a subclass of "
                               "nurinet.nn.Module)")
    return found


def module_from_config(config: dict[str, Any]) -> Module:
    """Build a module (with fresh weights) from :func:`layer_config`'s output."""
    from nurinet.nn import ModuleDict, ModuleList, Sequential

    if not isinstance(config, dict) or "class" not in config:
        raise ValueError(f"a layer config must be a dict with a 'class' entry, got {config!r}")
    cls = layer_class_of(config)
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
