"""``nurinet.save(obj, path)`` / ``nurinet.load(path)``: a model, a state_dict or a checkpoint dict
in one safetensors file.

- A module: the weights are the file's tensors (the model's ``state_dict`` keys); the
  architecture is JSON in the header's metadata (``"nurinet.architecture"``, see
  :mod:`nurinet.io.registry`), so one file rebuilds the model without the code that
  created it, only the layer classes. ``load`` returns the module.
- A state_dict (``{name: Tensor or array}``, PyTorch's ``torch.save(model.state_dict())``):
  the tensors alone. ``load`` returns ``{name: Tensor}``, so
  ``model.load_state_dict(nurinet.load(path))`` works; so does any plain safetensors file.
- Anything else that nests dicts, lists and tuples of tensors, NumPy arrays and Python
  scalars, such as PyTorch's general checkpoint ``{"epoch": 3, "model_state_dict": ...,
  "optimizer_state_dict": ..., "loss": 0.25}``: the arrays are the file's tensors, named
  by key path, and the rest is JSON (``"nurinet.structure"``, see
  :mod:`nurinet.io.structure`). ``load`` returns the same structure, each leaf of the type
  it was saved as (a Tensor as a Tensor, a NumPy array as a NumPy array), as
  ``torch.load`` does.
- A training checkpoint (:func:`nurinet.io.save_checkpoint`, ``ModelCheckpoint``,
  ``Model.save``): ``load`` returns its model; the rest is read by ``load_checkpoint``.

The files are readable by any safetensors reader and carry a SHA-256 checksum verified on
loading. Nothing is pickled, and a file never makes nurinet import code of its choosing: a
user's own class is built only when the user allows it (``classes=``, ``allowed_modules=``,
or ``register_layer``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Tensor
from nurinet.io import structure
from nurinet.io.registry import allowing, layer_config
from nurinet.io.safetensors import (
    CorruptFileError,
    SafetensorsError,
    load_file,
    read_checked_header,
    save_file,
    storable_dtype,
    tensor_shapes,
)
from nurinet.io.validation import build_guarded, check_architecture, parse_json
from nurinet.nn.module import Module
from nurinet.random import default_generator

FORMAT_VERSION = "1"
STRUCTURE_KEY = "nurinet.structure"


def save(obj: Any, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Save a module (architecture and weights), a state_dict (weights alone), or a nested
    structure (PyTorch's checkpoint dict) to ``path``, atomically: an interrupted save leaves
    the previous file intact.

    Args:
        obj: A module whose layers are nurinet's, registered with ``register_layer``, or
            user classes defined at module level that keep their constructor arguments; a
            state_dict, ``{name: Tensor or array}`` (``model.state_dict()``); or any nest of
            dicts, lists and tuples of tensors, NumPy arrays, None, bool, int, float and str,
            such as ``{"epoch": 3, "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(), "loss": 0.25}`` (see
            :mod:`nurinet.io.structure`).
        path: Destination, conventionally ``*.safetensors``.
        metadata: Extra ``{str: str}`` stored in the header (keys must not start with ``nurinet.``).

    Raises:
        TypeError: something in ``obj`` cannot be stored (an arbitrary object, a function, a
            set, a dict key that is neither str nor int); the message names its key path
            (``obj['extra']['callback']``) and type. Nothing is written.
        ValueError: a layer cannot be described (a class defined inside a function, or an
            argument not kept), ``obj`` contains itself or is nested too deep, or a metadata
            key is reserved.
    """
    extra = _user_metadata(metadata)
    if isinstance(obj, Module):
        extra.update({
            "nurinet.format": "model",
            "nurinet.version": FORMAT_VERSION,
            "nurinet.architecture": json.dumps(layer_config(obj), separators=(",", ":")),
            "nurinet.training": json.dumps(obj.training),
        })
        save_file(obj.state_dict(), path, extra)
    elif _is_state_dict(obj):
        extra.update({"nurinet.format": "state_dict", "nurinet.version": FORMAT_VERSION})
        save_file(dict(obj), path, extra)
    else:
        description, tensors = structure.encode(obj)
        extra.update({"nurinet.format": "structure", "nurinet.version": FORMAT_VERSION,
                      STRUCTURE_KEY: json.dumps(description, separators=(",", ":"))})
        save_file(tensors, path, extra)


def _user_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    extra = dict(metadata or {})
    reserved = [k for k in extra if str(k).startswith("nurinet.")]
    if reserved:
        raise ValueError(f"metadata keys starting with 'nurinet.' are reserved: {reserved}")
    return extra


def _is_state_dict(obj: Any) -> bool:
    """``{str: array}``: saved as plain named tensors, as before nested structures were stored
    (any safetensors reader reads such a file by the same names)."""
    return isinstance(obj, Mapping) and all(
        isinstance(key, str) and _is_array(value) for key, value in obj.items())


def _is_array(value: Any) -> bool:
    if isinstance(value, (Tensor, np.ndarray, np.generic)) or backend.is_cupy_array(value):
        data = value.array if isinstance(value, Tensor) else value
        return storable_dtype(data.dtype)  # otherwise the structure's error names the entry
    return False


def load(path: str | os.PathLike, model: Module | None = None, *,
         classes: Iterable[type] | None = None,
         allowed_modules: Iterable[str] | None = None,
         map_location: str | None = None,
         weights_only: bool | None = None) -> Any:
    """Load what :func:`save` (or a checkpoint writer) wrote to ``path``.

    The file is treated as untrusted: its header, and the architecture against the tensors
    it holds, are checked before any layer is built (see :mod:`nurinet.io.validation`), so
    a crafted file is refused quickly, without allocating what it declares.

    Args:
        path: The file.
        model: Load the weights into this module instead of rebuilding one from the
            saved architecture (its structure must match); it is returned.
        classes: Your own ``Module`` classes the file may name (``[MyNet]``); saved by
            module and name, they are built only when allowed here, registered with
            ``register_layer``, or their package is in ``allowed_modules``.
        allowed_modules: Packages (``["mypackage"]``) the file's classes may be imported from.
        map_location: A device (``"cpu"``, ``"cuda"``) to put the loaded module or Tensors
            on (PyTorch's argument; a device name only). NumPy arrays stay NumPy arrays.
        weights_only: Accepted for PyTorch's ``torch.load(path, weights_only=True)``; every
            load is as safe, since nothing is unpickled.

    Returns:
        For a module file, the module, in the train/eval mode it was saved in, with the
        saved dtypes; for a checkpoint, its model; for a state_dict (or any plain
        safetensors file), ``{name: Tensor}``; with ``model=``, that model. For a saved
        structure (a checkpoint dict), the same structure: dicts, lists and tuples as saved,
        Tensors (and Parameters) as Tensors, NumPy arrays and scalars as NumPy arrays and
        scalars, Python scalars as themselves.

    Raises:
        CorruptFileError: the file is damaged, truncated, tampered with or crafted, or names
            a class outside nurinet that the user did not allow (a :class:`SafetensorsError`).
        SafetensorsError: the file is not a safetensors file.
        ValueError: the architecture names an unknown layer (register it first), the
            weights do not fit ``model``, or ``model=`` was given for a saved structure.
    """
    del weights_only  # nothing is ever unpickled: every load is weights-only-safe
    if map_location is not None and not isinstance(map_location, str):
        raise TypeError(f"nurinet.load: map_location takes a device name such as 'cpu', got "
                        f"{type(map_location).__name__}")
    path = os.fspath(path)
    header, _ = read_checked_header(path)
    kind = (header.get("__metadata__") or {}).get("nurinet.format")
    with allowing(classes, allowed_modules):
        if kind == "checkpoint":
            from nurinet.io.checkpoint import load_checkpoint  # it imports this module

            loaded = load_checkpoint(path, model, restore_default_generator=False)["model"]
        elif kind == "structure":
            loaded = _load_structure(path, model)
        elif kind == "model" or model is not None:
            loaded = _load_module(path, header, model)
        else:
            loaded = {name: Tensor(array) for name, array in load_file(path)[0].items()}
    return loaded if map_location is None else _on_device(loaded, map_location)


def _on_device(loaded: Any, device: str) -> Any:
    if isinstance(loaded, Module):
        return loaded.to(device)
    return structure.map_tensors(loaded, lambda tensor: tensor.to(device))


def _load_structure(path: str, model: Module | None) -> Any:
    """A saved structure (a checkpoint dict), rebuilt from the file's tensors and JSON."""
    if model is not None:
        raise ValueError(f"{path!r} holds a saved structure (such as a checkpoint dict), not one "
                         "model's weights: load it without model=, then call "
                         "model.load_state_dict(loaded[...]) with the entry that holds them")
    tensors, metadata = load_file(path)
    if STRUCTURE_KEY not in metadata:
        raise CorruptFileError(f"{path!r} cannot be loaded: it is marked as a saved structure but "
                               f"has no {STRUCTURE_KEY!r} metadata")
    description = parse_json(metadata[STRUCTURE_KEY], path, "saved structure")
    return structure.decode(description, tensors, path)


def _load_module(path: str, header: dict[str, Any], model: Module | None) -> Module:
    """A module file's model (rebuilt when ``model`` is None), weights loaded."""
    architecture = None
    if model is None:
        architecture = read_architecture(header, path)
        check_architecture(architecture, tensor_shapes(header), path)
    tensors, metadata = load_file(path)
    if model is None:
        model = build_quietly(architecture, path, sum(t.size for t in tensors.values()))
    load_exact(model, tensors, path)
    if "nurinet.training" in metadata and metadata.get("nurinet.format") == "model":
        model.train(parse_json(metadata["nurinet.training"], path, "train/eval mode") is True)
    return model


def read_architecture(header: dict[str, Any], path: str) -> Any:
    """The parsed ``nurinet.architecture`` metadata of a checked header."""
    metadata = header.get("__metadata__") or {}
    if metadata.get("nurinet.format") != "model" or "nurinet.architecture" not in metadata:
        raise SafetensorsError(f"{path!r} holds no nurinet architecture (it is not a file written "
                               "by nurinet.save); pass model= to load its weights into a model")
    return parse_json(metadata["nurinet.architecture"], path, "architecture")


def build_quietly(architecture: dict[str, Any], path: str = "<architecture>",
                  elements: int | None = None) -> Module:
    """Build a module without moving the default random generator (its fresh initial
    weights are overwritten anyway, and a load must not change later random draws).

    With ``elements`` (the file's tensor elements), the build draws from a private
    generator, at most what they justify (:func:`nurinet.io.validation.build_guarded`);
    otherwise the default generator's state is put back afterwards.
    """
    if elements is not None:
        return build_guarded(architecture, path, elements)
    state = default_generator.get_state()
    try:
        return build_guarded(architecture, path, None)
    finally:
        default_generator.set_state(state)


def load_exact(model: Module, tensors: dict[str, np.ndarray], path: str) -> None:
    """``load_state_dict`` (strict), then keep the saved dtypes exactly."""
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        raise ValueError(f"the weights in {path!r} do not fit the model: {error}") from error
    for key, tensor in model._state_tensors().items():
        saved = tensors[key]
        if tensor.array.dtype != saved.dtype and tensor.device == "cpu":
            tensor.array = saved.copy()
