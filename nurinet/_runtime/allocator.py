"""Keep freed array memory in the process instead of handing it back to the operating system.

NumPy takes every array's memory from the C library's ``malloc``. glibc serves a large request
(from 128 KiB, a threshold it raises as it sees larger blocks freed) with a fresh ``mmap`` and
gives it back to the kernel on ``free``; the next array of that size is fresh memory again, which
the kernel maps and zeroes page by page on first touch. A training step allocates and frees the
same large activations and gradients every time, so it pays those page faults every step
(``docs/performance.md`` has the figures for the MNIST CNN).

:func:`keep_freed_memory` tells glibc (through ``mallopt``) to serve requests up to 32 MiB from its
heap and not to trim the heap's free top: freed blocks are then reused by the next step, with no
page faults. The cost is that the process's resident memory stays at its peak working set instead
of shrinking between steps, as with PyTorch's or CuPy's caching allocators on a GPU.

Importing nurinet applies it (:func:`apply_default`), so a user's own script gets the speed the
benchmarks measure without a call of its own. It changes the whole process's allocator, which is
the price: the process keeps its peak working set (activations and gradients of one step) instead
of handing it back between steps, as PyTorch's and CuPy's caching allocators do on a GPU. Set
``NURINET_KEEP_FREED_MEMORY=0`` before importing nurinet to keep glibc's defaults. On another C
library (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import platform
from typing import Any

from nurinet._runtime import settings

__all__ = ["apply_default", "is_applied", "keep_freed_memory"]

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_state: dict[str, Any] = {}


def _mallopt() -> Any:
    if "mallopt" not in _state:
        found = None
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            try:
                found = ctypes.CDLL(None).mallopt
                found.argtypes, found.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            except (OSError, AttributeError):
                found = None
        _state["mallopt"] = found
    return _state["mallopt"]


def keep_freed_memory() -> bool:
    """Keep freed blocks of up to 32 MiB for reuse, for the rest of the process.

    There is no undo: glibc cannot be put back into its default mode, whose threshold moves with
    the sizes it sees (setting it back to 128 KiB by hand made the CNN step slower than either, as
    every activation became an ``mmap``). The values are ``settings.KEPT_MMAP_THRESHOLD`` and
    ``settings.KEPT_TRIM_THRESHOLD``.

    Returns:
        Whether the setting was applied (False where the C library is not glibc).
    """
    mallopt = _mallopt()
    if mallopt is None:
        return False
    applied = (bool(mallopt(_M_MMAP_THRESHOLD, settings.KEPT_MMAP_THRESHOLD))
               and bool(mallopt(_M_TRIM_THRESHOLD, settings.KEPT_TRIM_THRESHOLD)))
    _state["applied"] = _state.get("applied", False) or applied
    return applied


def apply_default() -> bool:
    """What importing nurinet does: :func:`keep_freed_memory` unless ``NURINET_KEEP_FREED_MEMORY=0``.

    Returns:
        Whether freed memory is now kept for reuse.
    """
    return keep_freed_memory() if settings.KEEP_FREED_MEMORY else False


def is_applied() -> bool:
    """Whether :func:`keep_freed_memory` has changed this process's allocator."""
    return _state.get("applied", False)
