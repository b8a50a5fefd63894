"""Nested Python values (PyTorch's checkpoint dict) as safetensors tensors plus a JSON description.

``nurinet.save({"epoch": 3, "model_state_dict": ..., "optimizer_state_dict": ..., "loss": 0.25},
path)`` stores every array as a tensor of the file, named by its key path
(``"model_state_dict/0.weight"``, ``"optimizer_state_dict/state/0,0/exp_avg"``), and
everything else as JSON in the header's metadata (``"nurinet.structure"``). Nothing is
pickled, and loading builds only the types listed here, so a file never makes nurinet
import or call code of its choosing.

What can be stored, and what :func:`decode` gives back:

- ``None``, ``bool``, ``int``, ``float`` (NaN and infinities too), ``str``: the same value
  (a subclass, such as an ``IntEnum``, comes back as its base type);
- a nurinet ``Tensor`` or ``Parameter``: the same class, dtype, shape and ``requires_grad``,
  on the CPU; a NumPy array: a NumPy array; a NumPy scalar (``np.float32(0.5)``): a NumPy
  scalar; a CuPy array: a NumPy array. Each leaf comes back as the type it was saved as,
  as ``torch.load`` gives back what was pickled: ``model.state_dict()`` and an
  optimizer's ``state_dict()`` hold NumPy arrays, and they load back as NumPy arrays;
- lists and tuples (a tuple subclass, such as a named tuple, comes back as a tuple), and
  mappings (any ``Mapping``, such as an ``OrderedDict``, comes back as a ``dict`` in the
  same order) whose keys are ``str``, ``int``, or tuples of those (an optimizer's state is
  keyed by ``(group, index)`` positions).

Anything else (an arbitrary object, a function, a set, a module, a ``float`` or ``None``
dict key), a value that contains itself, or nesting deeper than :data:`MAX_NESTING`
raises an error naming the key path (``obj['optimizer_state_dict']['state'][(0, 0)]``)
and the type, before anything is written. Arrays shared between two places are stored
twice and come back as two arrays.

The JSON description: a list is a JSON array; a tuple is ``{"tuple": [...]}``; a mapping
``{"keys": [...], "values": [...]}`` (so that keys keep their types and their order); an
array ``{"tensor": name, "as": "Tensor" | "Parameter" | "ndarray" | "scalar"}`` (with
``"requires_grad": true`` when set); a non-finite float ``{"float": "nan" | "inf" | "-inf"}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Parameter, Tensor
from nurinet.io.safetensors import CorruptFileError, _short, storable_dtype
from nurinet.nn.module import Module

MAX_NESTING = 64  # containers inside one another; their JSON stays under the loader's depth limit
Key = str | int | tuple
Path = tuple[Key, ...]

_ARRAY_KINDS = {"Tensor", "Parameter", "ndarray", "scalar"}
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


# ----- saving -------------------------------------------------------------------------------------
def encode(value: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """The JSON description of ``value`` and its arrays, by tensor name.

    Raises:
        TypeError: something in ``value`` cannot be stored (the message names its key path
            and type).
        ValueError: ``value`` contains itself, or is nested more than :data:`MAX_NESTING` deep.
    """
    encoder = _Encoder()
    return encoder.value(value, ()), encoder.tensors


def where(path: Path) -> str:
    """``obj['model'][0]``: a key path as the Python expression that reaches it."""
    return "obj" + "".join(f"[{key!r}]" for key in path)


class _Encoder:
    """One walk over a value: the tensors found so far, and the containers being walked."""

    def __init__(self) -> None:
        self.tensors: dict[str, np.ndarray] = {}
        self.open_containers: set[int] = set()  # ids of the containers on the current path

    def value(self, value: Any, path: Path) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):  # before the arrays: a NumPy string is a str, not storable as one
            return str(value)
        if isinstance(value, (Tensor, np.ndarray, np.generic)) or backend.is_cupy_array(value):
            return self.array(value, path)  # before int and float: np.float64 is a float
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value) if math.isfinite(value) else {"float": repr(float(value))}
        if isinstance(value, (list, tuple, Mapping)):
            return self.container(value, path)
        raise TypeError(f"nurinet.save cannot store {where(path)}: it is {describe(value)}. A file "
                        "holds tensors, NumPy arrays, None, bool, int, float, str, and lists, tuples "
                        "and dicts of them (nothing is pickled)" + _hint(value))

    def container(self, value: list | tuple | Mapping, path: Path) -> Any:
        if id(value) in self.open_containers:
            raise ValueError(f"nurinet.save cannot store {where(path)}: it contains itself")
        if len(path) >= MAX_NESTING:
            raise ValueError(f"nurinet.save cannot store {where(path)}: it is nested more than "
                             f"{MAX_NESTING} containers deep")
        self.open_containers.add(id(value))
        try:
            if isinstance(value, Mapping):
                return self.mapping(value, path)
            items = [self.value(item, (*path, i)) for i, item in enumerate(value)]
            return items if isinstance(value, list) else {"tuple": items}
        finally:
            self.open_containers.discard(id(value))

    def mapping(self, value: Mapping, path: Path) -> dict[str, list]:
        keys, values = [], []
        for key, item in value.items():
            keys.append(encode_key(key, path))
            values.append(self.value(item, (*path, key)))
        return {"keys": keys, "values": values}

    def array(self, value: Any, path: Path) -> dict[str, Any]:
        data = value.array if isinstance(value, Tensor) else value
        array = backend.to_numpy(data) if backend.is_cupy_array(data) else np.asarray(data)
        if not storable_dtype(array.dtype):
            raise TypeError(f"nurinet.save cannot store {where(path)}: its dtype {array.dtype} has "
                            "no safetensors code (bool, integers, float16/32/64 and complex64 do)")
        name = self.tensor_name(path)
        self.tensors[name] = array
        tag: dict[str, Any] = {"tensor": name, "as": _array_kind(value)}
        if isinstance(value, Tensor) and value.requires_grad:
            tag["requires_grad"] = True
        return tag

    def tensor_name(self, path: Path) -> str:
        """``"optimizer_state_dict/state/0,0/exp_avg"``; made unique when two paths read the
        same (the keys ``1`` and ``"1"``, or a key holding a slash)."""
        base = "/".join(_name_part(key) for key in path) or "obj"
        name, count = base, 1
        while name in self.tensors or name == "__metadata__":
            count += 1
            name = f"{base}#{count}"
        return name


def encode_key(key: Any, path: Path) -> Any:
    """A dict key as JSON: a str or int as itself, a flat tuple of them as ``{"tuple": [...]}``
    (flat, so that keys stay shallow)."""
    if _is_simple_key(key):
        return str(key) if isinstance(key, str) else int(key)  # a subclass (IntEnum) as its base
    if isinstance(key, tuple) and all(_is_simple_key(part) for part in key):
        return {"tuple": [encode_key(part, path) for part in key]}
    raise TypeError(f"nurinet.save cannot store {where(path)}: its key {key!r} is "
                    f"{describe(key)}; dict keys must be str or int (or flat tuples of them, such "
                    "as an optimizer's (group, index) positions)")


def _is_simple_key(key: Any) -> bool:
    return isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool))


def describe(value: Any) -> str:
    """``"a set"``, ``"a function '<lambda>'"``, ``"an instance of mypackage.Thing"``."""
    kind = type(value)
    if callable(value) and hasattr(value, "__qualname__") and not isinstance(value, type):
        return f"a {kind.__name__} {value.__qualname__!r}"
    if kind.__module__ == "builtins":
        return f"a {kind.__name__}"
    return f"an instance of {kind.__module__}.{kind.__qualname__}"


def _hint(value: Any) -> str:
    if isinstance(value, Module):
        return "; store the module's state_dict() instead, or save the module alone with " \
               "nurinet.save(module, path)"
    if isinstance(value, (set, frozenset)):
        return "; store it as a sorted list"
    return ""


def _array_kind(value: Any) -> str:
    if isinstance(value, Tensor):
        return type(value).__name__ if type(value) in (Tensor, Parameter) else "Tensor"
    return "scalar" if isinstance(value, np.generic) else "ndarray"


def _name_part(key: Key) -> str:
    return ",".join(_name_part(part) for part in key) if isinstance(key, tuple) else str(key)


# ----- loading ------------------------------------------------------------------------------------
def decode(description: Any, tensors: dict[str, np.ndarray], path: str) -> Any:
    """The value described by ``description`` (parsed JSON, depth already limited), its arrays
    taken from ``tensors``.

    Raises:
        CorruptFileError: the description is not one :func:`encode` writes, or names a tensor
            the file does not hold.
    """
    return _Decoder(tensors, path).value(description)


class _Decoder:
    """Rebuilds values from a description that may have been crafted: every shape checked."""

    def __init__(self, tensors: dict[str, np.ndarray], path: str) -> None:
        self.tensors = tensors
        self.path = path

    def value(self, description: Any) -> Any:
        if isinstance(description, list):
            return [self.value(item) for item in description]
        if not isinstance(description, dict):
            return description  # None, bool, int, float or str, as JSON gives them
        if set(description) == {"tuple"} and isinstance(description["tuple"], list):
            return tuple(self.value(item) for item in description["tuple"])
        if set(description) == {"keys", "values"}:
            return self.mapping(description["keys"], description["values"])
        if set(description) == {"float"} and description["float"] in _NON_FINITE:
            return _NON_FINITE[description["float"]]
        if "tensor" in description:
            return self.array(description)
        raise self.corrupt(f"{_short(description)} is not a value nurinet writes")

    def mapping(self, keys: Any, values: Any) -> dict:
        if not isinstance(keys, list) or not isinstance(values, list) or len(keys) != len(values):
            raise self.corrupt("a mapping's keys and values are not two lists of the same length")
        return {self.key(key): self.value(item) for key, item in zip(keys, values)}

    def key(self, description: Any, in_tuple: bool = False) -> Key:
        if isinstance(description, str) or type(description) is int:
            return description
        if isinstance(description, dict) and set(description) == {"tuple"} and not in_tuple \
                and isinstance(description["tuple"], list):
            return tuple(self.key(part, in_tuple=True) for part in description["tuple"])
        raise self.corrupt(f"the dict key {_short(description)} is not a str, an int or a tuple")

    def array(self, description: dict) -> Any:
        name, kind = description.get("tensor"), description.get("as")
        requires_grad = description.get("requires_grad", False)
        if set(description) - {"tensor", "as", "requires_grad"} or kind not in _ARRAY_KINDS \
                or not isinstance(name, str) or not isinstance(requires_grad, bool):
            raise self.corrupt(f"the tensor entry {_short(description)} is malformed")
        if name not in self.tensors:
            raise self.corrupt(f"it refers to tensor {_short(name)}, which the file does not hold")
        array = self.tensors[name]
        if kind == "ndarray":
            return array
        if kind == "scalar":
            if array.ndim:
                raise self.corrupt(f"the NumPy scalar {name!r} has shape {array.shape}")
            return array[()]
        try:
            return (Parameter if kind == "Parameter" else Tensor)(array, requires_grad=requires_grad)
        except (TypeError, ValueError, RuntimeError) as error:  # requires_grad on integers
            raise self.corrupt(f"tensor {name!r} cannot be rebuilt ({error})") from None

    def corrupt(self, what: str) -> CorruptFileError:
        return CorruptFileError(f"{self.path!r} cannot be loaded: its saved structure is damaged: "
                                f"{what}. The file was modified, or crafted, or not written by "
                                "nurinet.save.")


def map_tensors(value: Any, function: Callable[[Tensor], Any]) -> Any:
    """``value`` with every Tensor replaced by ``function(tensor)`` (``map_location``);
    NumPy arrays are left as they are, as ``torch.load`` leaves them."""
    if isinstance(value, Tensor):
        return function(value)
    if isinstance(value, list):
        return [map_tensors(item, function) for item in value]
    if isinstance(value, tuple):
        return tuple(map_tensors(item, function) for item in value)
    if isinstance(value, dict):
        return {key: map_tensors(item, function) for key, item in value.items()}
    return value
