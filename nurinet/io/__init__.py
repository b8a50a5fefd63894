"""Saving and loading: safetensors files, whole models, training checkpoints.

- :func:`save` / :func:`load`: a model's architecture (JSON in the file's
  metadata) and weights (safetensors) in one file; loading rebuilds the model.
- :func:`save_checkpoint` / :func:`load_checkpoint`: everything needed to resume
  training exactly (model, optimizer, scheduler, epoch, random generators).
- :func:`register_layer`: make a user layer known by name, so models using it load.

No pickle anywhere: arrays are stored as safetensors, everything else as JSON,
and every file carries a SHA-256 checksum that is verified on loading. Files are
untrusted: a damaged or crafted file raises :class:`CorruptFileError` (a
``ValueError``) naming the file and what is wrong, before any layer is built
(:mod:`nurinet.io.validation`).
"""

from nurinet.io.atomic import atomic_open, atomic_write_bytes
from nurinet.io.checkpoint import CheckpointCallback, load_checkpoint, save_checkpoint
from nurinet.io.registry import (
    get_layer_class,
    layer_config,
    module_from_config,
    register_layer,
)
from nurinet.io.safetensors import (
    CorruptFileError,
    SafetensorsError,
    load_file,
    save_file,
)
from nurinet.io.serialize import load, save

__all__ = [
    "CheckpointCallback",
    "CorruptFileError",
    "SafetensorsError",
    "atomic_open",
    "atomic_write_bytes",
    "get_layer_class",
    "layer_config",
    "load",
    "load_checkpoint",
    "load_file",
    "module_from_config",
    "register_layer",
    "save",
    "save_checkpoint",
    "save_file",
]
