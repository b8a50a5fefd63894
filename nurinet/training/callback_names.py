"""Callbacks by name, for configurations (``callbacks: [{type: EarlyStopping, patience: 3}]``).

The table holds every Callback class that ``nurinet.training`` exports, by class name. A
trailing ``"Callback"`` may be left off, so :class:`~nurinet.training.CheckpointCallback` is
also ``"checkpoint"``. Each name means one class, and both checkpoint callbacks live in
:mod:`nurinet.training.checkpoint`: ``"ModelCheckpoint"`` is Keras's
:class:`~nurinet.training.ModelCheckpoint` (weights at epoch ends, ``filepath``), and
``"checkpoint"`` / ``"CheckpointCallback"`` the full training checkpoint (``path``: model,
updater, scheduler and random states, for resuming).
"""

from __future__ import annotations

import importlib
from typing import Any

from nurinet.names import NameTable
from nurinet.training.callbacks import Callback

CALLBACKS = NameTable("callback type", suffixes=("callback",))


def _is_callback_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, Callback) and obj is not Callback


def _fill_callbacks(table: NameTable) -> None:
    # By name, at the first lookup: nurinet.training's __init__ imports this module.
    table.add_public(importlib.import_module("nurinet.training"), _is_callback_class)


CALLBACKS.add_loader(_fill_callbacks)


def get_callback(name: str) -> type[Callback]:
    """The callback class called ``name`` (case, ``_``, ``-`` and spaces ignored).

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: no callback has that name (the message lists the known names).
    """
    return CALLBACKS.get(name)


def callback_names() -> list[str]:
    """The names :func:`get_callback` knows (normalized: lowercase letters and digits)."""
    return CALLBACKS.names()
