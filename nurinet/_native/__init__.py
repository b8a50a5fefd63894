"""Moved to :mod:`nurinet._runtime.native` (with ``kernels.c``); this package re-exports its public names."""

from nurinet._runtime.native import (
    available,
    cache_dir,
    for_arrays,
    library,
    reason,
    set_enabled,
    sgemm,
)

__all__ = ["available", "cache_dir", "for_arrays", "library", "reason", "set_enabled", "sgemm"]
