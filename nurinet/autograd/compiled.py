"""The autograd engine's compiled twin: ``Function.__call__`` and the backward's node loop in C.

A small network's step is mostly the engine's own bookkeeping: calling each op, wrapping its output,
linking it into the graph, then, backwards, popping nodes, routing their gradients. In Python that is
a few microseconds an op. ``nurinet/_runtime/native/engine.c`` does the same steps through Python's
C API; it is built as an extension module on first use (:mod:`nurinet._runtime.extension`).

Both parts follow the Python code line for line and hand every uncommon case back to it (inputs that
are not Tensors, several outputs, hooks, retained or captured gradients, version mismatches, gradients
of the wrong shape), so switching between them changes speed only; the engine's tests run both
(``tests/conftest.py``, ``engine_loop``).

They run wherever the extension builds: a C compiler and the interpreter's headers are needed; without
them, with ``NURINET_NATIVE=0``, or after :func:`use_compiled` (False), the Python code runs. While the
native code is switched off at run time (``nurinet._runtime.native.set_enabled(False)``), the Python
code runs too.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from nurinet._runtime import extension, settings
from nurinet.autograd.tensor import Tensor

__all__ = ["engine_module", "on_switch", "use_compiled"]

# "module": False until looked for, then the configured extension or None (it cannot be built here).
_state: dict[str, Any] = {"enabled": True, "module": False}
_listeners: list[Callable[[], None]] = []


def use_compiled(enabled: bool) -> bool:
    """Run the engine's compiled parts where they build (True, the default) or its Python code (False).

    Returns:
        The previous setting.
    """
    old, _state["enabled"] = _state["enabled"], bool(enabled)
    for listener in _listeners:
        listener()
    return old


def on_switch(listener: Callable[[], None]) -> None:
    """Call ``listener()`` whenever :func:`use_compiled` is called (Function re-chooses its ``__call__``)."""
    _listeners.append(listener)


def engine_module() -> ModuleType | None:
    """The configured extension, or None where the Python code must run (switched off, or not built)."""
    if not (_state["enabled"] and settings.NATIVE):
        return None
    module = _state["module"]
    if module is False:
        # Here, not at the top: checks imports function, which imports this module.
        from nurinet.autograd.checks import check_count, check_gradient_array
        from nurinet.autograd.versions import CLOCK, check_versions

        module = extension.load("engine")
        if module is not None:
            module.configure(Tensor, np.ndarray, CLOCK, check_versions, check_count, check_gradient_array,
                             heapq.heappush, heapq.heappop)
        _state["module"] = module
    return module


def enabled() -> bool:
    """Whether :func:`use_compiled` allows the compiled parts (whether or not they build here)."""
    return _state["enabled"]
