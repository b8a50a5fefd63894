"""Checks of untrusted model and checkpoint files, made before anything is built.

A model file is 8 bytes, a JSON header and the tensors' bytes. The header is cheap to
read and the tensors are cheap to count, but the architecture in its metadata names
constructor arguments, and building a module allocates and initializes whatever they
declare: a 256-byte file declaring ``Linear(16384, 16384)`` would cost 3 GB and ten
seconds before the missing weights were noticed. So loading checks, in this order:

1. the header itself (:func:`nurinet.io.safetensors.read_checked_header`): its size, its
   JSON, every tensor's dtype, shape and offsets against the file's size (exact integer
   arithmetic, so a shape whose product overflows int64 is just a shape that does not fit);
2. the architecture's JSON: nested at most :data:`MAX_JSON_DEPTH` levels (about 40
   layers inside one another), every layer a ``{"class": name, "module": ..., "config":
   {...}}`` (``"module"`` optional: files written before it was recorded, and user layers,
   have none) whose module, if named, is one of nurinet's own
   (:func:`nurinet.io.registry.refused_module`), and every tagged value well formed
   (:func:`check_architecture`);
3. a dry count, instantiating nothing: every built-in layer whose parameters follow from
   its arguments (``Linear``, the convolutions, ``Embedding``, the recurrent layers,
   attention, the normalizations, the transformer layers, ...) has a *lower bound* on
   the number of elements it will allocate, a product of its arguments (``Linear``:
   ``in_features * out_features``; ``TransformerEncoder``: ``num_layers`` times its
   layer's, since copies draw nothing). Each layer whose place in the model is known (the
   children of ``Sequential``, ``ModuleList``, ``ModuleDict`` and ``Model``) must find at
   least that many elements in the file's tensors under its own name (``"0."``,
   ``"network.encoder."``); a layer inside another layer's arguments counts against its
   parent's tensors. A lower bound is used, not an exact count, so a legitimate file is
   never refused by a formula that misses a bias; the bias is small next to the weight,
   and an attacker gains at most that factor. Tables built but not saved (the sinusoidal
   positional encoding) are limited to :data:`TRANSIENT_LIMIT` elements, and the numbers
   in the arguments of the reference models of :mod:`nurinet.models` (whose layers are
   built by their constructors) to the file's elements under their name, or
   :data:`MODEL_NUMBER_FLOOR`;
4. the build itself runs under a guard (:func:`build_guarded`), for what no formula
   covers (the reference models, layers registered by the user): while the file's
   architecture is built, the default generator draws from a private stream and refuses
   to draw more initial values than ``4 x`` the file's elements plus :data:`DRAW_SLACK`.
   Every layer with parameters draws their initial values from it, so this stops an
   oversized layer after its lazy ``np.empty`` (address space, no memory touched) and
   before the fill that costs the time and the memory.

What stays open: a user-registered layer that fills a large array without drawing from the
generator (``np.ones(n)`` of an argument ``n``), or copies a layer many times, is built as
its arguments say; its file is still refused when the weights are loaded.

Everything malformed raises :class:`~nurinet.io.safetensors.CorruptFileError` (a
``ValueError``) naming the file and what is wrong. A layer name the registry does not
know still raises the registry's own ``ValueError``, which says how to register it.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import json
import math
import operator
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from nurinet.io.safetensors import CorruptFileError, _short

MAX_JSON_DEPTH = 200  # JSON levels; a layer inside another takes about five
MODEL_NUMBER_FLOOR = 65_536  # a nurinet.models argument may always be this large
DRAW_SLACK = 2**20  # initial values any build may draw beyond the file's own elements
TRANSIENT_LIMIT = 2**25  # elements of buffers a file does not hold (positional tables)

_DTYPE_NAMES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "float16", "float32", "float64", "complex64", "complex128"}
_TAGS = {"__layer__": dict, "__tuple__": list, "__dict__": dict, "__dtype__": str,
         "__array__": list, "__activation__": str, "__regularizer__": dict}


def _corrupt(path: str, what: str) -> CorruptFileError:
    return CorruptFileError(f"{path!r} cannot be loaded: {what}. The file is damaged, or was "
                            "crafted or not written by nurinet.")


# ----- JSON ---------------------------------------------------------------------------------------
def parse_json(text: str, path: str, what: str) -> Any:
    """``json.loads(text)``, nested at most :data:`MAX_JSON_DEPTH` levels.

    Raises:
        CorruptFileError: not JSON, or nested too deep (instead of a RecursionError).
    """
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:
        reason = "it is nested too deep" if isinstance(error, RecursionError) else str(error)
        raise _corrupt(path, f"its {what} is not valid JSON ({reason})") from None
    check_depth(value, path, what)
    return value


def check_depth(value: Any, path: str, what: str) -> None:
    """Refuse JSON data nested deeper than :data:`MAX_JSON_DEPTH` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise _corrupt(path, f"its {what} is nested more than {MAX_JSON_DEPTH} levels deep")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


# ----- the file's elements by module path ---------------------------------------------------------
class TensorCounts:
    """How many elements the file's tensors hold under each dotted module path."""

    def __init__(self, shapes: dict[str, tuple[int, ...]]) -> None:
        self.names = sorted(shapes)
        sizes = [math.prod(shapes[name]) for name in self.names]
        self.cumulative = [0, *itertools.accumulate(sizes)]

    @property
    def total(self) -> int:
        return self.cumulative[-1]

    def under(self, prefix: str) -> int:
        """Elements of the tensors named ``prefix.*`` (all of them for the root, ``""``)."""
        if not prefix:
            return self.total
        # The names starting with "prefix." are contiguous in sorted order, and "/" follows ".".
        low = bisect.bisect_left(self.names, prefix + ".")
        high = bisect.bisect_left(self.names, prefix + "/")
        return self.cumulative[high] - self.cumulative[low]


# ----- lower bounds on what a layer allocates ------------------------------------------------------
def _count(value: Any) -> int:
    """A size argument as a count; anything else counts 0 (the constructor will refuse it)."""
    return value if type(value) is int and value > 0 else 0


def _product(value: Any) -> int:
    """An int, or a tuple/list of ints (a kernel size, a normalized shape), as a count."""
    items = value.get("__tuple__", []) if isinstance(value, dict) else value
    if isinstance(items, list):
        return math.prod(_count(v) for v in items) if items else 0
    return _count(value)


def _arg(args: dict[str, Any], name: str, default: Any) -> Any:
    return args.get(name, default)


def _linear(args: dict) -> int:
    return _count(args.get("in_features")) * _count(args.get("out_features", args.get("units")))


def _conv(args: dict, transposed: bool) -> int:
    groups = _count(_arg(args, "groups", 1)) or 1
    inner, outer = (("out_channels", "in_channels") if transposed else ("in_channels", "out_channels"))
    return _count(args.get(outer)) * (_count(args.get(inner)) // groups) * _product(args.get("kernel_size"))


def _cell(gates: int) -> Callable[[dict], int]:
    def bound(args: dict) -> int:
        hidden = _count(args.get("hidden_size"))
        return gates * hidden * (_count(args.get("input_size")) + hidden)
    return bound


def _recurrent(gates: int) -> Callable[[dict], int]:
    def bound(args: dict) -> int:
        hidden, layers = _count(args.get("hidden_size")), _count(_arg(args, "num_layers", 1))
        first = gates * hidden * (_count(args.get("input_size")) + hidden)
        return first + max(layers - 1, 0) * gates * hidden * hidden
    return bound


def _attention(args: dict) -> int:
    e = _count(args.get("embed_dim"))
    kdim, vdim = args.get("kdim"), args.get("vdim")
    return e * (e + (e if kdim is None else _count(kdim)) + (e if vdim is None else _count(vdim))) + e * e


def _transformer_layer(attentions: int) -> Callable[[dict], int]:
    def bound(args: dict) -> int:
        d, ff = _count(args.get("d_model")), _count(_arg(args, "dim_feedforward", 2048))
        return attentions * 4 * d * d + 2 * d * ff
    return bound


def _affine(flag: str, size: Callable[[dict], int]) -> Callable[[dict], int]:
    return lambda args: size(args) if _arg(args, flag, True) is not False else 0


def _batch_norm(args: dict) -> int:
    keeps = _arg(args, "affine", True) is not False or _arg(args, "track_running_stats", True) is not False
    return _count(args.get("num_features")) if keeps else 0


# Lower bounds of persistent elements, by built-in class name (resolved to the class at use).
_BOUNDS: dict[str, Callable[[dict], int]] = {
    "Linear": _linear,
    "OutputLayer": _linear,
    "Maxout": lambda a: _linear(a) * _count(a.get("pieces")),
    "Conv1d": lambda a: _conv(a, transposed=False),
    "Conv2d": lambda a: _conv(a, transposed=False),
    "ConvTranspose2d": lambda a: _conv(a, transposed=True),
    "Embedding": lambda a: _count(a.get("num_embeddings")) * _count(a.get("embedding_dim")),
    "LearnedPositionalEncoding": lambda a: _count(a.get("d_model")) * _count(_arg(a, "max_len", 512)),
    "BatchNorm1d": _batch_norm,
    "BatchNorm2d": _batch_norm,
    "LayerNorm": _affine("elementwise_affine", lambda a: _product(a.get("normalized_shape"))),
    "GroupNorm": _affine("affine", lambda a: _count(a.get("num_channels"))),
    "PReLU": lambda a: _count(_arg(a, "num_parameters", 1)),
    "MultiheadAttention": _attention,
    "RNNCell": _cell(1), "GRUCell": _cell(3), "LSTMCell": _cell(4),
    "RNN": _recurrent(1), "GRU": _recurrent(3), "LSTM": _recurrent(4),
    "Perceptron": lambda a: _count(a.get("in_features")),
    "TransformerEncoderLayer": _transformer_layer(1),
    "TransformerDecoderLayer": _transformer_layer(2),
}
# Elements of buffers that are built but not saved (so the file cannot vouch for them).
_TRANSIENT: dict[str, Callable[[dict], int]] = {
    "SinusoidalPositionalEncoding": lambda a: _count(a.get("d_model")) * _count(_arg(a, "max_len", 5000)),
}
# Layers that copy a layer argument ``num_layers`` times (copies draw nothing, so only this
# count can stop a stack of a million copies).
_STACKS = {"TransformerEncoder": "encoder_layer", "TransformerDecoder": "decoder_layer"}




@functools.cache
def _builtin_rules() -> tuple[dict[type, Callable[[dict], int]], dict[type, Callable[[dict], int]],
                              dict[type, str], tuple[type, ...]]:
    """The tables above keyed by class (a user class registered under a built-in name is not
    the built-in class, so it gets no formula), and the container classes of ``nn``."""
    from nurinet import nn

    def by_class(table: dict[str, Any]) -> dict[type, Any]:
        return {getattr(nn, name): value for name, value in table.items()}

    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    return by_class(_BOUNDS), by_class(_TRANSIENT), by_class(_STACKS), containers


# Containers above ``io`` (their children are placed under their argument's name, as
# ``Model``'s ``network.``), known by dotted name so that ``io`` imports nothing above ``nn``:
# the registry has imported a class a file names before it is compared with these.
_APPLICATION_CONTAINERS = frozenset({"nurinet.training.model.Model"})


def _is_container(cls: type, containers: tuple[type, ...]) -> bool:
    return cls in containers or f"{cls.__module__}.{cls.__qualname__}" in _APPLICATION_CONTAINERS


# ----- the architecture ---------------------------------------------------------------------------
def check_architecture(architecture: Any, shapes: dict[str, tuple[int, ...]], path: str) -> None:
    """Check a parsed architecture against the file's tensor shapes, building nothing.

    Args:
        architecture: The architecture JSON (already depth-checked by :func:`parse_json`).
        shapes: ``{tensor name: shape}`` of the model's tensors in the file.
        path: The file, for messages.

    Raises:
        CorruptFileError: a malformed layer or value, or a layer that declares more than the
            file holds under its name (see the module docstring).
        ValueError: a layer name that no registered class has (the registry's message).
    """
    walk = _Walk(TensorCounts(shapes), path)
    walk.layer(architecture, "", "the model")
    if walk.transient > TRANSIENT_LIMIT:
        raise _corrupt(path, f"its layers declare {walk.transient:,} elements of tables that are "
                             f"not saved (positional encodings), more than {TRANSIENT_LIMIT:,}")


class _Walk:
    """One pass over an architecture: each layer's lower bound against the file's elements."""

    def __init__(self, counts: TensorCounts, path: str) -> None:
        self.counts, self.path, self.transient = counts, path, 0

    def layer(self, config: Any, prefix: str, where: str, placed: bool = True) -> int:
        """Check the layer ``config``; return its lower bound.

        ``prefix`` is the layer's own name when ``placed``; otherwise (a layer inside another
        layer's arguments, whose owner names it as it likes) the name of an ancestor.
        """
        if not isinstance(config, dict) or not isinstance(config.get("class"), str) \
                or not isinstance(config.get("config", {}), dict) \
                or not isinstance(config.get("module", ""), str):
            raise _corrupt(self.path, f"{where} is not a layer {{'class': name, 'module': name, "
                                      f"'config': {{...}}}}: {_short(config)}")
        args = config.get("config", {})
        for value in args.values():
            self.check_value(value, where)
        cls = self.layer_class(config)
        where = f"{where} ({config['class']})"
        bounds, transient, stacks, containers = _builtin_rules()
        if _is_container(cls, containers):
            return sum(self.layer(child, _join(prefix, key) if placed else prefix,
                                  f"layer {_join(prefix, key)!r}" if placed else f"{where}[{key!r}]", placed)
                       for key, child in _children(args, self.path, where))
        self.transient += transient.get(cls, lambda a: 0)(args)
        nested: dict[str, int] = {}
        for key, child in _nested(args):
            nested[key] = nested.get(key, 0) + self.layer(child, prefix, f"{where} argument {key!r}",
                                                          placed=False)
        if cls in stacks:
            bound = _count(args.get("num_layers")) * nested.get(stacks[cls], 0) + nested.get("norm", 0)
        else:
            bound = bounds.get(cls, lambda a: 0)(args) + sum(nested.values())
        if cls.__module__.startswith("nurinet.models."):
            self.check_model_numbers(args, prefix, where)
        self.check_bound(bound, prefix, where)
        return bound

    def layer_class(self, config: dict) -> type:
        """The class a layer names; a module outside nurinet, or a name there that is not a
        layer, is a corrupt file (an unknown name keeps the registry's ValueError, which
        says how to register a layer)."""
        from nurinet.io.registry import layer_class_of

        try:
            return layer_class_of(config)
        except CorruptFileError as error:
            raise _corrupt(self.path, str(error)) from None

    def check_bound(self, bound: int, prefix: str, where: str) -> None:
        held = self.counts.under(prefix)
        if bound > held:
            place = f"under '{prefix}.'" if prefix else "in all its tensors"
            raise _corrupt(self.path, f"{where} declares at least {bound:,} parameter elements but "
                                      f"the file holds {held:,} {place}")

    def check_model_numbers(self, args: dict, prefix: str, where: str) -> None:
        """A reference model's sizes are built, not checked by a formula: bound each number."""
        limit = max(self.counts.under(prefix), MODEL_NUMBER_FLOOR)
        for name, value in _numbers(args):
            if value > limit:
                raise _corrupt(self.path, f"{where} argument {name} = {value!r} is larger than the "
                                          f"{limit:,} elements the file holds for it")

    def check_value(self, value: Any, where: str) -> None:
        """Every dict in a layer's arguments carries exactly one known tag, well typed."""
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(self.tagged_content(item, where))

    def tagged_content(self, item: dict, where: str) -> list:
        tags = [tag for tag in _TAGS if tag in item]
        allowed = {tags[0], "dtype"} if tags == ["__array__"] else set(tags)
        if len(tags) != 1 or set(item) - allowed or not isinstance(item[tags[0]], _TAGS[tags[0]]):
            raise _corrupt(self.path, f"an argument of {where} is not a known tagged value: {_short(item)}")
        tag = tags[0]
        if tag == "__layer__":
            return []  # walked as a layer
        if tag in ("__dtype__", "__array__"):
            name = item.get("dtype", item.get("__dtype__"))
            if name not in _DTYPE_NAMES:
                raise _corrupt(self.path, f"an argument of {where} has dtype {_short(name)}; allowed: "
                                          f"{sorted(_DTYPE_NAMES)}")
        if tag == "__dict__":
            return list(item[tag].values())
        if tag == "__regularizer__":
            self.check_regularizer(item[tag], where)
            return []
        return item[tag] if isinstance(item[tag], list) else []

    def check_regularizer(self, stored: dict, where: str) -> None:
        """A stored regularizer is ``{"class": a known regularizer name, "config": {name: JSON
        scalar}}``: nothing else is built from it."""
        from nurinet.nn.regularizers import REGULARIZERS

        config = stored.get("config", {})
        if set(stored) - {"class", "config"} or not isinstance(stored.get("class"), str) \
                or not isinstance(config, dict) \
                or not all(v is None or isinstance(v, (bool, int, float, str)) for v in config.values()):
            raise _corrupt(self.path, f"an argument of {where} is not a stored regularizer "
                                      f"{{'class': name, 'config': {{...}}}}: {_short(stored)}")
        if REGULARIZERS.find(stored["class"]) is None:
            raise _corrupt(self.path, f"an argument of {where} names regularizer {_short(stored['class'])}, "
                                      f"which is not one of {REGULARIZERS.names()}")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _children(args: dict, path: str, where: str) -> Iterator[tuple[str, Any]]:
    """The submodules of a container, by the names the container gives them."""
    for key, value in args.items():
        if isinstance(value, dict) and "__layer__" in value:  # Model's network
            yield key, value["__layer__"]
        elif isinstance(value, dict) and "__dict__" in value:  # Sequential's and ModuleDict's
            yield from ((str(k), _layer_of(v, path, where)) for k, v in value["__dict__"].items())
        elif isinstance(value, list):  # ModuleList's
            yield from ((str(i), _layer_of(v, path, where)) for i, v in enumerate(value))


def _layer_of(value: Any, path: str, where: str) -> Any:
    if not isinstance(value, dict) or "__layer__" not in value:
        raise _corrupt(path, f"{where} holds {_short(value)} where a layer belongs")
    return value["__layer__"]


def _nested(args: dict) -> Iterator[tuple[str, Any]]:
    """The layers inside a layer's arguments (an activation layer, a stacked layer), by argument."""
    for key, value in args.items():
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, dict) and "__layer__" in item:
                yield key, item["__layer__"]
            elif isinstance(item, dict):
                stack.extend(item.get("__dict__", {}).values() if "__dict__" in item else
                             item.get("__tuple__", []))
            elif isinstance(item, list):
                stack.extend(item)


def _numbers(args: dict) -> Iterator[tuple[str, float]]:
    """The numbers in a layer's arguments, outside nested layers and arrays."""
    for key, value in args.items():
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                yield key, item
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict) and ("__tuple__" in item or "__dict__" in item):
                stack.extend(item.get("__tuple__") or list(item.get("__dict__", {}).values()))


# ----- building under a guard ------------------------------------------------------------------
# Where the ``size`` argument of numpy.random.Generator's methods sits.
_SIZE_POSITION = {"random": 0, "standard_normal": 0, "uniform": 2, "normal": 2, "integers": 2,
                  "standard_exponential": 0, "exponential": 1, "choice": 1, "permutation": 0,
                  "binomial": 2}


class _Budget:
    """What one guarded build may still draw, and the generator it draws from: a private one,
    so that a load neither moves the default generator nor races with other threads' draws
    (the initial values are overwritten by the file's weights anyway)."""

    def __init__(self, left: int, path: str) -> None:
        self.left, self.path = left, path
        self.rng = np.random.Generator(np.random.PCG64(0))

    def spend(self, elements: int, name: str) -> None:
        self.left -= elements
        if self.left < 0:
            raise _corrupt(self.path, f"building its layers drew more initial values ({name} of "
                                      f"{elements:,}) than its tensors justify")


class _GuardedGenerator:
    """Stands in for the default generator's NumPy generator while files' architectures are
    built: a draw of a thread that is building one comes from that build's private
    generator, counted against its budget and refused past it; every other draw goes
    straight to the real generator. A layer
    allocates its parameters with a lazy ``np.empty`` and then fills them from the
    generator, so refusing the draw refuses the cost."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.budgets: dict[int, _Budget] = {}  # by thread id, while that thread builds

    def __getattr__(self, name: str) -> Any:
        budget = self.budgets.get(threading.get_ident())
        if budget is None:
            return getattr(self.real, name)
        attr = getattr(budget.rng, name)
        position = _SIZE_POSITION.get(name)
        if position is None:
            return attr

        def draw(*args: Any, **kwargs: Any) -> Any:
            size = kwargs.get("size", args[position] if len(args) > position else None)
            budget.spend(_elements(size), name)
            return attr(*args, **kwargs)

        return draw


def _elements(size: Any) -> int:
    """The number of values a draw of ``size`` makes (0 where NumPy will refuse the size)."""
    if size is None:
        return 1
    with contextlib.suppress(TypeError):
        return max(operator.index(size), 0)
    try:
        return math.prod(max(operator.index(v), 0) for v in size)
    except TypeError:
        return len(size) if hasattr(size, "__len__") else 0


_guard_lock = threading.Lock()


@contextlib.contextmanager
def _draw_budget(budget: int, path: str) -> Iterator[None]:
    """Count this thread's draws from the default generator against ``budget``. One stand-in
    serves every thread that loads at the same time; the last one out puts the real
    generator back (unless ``manual_seed`` replaced it meanwhile)."""
    from nurinet.random import default_generator

    me = threading.get_ident()
    with _guard_lock:
        guard = default_generator.np
        if not isinstance(guard, _GuardedGenerator):
            guard = default_generator.np = _GuardedGenerator(guard)
        outer = guard.budgets.get(me)  # a load inside a load: restored afterwards
        guard.budgets[me] = _Budget(budget, path)
    try:
        yield
    finally:
        with _guard_lock:
            if outer is None:
                guard.budgets.pop(me, None)
            else:
                guard.budgets[me] = outer
            if not guard.budgets and default_generator.np is guard:
                default_generator.np = guard.real


_BUILD_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError,
                 MemoryError, RecursionError)


def build_guarded(architecture: dict[str, Any], path: str, elements: int | None) -> Any:
    """Build a checked architecture, refusing to draw more than the file justifies.

    Args:
        architecture: Checked by :func:`check_architecture`.
        path: The file, for messages.
        elements: The file's tensor elements (the draw budget is ``4 x`` that plus
            :data:`DRAW_SLACK`); ``None`` builds without a budget (an architecture that does
            not come from a file).

    Raises:
        CorruptFileError: the build failed or drew past its budget.
    """
    from nurinet.io.registry import module_from_config

    guard = contextlib.nullcontext() if elements is None else _draw_budget(4 * elements + DRAW_SLACK, path)
    try:
        with guard:
            return module_from_config(architecture)
    except CorruptFileError:
        raise
    except _BUILD_ERRORS as error:
        raise _corrupt(path, f"its layers cannot be built from their saved arguments: {error}") from error
