"""``nurinet.save(model, path)`` / ``nurinet.load(path)``: a whole model in one safetensors file.

The weights are the file's tensors (the model's ``state_dict`` keys); the
architecture is JSON in the header's metadata (``"nurinet.architecture"``, see
:mod:`nurinet.io.registry`), so one file rebuilds the model without the code
that created it, only the layer classes. The file is readable by any
safetensors reader and carries a SHA-256 checksum verified on loading.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from nurinet.io.registry import layer_config
from nurinet.io.safetensors import (
    SafetensorsError,
    load_file,
    read_checked_header,
    save_file,
    tensor_shapes,
)
from nurinet.io.validation import build_guarded, check_architecture, parse_json
from nurinet.nn.module import Module
from nurinet.random import default_generator

FORMAT_VERSION = "1"


def save(model: Module, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """Save ``model``'s architecture and weights to ``path`` (atomically: an interrupted save
    leaves the previous file intact).

    Args:
        model: Any module whose layers are built-in or registered with ``register_layer``.
        path: Destination, conventionally ``*.safetensors``.
        metadata: Extra ``{str: str}`` stored in the header (keys must not start with ``nurinet.``).

    Raises:
        ValueError: a layer cannot be described (not registered, or an argument not kept).
    """
    if not isinstance(model, Module):
        raise TypeError(f"nurinet.save expects a Module, got {type(model).__name__}")
    extra = dict(metadata or {})
    reserved = [k for k in extra if str(k).startswith("nurinet.")]
    if reserved:
        raise ValueError(f"metadata keys starting with 'nurinet.' are reserved: {reserved}")
    extra.update({
        "nurinet.format": "model",
        "nurinet.version": FORMAT_VERSION,
        "nurinet.architecture": json.dumps(layer_config(model), separators=(",", ":")),
        "nurinet.training": json.dumps(model.training),
    })
    save_file(model.state_dict(), path, extra)


def load(path: str | os.PathLike, model: Module | None = None) -> Module:
    """Load a model saved by :func:`save`.

    The file is treated as untrusted: its header, and the architecture against the tensors
    it holds, are checked before any layer is built (see :mod:`nurinet.io.validation`), so
    a crafted file is refused quickly, without allocating what it declares.

    Args:
        path: The file.
        model: Load the weights into this module instead of rebuilding one from the
            saved architecture (its structure must match).

    Returns:
        The model, in the train/eval mode it was saved in, with the saved dtypes.

    Raises:
        CorruptFileError: the file is damaged, truncated, tampered with or crafted (a
            :class:`SafetensorsError`).
        SafetensorsError: the file is not a nurinet model.
        ValueError: the architecture names an unknown layer (register it first).
    """
    path = os.fspath(path)
    architecture = None
    if model is None:
        header, _ = read_checked_header(path)
        architecture = read_architecture(header, path)
        check_architecture(architecture, tensor_shapes(header), path)
    tensors, metadata = load_file(path)
    if model is None:
        model = build_quietly(architecture, path, sum(t.size for t in tensors.values()))
    load_exact(model, tensors, path)
    if "nurinet.training" in metadata:
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
        if tensor.data.dtype != saved.dtype and tensor.device == "cpu":
            tensor.data = saved.copy()
