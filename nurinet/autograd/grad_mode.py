"""Thread-local switch for recording the graph: ``no_grad`` and ``enable_grad``.

The flag is per thread (never a global), so a data-loading thread or a target
network evaluated under ``no_grad`` cannot switch recording off for the others.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])


class _GradState(threading.local):
    enabled = True


_state = _GradState()


def is_grad_enabled() -> bool:
    """True when new ops record the graph for back-propagation."""
    return _state.enabled


class set_grad_enabled:
    """Context manager (and decorator) that turns graph recording on or off."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self.prev = _state.enabled
        _state.enabled = self.mode

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        _state.enabled = self.prev

    def __call__(self, fn: _F) -> _F:
        mode = self.mode
        _state.enabled = self.prev  # Used as a decorator: undo the switch made in __init__.

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _GradSwitch:
    """Base of ``no_grad`` and ``enable_grad``: a context manager and a decorator."""

    mode = True

    def __enter__(self) -> None:
        self.prev = _state.enabled
        _state.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _state.enabled = self.prev

    def __call__(self, fn: _F) -> _F:
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradSwitch):
    """Ops inside do not record the graph (inference, target networks, updates)."""

    mode = False


class enable_grad(_GradSwitch):
    """Turn recording back on inside a ``no_grad`` block."""

    mode = True


class inference_mode(_GradSwitch):
    """Run without recording the graph, as ``torch.inference_mode``: here the same as ``no_grad``
    (nurinet has no separate inference tensors). ``inference_mode(False)`` records as usual."""

    def __init__(self, mode: bool = True) -> None:
        self.mode = not mode
