"""Training checkpoints: everything needed to resume a run bit for bit.

One safetensors file holds the model's weights, the optimizer's state, the
scheduler's state, the epoch, the states of the random generators and any
JSON-able extras. Arrays are tensors of the file (``model/...``, ``optimizer/...``);
the rest is JSON in the header's metadata, where arrays are referenced by
``{"__tensor__": name}``. Nothing is pickled, and a SHA-256 checksum of the
header and data is verified on loading, so a truncated or modified file is
rejected with an error naming it.

The callbacks that write checkpoints during ``Model.fit`` live with the training layer
(:mod:`nurinet.training.checkpoint`: ``CheckpointCallback`` and ``ModelCheckpoint``); they
never overwrite a good checkpoint with NaN or inf: see :func:`refuse_non_finite`.
``nurinet.io.checkpoint.CheckpointCallback`` is a deprecated alias of
:class:`nurinet.training.CheckpointCallback`, imported only when asked for (see
:func:`__getattr__`), so that ``io`` does not load the training package.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Tensor
from nurinet.io.registry import layer_config
from nurinet.io.safetensors import (
    CorruptFileError,
    SafetensorsError,
    load_file,
    read_checked_header,
    save_file,
    tensor_shapes,
)
from nurinet.io.serialize import build_quietly, load_exact
from nurinet.io.validation import check_architecture, parse_json
from nurinet.nn.module import Module
from nurinet.random import Generator, default_generator

FORMAT_VERSION = "1"
_META = "nurinet.checkpoint"
_RECORD_KEYS = {"epoch", "default_generator", "generators", "extra"}


class _MissingTensor(LookupError):
    """A record refers to a tensor the file does not hold (reported with the file's name)."""


# ----- nested state <-> JSON + tensors ----------------------------------------------------------
def _pack(value: Any, tensors: dict[str, np.ndarray], key: str) -> Any:
    """JSON for ``value``, moving every array into ``tensors`` under ``key``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Tensor):
        value = value.array
    if isinstance(value, (np.ndarray, np.generic)) or backend.is_cupy_array(value):
        tensors[key] = np.array(backend.to_numpy(value), copy=True)
        return {"__tensor__": key, "scalar": isinstance(value, np.generic)}
    if isinstance(value, tuple):
        return {"__tuple__": [_pack(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_pack(v, tensors, f"{key}.{i}") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _pack(v, tensors, f"{key}.{k}") for k, v in value.items()}
        return {"__items__": [[_pack(k, tensors, f"{key}.k{i}"), _pack(v, tensors, f"{key}.{i}")]
                              for i, (k, v) in enumerate(value.items())]}
    raise TypeError(f"cannot store {key} = {value!r} ({type(value).__name__}) in a checkpoint: "
                    "only arrays, numbers, strings, None, lists, tuples and dicts are stored")


def _unpack(value: Any, tensors: dict[str, np.ndarray]) -> Any:
    if isinstance(value, list):
        return [_unpack(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        array = tensors.get(value["__tensor__"]) if isinstance(value["__tensor__"], str) else None
        if array is None:
            raise _MissingTensor(value["__tensor__"])
        return array[()] if value.get("scalar") else array
    if "__tuple__" in value:
        return tuple(_unpack(v, tensors) for v in value["__tuple__"])
    if "__items__" in value:
        return {_hashable(_unpack(k, tensors)): _unpack(v, tensors) for k, v in value["__items__"]}
    return {k: _unpack(v, tensors) for k, v in value.items()}


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def _generators(generators: Mapping[str, Generator] | list[Generator] | Generator | None) -> dict:
    if generators is None:
        return {}
    if isinstance(generators, Generator):
        return {"0": generators}
    if isinstance(generators, Mapping):
        return dict(generators)
    return {str(i): g for i, g in enumerate(generators)}


def _layer_generators(model: Module) -> dict[str, Generator]:
    """The generators the layers hold (``Dropout(p, generator=g)``), by ``"path:attribute"``."""
    found: dict[str, Generator] = {}
    for path, module in model.named_modules():
        for attr, value in module.__dict__.items():
            if isinstance(value, Generator):
                found[f"{path}:{attr}"] = value
    return found


# ----- saving ------------------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, model: Module, optimizer: Any = None, *,
                    epoch: int | None = None, scheduler: Any = None,
                    generators: Mapping[str, Generator] | list[Generator] | Generator | None = None,
                    extra: Mapping[str, Any] | None = None) -> None:
    """Write a checkpoint to ``path`` atomically (a crash mid-save keeps the previous file).

    Args:
        path: Destination file (``*.safetensors`` by convention).
        model: The module being trained.
        optimizer: Its optimizer (anything with ``state_dict``/``load_state_dict``).
        epoch: The number of epochs completed.
        scheduler: A learning-rate scheduler or any object with ``state_dict()``.
        generators: The ``nurinet.Generator``s the run draws from besides the default one
            (e.g. ``fit``'s shuffling generator), by name or in a list. The default
            generator and the generators the layers hold (``Dropout(p, generator=g)``)
            are always saved.
        extra: JSON-able values (and arrays) to keep: history, best score, configuration.
    """
    if not isinstance(model, Module):
        raise TypeError(f"save_checkpoint expects a Module as model, got {type(model).__name__}")
    tensors: dict[str, np.ndarray] = {f"model/{k}": v for k, v in model.state_dict().items()}
    try:
        architecture = layer_config(model)
    except (ValueError, TypeError):  # an unregistered layer: the checkpoint still resumes a model
        architecture = None
    record = {
        "version": FORMAT_VERSION,
        "epoch": epoch,
        "architecture": architecture,
        "training": model.training,
        "optimizer": None if optimizer is None else _pack(optimizer.state_dict(), tensors, "optimizer"),
        "scheduler": None if scheduler is None else _pack(scheduler.state_dict(), tensors, "scheduler"),
        "default_generator": default_generator.get_state(),
        "generators": {name: g.get_state() for name, g in _generators(generators).items()},
        "layer_generators": {name: g.get_state() for name, g in _layer_generators(model).items()},
        "extra": _pack(dict(extra or {}), tensors, "extra"),
    }
    metadata = {"nurinet.format": "checkpoint", _META: json.dumps(record, separators=(",", ":"))}
    save_file(tensors, path, metadata)


# ----- loading ------------------------------------------------------------------------------------
def load_checkpoint(path: str | os.PathLike, model: Module | None = None, optimizer: Any = None, *,
                    scheduler: Any = None,
                    generators: Mapping[str, Generator] | list[Generator] | Generator | None = None,
                    restore_default_generator: bool = True) -> dict[str, Any]:
    """Restore a checkpoint written by :func:`save_checkpoint`, in place.

    Args:
        path: The checkpoint file.
        model: The module to load the weights into; ``None`` rebuilds it from the
            saved architecture (returned as ``"model"``).
        optimizer: Built over ``model.parameters()``; its state and hyperparameters are restored.
        scheduler: Its state is restored (the checkpoint must hold one).
        generators: The same generators, under the same names, as when saving; their
            states are restored.
        restore_default_generator: Also restore ``nurinet.random.default_generator``.

    Returns:
        ``{"epoch": ..., "extra": {...}, "model": model}``.

    Raises:
        CorruptFileError: the file is damaged, truncated, modified or crafted (its header, its
            record, or an architecture that declares more than the file holds), checked
            before any layer is built.
        SafetensorsError: the file is not a checkpoint.
        ValueError: a part asked for is not in the checkpoint or does not fit.
    """
    path = os.fspath(path)
    header, _ = read_checked_header(path)
    record = _read_record(header, path)
    if model is None and record.get("architecture") is not None:
        model_shapes = {k[len("model/"):]: v for k, v in tensor_shapes(header).items()
                        if k.startswith("model/")}
        check_architecture(record["architecture"], model_shapes, path)
    tensors, _ = load_file(path)
    try:
        model = _restore_model(path, record, tensors, model)
        _restore_state(path, "optimizer", optimizer, record, tensors)
        _restore_state(path, "scheduler", scheduler, record, tensors)
        _restore_generators(path, record, _generators(generators), model, restore_default_generator)
        extra = _unpack(record["extra"], tensors)
    except _MissingTensor as missing:
        raise CorruptFileError(f"{path!r} cannot be loaded: its checkpoint record refers to tensor "
                               f"{missing.args[0]!r}, which the file does not hold") from None
    return {"epoch": record["epoch"], "extra": extra, "model": model}


def _restore_generators(path: str, record: dict, generators: dict[str, Generator], model: Module,
                        restore_default: bool) -> None:
    saved = record["generators"] if isinstance(record["generators"], dict) else {}
    for name, generator in generators.items():
        if name not in saved:
            raise ValueError(f"checkpoint {path!r} has no generator named {name!r}; it saved "
                             f"{sorted(saved)}: pass the generators under the names used when saving")
        _set_state(generator, saved[name], path, f"generator {name!r}")
    saved_layers = record.get("layer_generators") or {}
    for name, generator in _layer_generators(model).items():
        if isinstance(saved_layers, dict) and name in saved_layers:
            _set_state(generator, saved_layers[name], path, f"generator {name!r}")
    if restore_default:
        _set_state(default_generator, record["default_generator"], path, "default generator")


def _set_state(generator: Generator, state: Any, path: str, what: str) -> None:
    try:
        generator.set_state(state)
    except (TypeError, ValueError, KeyError) as error:
        raise CorruptFileError(f"{path!r} cannot be loaded: the saved state of the {what} is not a "
                               f"generator state ({error})") from None


def _read_record(header: dict[str, Any], path: str) -> dict[str, Any]:
    """The checkpoint's JSON record, parsed with the file's limits and checked for its keys."""
    metadata = header.get("__metadata__") or {}
    if metadata.get("nurinet.format") != "checkpoint" or _META not in metadata:
        raise SafetensorsError(f"{path!r} is not a nurinet checkpoint (no '{_META}' metadata); "
                               "for a model saved with nurinet.save use nurinet.load")
    record = parse_json(metadata[_META], path, "checkpoint record")
    missing = [] if not isinstance(record, dict) else sorted(_RECORD_KEYS - set(record))
    if not isinstance(record, dict) or missing:
        raise CorruptFileError(f"{path!r} cannot be loaded: its checkpoint record is not a mapping "
                               f"with the keys {sorted(_RECORD_KEYS)} (missing {missing})")
    return record


def _restore_model(path: str, record: dict, tensors: dict, model: Module | None) -> Module:
    weights = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    if model is None:
        if record.get("architecture") is None:
            raise ValueError(f"checkpoint {path!r} holds no architecture (the model had an "
                             "unregistered layer): build the model and pass it as model=")
        model = build_quietly(record["architecture"], path, sum(w.size for w in weights.values()))
        model.train(record.get("training", True) is not False)
    load_exact(model, weights, path)
    return model


def _restore_state(path: str, part: str, target: Any, record: dict, tensors: dict) -> None:
    if target is None:
        return
    if record.get(part) is None:
        raise ValueError(f"checkpoint {path!r} holds no {part} state, but a {part} was passed to "
                         "load_checkpoint")
    target.load_state_dict(_unpack(record[part], tensors))


# ----- refusing non-finite state ------------------------------------------------------------------
def all_finite(array: Any) -> bool:
    """True when a NumPy or CuPy array holds no NaN or inf (integer arrays always)."""
    if getattr(array, "dtype", None) is None or array.dtype.kind not in "fc":
        return True
    xp = backend.get_array_module(array)
    # One pass and no temporary: NaN and inf survive a sum. A sum can overflow to inf on finite
    # values, so a non-finite sum is settled by the exact elementwise test.
    with np.errstate(over="ignore", invalid="ignore"):
        total = array.sum()
    return bool(xp.isfinite(total)) or bool(xp.isfinite(array).all())


def first_non_finite(model: Module, optimizer: Any = None) -> str | None:
    """Where ``model``'s parameters, or ``optimizer``'s state, first hold NaN or inf.

    Buffers are not checked: a buffer may hold inf on purpose (an attention mask).

    Returns:
        ``"parameter '0.weight'"``, ``"optimizer state 'exp_avg' of parameter '0.weight'"``,
        or None when everything is finite.
    """
    names = {}
    for name, param in model.named_parameters():
        if not all_finite(param.array):
            return f"parameter {name!r}"
        names[id(param)] = name
    for (group, index), values in getattr(optimizer, "state", {}).items():
        for key, value in values.items():
            if not all_finite(value.array if isinstance(value, Tensor) else value):
                param = optimizer.param_groups[group]["params"][index]
                owner = names.get(id(param), f"{index} of group {group}")
                return f"optimizer state {key!r} of parameter {owner!r}"
    return None


def refuse_non_finite(owner: str, path: str, model: Module, optimizer: Any = None) -> bool:
    """Warn and return True when the model (or optimizer) state is not finite, so that a
    checkpoint callback keeps its last good file instead of overwriting it with NaN/inf."""
    culprit = first_non_finite(model, optimizer)
    if culprit is None:
        return False
    warnings.warn(f"{owner}: not writing {path!r}: {culprit} holds NaN or inf (training diverged); "
                  "the last checkpoint written is kept. Pass save_non_finite=True to write such "
                  "a checkpoint anyway.", RuntimeWarning, stacklevel=3)
    return True


def __getattr__(name: str) -> Any:
    """The deprecated alias ``CheckpointCallback``, resolved when first asked for.

    ``CheckpointCallback`` is a training callback and moved to
    :mod:`nurinet.training.checkpoint`; importing it here would make ``io`` (and
    ``import nurinet``) load the whole training package.
    """
    if name == "CheckpointCallback":
        return deprecated_checkpoint_callback(__name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def deprecated_checkpoint_callback(where: str) -> type:
    """:class:`nurinet.training.CheckpointCallback`, with a ``DeprecationWarning`` saying
    that ``where.CheckpointCallback`` moved."""
    warnings.warn(f"{where}.CheckpointCallback moved to nurinet.training.CheckpointCallback; "
                  "import it from there", DeprecationWarning, stacklevel=3)
    # By name: io sits below the training layer and imports nothing of it at import time.
    return importlib.import_module("nurinet.training.checkpoint").CheckpointCallback
