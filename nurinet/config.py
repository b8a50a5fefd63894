"""Moved: training configurations live in :mod:`nurinet.training.config`.

This module re-exports them so that ``import nurinet.config`` and
``from nurinet import config`` keep working; new code imports
``nurinet.training.config``. It is not loaded by ``import nurinet``:
configurations belong to the training layer, which the core never imports.
"""

# OutputLayer was defined here before it moved to nurinet.nn.
from nurinet.nn.output import OutputLayer
from nurinet.training.config import *

__all__ = [  # nurinet.training.config.__all__, and OutputLayer
    "Built",
    "OutputLayer",
    "PreparedRun",
    "build",
    "build_network",
    "check_run_name",
    "check_settings",
    "confine_callback_paths",
    "load_config",
    "load_data",
    "model_to_config",
    "prepare_run",
    "run",
    "run_name",
    "save_config",
]
