"""The autograd engine's compiled twin: ``Function.__call__`` and the backward's node loop in C.

A small network's step is mostly the engine's own bookkeeping: calling each op, wrapping its output,
linking it into the graph, then, backwards, popping nodes, routing their gradients. In Python that is
a few microseconds an op. ``nurinet/_runtime/native/engine.c`` does the same steps through Python's
C API; it is built as an extension module on first use (:mod:`nurinet._runtime.extension`).

The three parts (``Function.__call__``, the node loop of a plain backward, its leaves' gradients) follow
the Python code line for line and hand every uncommon case back to it (inputs that
are not Tensors, several outputs, hooks, retained or captured gradients, version mismatches, gradients
of the wrong shape), so switching between them changes speed only; the engine's tests run both
(``tests/conftest.py``, ``engine_loop``).

They run wherever the extension builds: a C compiler and the interpreter's headers are needed; without
them, with ``NURINET_NATIVE=0``, or after :func:`use_compiled` (False), the Python code runs. While native
code is switched off at run time (``nurinet._runtime.native.set_enabled(False)``, ``reference_only()``), the
Python code runs too: the engine asks :func:`engine_module` at every backward, and the C ``__call__``
reads the switch at every call.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from nurinet._runtime import extension, settings
from nurinet.autograd.tensor import Tensor

__all__ = ["engine_module", "on_switch", "reason", "use_compiled"]

# "module": False until looked for, then the configured extension or None (it cannot be built here).
_state: dict[str, Any] = {"enabled": True, "module": False}
_listeners: list[Callable[[], None]] = []


def use_compiled(enabled: bool) -> bool:
    """Run the engine's compiled parts where they build (True, the default) or its Python code (False).

    Returns:
        The previous setting.
    """
    old, _state["enabled"] = _state["enabled"], bool(enabled)
    _notify()
    return old


def on_switch(listener: Callable[[], None]) -> None:
    """Call ``listener()`` after :func:`use_compiled` and when the extension is first loaded (so that
    ``Function`` re-chooses its ``__call__``)."""
    _listeners.append(listener)


def reason() -> str:
    """Why the compiled parts do not run (empty when they do)."""
    if not _state["enabled"]:
        return "switched off by use_compiled(False)"
    if engine_module() is None:
        return _state.get("reason") or extension.reason("engine") or "native code is switched off"
    return ""


def engine_module(active_only: bool = True) -> ModuleType | None:
    """The configured extension, or None where the Python code must run.

    Args:
        active_only: Also None while native code is switched off (``settings.NATIVE``). ``Function``
            asks with False: its C ``__call__`` reads that switch at every call itself.
    """
    if not _state["enabled"]:
        return None
    module = _state["module"]
    if module is False:
        if not settings.NATIVE:
            return None  # nothing may be built now; look again when native code is back
        module = _load()
    return None if active_only and not settings.NATIVE else module


def _load() -> ModuleType | None:
    """Build, import and configure the extension once; tell the listeners when it is there."""
    # Here, not at the top: checks imports function, which imports this module.
    from nurinet.autograd.checks import check_count, check_gradient_array
    from nurinet.autograd.versions import CLOCK, check_versions

    module = extension.load("engine")
    if module is not None:
        try:
            module.configure(Tensor, np.ndarray, CLOCK, check_versions, check_count, check_gradient_array,
                             heapq.heappush, heapq.heappop)
        except (TypeError, RuntimeError, AttributeError) as error:  # a Tensor the C code does not know
            _state["reason"] = f"the engine's extension does not fit this Tensor class: {error}"
            module = None
    _state["module"] = module
    if module is not None:
        _notify()
    return module


def _notify() -> None:
    for listener in _listeners:
        listener()
