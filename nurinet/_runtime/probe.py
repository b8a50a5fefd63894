"""Counts of the fast paths that ran, for tests: off (and free) unless :func:`counting` is active.

The fast paths report themselves here only where counting costs nothing when it is off: the native
library is wrapped in a counting proxy, the BLAS helpers, the MKL products and the thread pool call
:func:`hit` after they have decided to run (one global read on an already large array).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Counted", "caller", "counting", "hit"]

counts: Counter[str] | None = None


def hit(name: str) -> None:
    """Count one run of the fast path ``name`` (nothing when not counting)."""
    if counts is not None:
        counts[name] += 1


@contextmanager
def counting() -> Iterator[Counter[str]]:
    """Count every fast path that runs inside the block; yields the counter (nestable: restores the outer one)."""
    global counts
    outer, counts = counts, Counter()
    try:
        yield counts
    finally:
        inner, counts = counts, outer
        if outer is not None:
            outer.update(inner)


def caller(skip_module: str) -> str:
    """``module:qualname`` of the innermost function on the stack outside ``skip_module`` (who asked)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == skip_module:
        frame = frame.f_back
    if frame is None:
        return "?"
    code = frame.f_code
    return f"{frame.f_globals.get('__name__')}:{getattr(code, 'co_qualname', code.co_name)}"


class Counted:
    """A library whose attribute reads (its functions, before each call) are counted as ``prefix + name``."""

    def __init__(self, lib: Any, prefix: str) -> None:
        self._lib, self._prefix = lib, prefix

    def __getattr__(self, name: str) -> Any:
        hit(self._prefix + name)
        return getattr(self._lib, name)
