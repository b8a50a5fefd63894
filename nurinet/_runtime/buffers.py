"""The one pool of spare large buffers, with explicit ownership.

A fresh multi-megabyte array is fresh memory that the kernel maps and zeroes page by page on first
touch (unless glibc keeps freed blocks: :mod:`.allocator`), so the convolutions and the fused LSTM
reuse their big work arrays from one training step to the next.

The rule is ownership, stated by the caller, never guessed: :func:`take` hands out an array that the
caller owns; the owner calls :func:`give_back` only once it holds the last reference (a work array
that never left the op, or one a graph node kept and releases when the graph is freed). An array
that escapes to user code (an op's output) is never given back. Nothing here counts references.

At most :data:`SPARES_PER_KEY` arrays are kept per (array type, shape, dtype), for at most
:data:`KEYS` shapes (the oldest shape is forgotten first: a model whose input size changes), and
only arrays of at least ``settings.BUFFER_MIN_BYTES`` bytes.
"""

from __future__ import annotations

import threading
from typing import Any

from nurinet._runtime import settings

SPARES_PER_KEY = 2
KEYS = 16

_spare: dict[tuple, list[Any]] = {}
_lock = threading.Lock()  # the threaded convolution takes and gives back from several threads


def take(xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """An uninitialized C-contiguous array of ``shape``, owned by the caller: a spare one when there is one.

    Args:
        xp: The array module (NumPy or CuPy).
        shape: The array's shape.
        dtype: The array's dtype.

    Returns:
        An array whose contents are arbitrary.
    """
    key = (xp.ndarray, tuple(shape), xp.dtype(dtype))
    with _lock:
        spare = _spare.get(key)
        if spare:
            return spare.pop()
    return xp.empty(shape, dtype=dtype)


def give_back(array: Any) -> None:
    """Return an array for :func:`take`; the caller declares that it holds the last reference.

    Small arrays, views and non-contiguous arrays are dropped instead (``None`` is accepted).
    """
    if array is None or array.nbytes < settings.BUFFER_MIN_BYTES or array.base is not None:
        return
    if not array.flags.c_contiguous:
        return
    key = (type(array), array.shape, array.dtype)
    with _lock:
        spare = _spare.setdefault(key, [])
        if len(spare) < SPARES_PER_KEY:
            spare.append(array)
        while len(_spare) > KEYS:
            del _spare[next(iter(_spare))]


def clear() -> None:
    """Drop every spare array (tests, or a program that wants its memory back)."""
    with _lock:
        _spare.clear()
