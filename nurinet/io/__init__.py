"""Saving and loading: safetensors files, whole models, training checkpoints.

- :func:`save` / :func:`load`: a model's architecture (JSON in the file's
  metadata) and weights (safetensors) in one file, a state_dict alone, or PyTorch's
  general checkpoint dict (any nest of dicts, lists and tuples of tensors, arrays and
  Python scalars: :mod:`nurinet.io.structure`); loading returns what was saved (the
  model, ``{name: Tensor}``, the same nested structure; a checkpoint's model).
  A user's own class is built only when allowed (``classes=``, ``allowed_modules=``,
  :func:`allowing`, or :func:`register_layer`).
- :func:`save_checkpoint` / :func:`load_checkpoint`: everything needed to resume
  training exactly (model, optimizer, scheduler, epoch, random generators).
- :func:`register_layer`: make a user layer known by name, so models using it load.

No pickle anywhere: arrays are stored as safetensors, everything else as JSON,
and every file carries a SHA-256 checksum that is verified on loading. Files are
untrusted: a damaged or crafted file raises :class:`CorruptFileError` (a
``ValueError``) naming the file and what is wrong, before any layer is built
(:mod:`nurinet.io.validation`).

``io`` sits below the application layer: it imports nothing of ``nurinet.training``,
``nurinet.models`` or the configurations. A saved layer records its defining module,
which loading imports by name, restricted to nurinet's own modules
(:mod:`nurinet.io.registry`). The checkpoint callbacks of ``Model.fit`` are in
:mod:`nurinet.training.checkpoint`; ``nurinet.io.CheckpointCallback`` is a deprecated
alias of :class:`nurinet.training.CheckpointCallback`, imported only when asked for.
"""

from typing import Any

from nurinet.io.atomic import atomic_open, atomic_write_bytes
from nurinet.io.checkpoint import (
    deprecated_checkpoint_callback,
    load_checkpoint,
    save_checkpoint,
)
from nurinet.io.registry import (
    allowing,
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
    "CorruptFileError",
    "SafetensorsError",
    "allowing",
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


def __getattr__(name: str) -> Any:
    """The deprecated alias ``CheckpointCallback`` (moved to ``nurinet.training``), imported
    only when asked for, so that ``import nurinet.io`` does not load the training package."""
    if name == "CheckpointCallback":
        return deprecated_checkpoint_callback(__name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
