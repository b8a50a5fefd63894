"""Moved: training configurations live in :mod:`nurinet.training.config`.

This module re-exports them so that ``import nurinet.config`` and
``from nurinet import config`` keep working; new code imports
``nurinet.training.config``. It is not loaded by ``import nurinet``:
configurations belong to the training layer, which the core never imports.
"""

# OutputLayer was defined here before it moved to nurinet.nn.
from nurinet.nn.output import OutputLayer
from nurinet.training.config import *
from nurinet.training.config import __all__ as _MOVED

__all__ = [*_MOVED, "OutputLayer"]  # noqa: PLE0604 (the moved module's names, kept in step by construction)
