"""Version counters: catch a tensor changed in place between an op's forward and its backward.

Every tensor has a version, ``tensor._version``, which starts at 0 and which
every in-place route of nurinet's API raises by one (:func:`increment_version`):
``tensor[...] = value``, an optimizer's ``step()``, the ``nn.init`` functions and
``Module.load_state_dict``. Before an op's backward runs, the engine checks
that none of its inputs and outputs has changed since the op ran, and raises
PyTorch's error (naming the op, the input or output, and both versions) instead
of computing a gradient from the changed values.

How, cheaply: a global clock (:data:`CLOCK`) ticks at every in-place change; an op
notes the clock when it runs (``Function.recorded_at``); a changed tensor keeps
the ticks of its recent changes (``_bump_ticks``). If the clock has not moved
since an op ran (the common case: a training step's graph is built and
back-propagated between two optimizer steps), nothing can have changed and the
check is one comparison. Otherwise each input is looked at: a change after the
op's tick is a change the op did not see. Recording costs the op one attribute
read and one write, whatever its number of inputs; the bookkeeping of versions
happens on the rare in-place changes instead.

The check is conservative: every input and output counts, including those an
op's backward does not read (``add``), where PyTorch checks only the tensors an
op saved. See docs/autograd.md, section 13.

Writing to the raw array (``tensor.array[...] = v``, ``tensor.array -= v``,
``tensor.array = array``) or through ``tensor.data`` is not tracked, as in
PyTorch, where ``.data`` is the escape hatch from autograd.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable
from typing import Any

from nurinet.autograd.tensor import Tensor

HINT = (
    "Hint: the tensor was changed in place (x[...] = v, optimizer.step(), an nn.init function, "
    "load_state_dict) after the forward pass that used it and before this backward; call backward "
    "(or nurinet.grad) before changing it, or change a copy."
)

# A tensor remembers the ticks of at most this many recent changes: an op older than all of them gets
# "expected version M or lower" in its message instead of the exact M.
_TICKS_KEPT = 64


class _Clock:
    """Moves at every in-place change anywhere, so the engine can skip looking at the inputs."""

    __slots__ = ("ticks",)

    def __init__(self) -> None:
        self.ticks = 0


CLOCK = _Clock()
# Each tick stores a value never stored before, so even racing threads cannot set ``ticks`` back to a
# value an op has already noted (``ticks += 1`` from two threads could).
_FRESH_TICKS = itertools.count(1)


def tick() -> int:
    """Move the clock (before the changes it stands for are remembered); returns the new tick."""
    now = CLOCK.ticks = next(_FRESH_TICKS)
    return now


def remember_change(tensor: Tensor, now: int) -> None:
    """Note that ``tensor`` changed at tick ``now`` (its ``_version`` is raised by the caller)."""
    try:
        tensor._bump_ticks.append(now)
    except AttributeError:  # the first change: the slot is left unset on every other tensor
        tensor._bump_ticks = deque((now,), maxlen=_TICKS_KEPT)


def increment_version(tensors: Tensor | Iterable[Tensor]) -> None:
    """Record that ``tensors`` were changed in place (as ``torch.autograd.graph.increment_version``).

    Call it after writing into a tensor's array outside nurinet's own in-place
    routes, so that a backward through an op that used the old values raises
    instead of computing a wrong gradient.

    Args:
        tensors: A Tensor or an iterable of Tensors.
    """
    now = tick()
    for tensor in (tensors,) if isinstance(tensors, Tensor) else tensors:
        tensor._version += 1
        remember_change(tensor, now)
        creator = tensor.creator
        if creator is not None:  # An op's output changed: that op's backward may read it.
            creator.outputs_modified = True


def check_versions(fn: Any) -> None:
    """Raise PyTorch's error if an input or output of ``fn`` changed in place since ``fn`` ran.

    The engine calls it before ``fn``'s backward when :data:`CLOCK` has moved since
    ``fn`` ran. When nothing of ``fn``'s has changed, ``fn`` notes the clock again,
    so a second backward (``retain_graph``) does not look again.

    Raises:
        RuntimeError: an input changed after ``fn`` ran, or an output is no longer at version 0.
            The message names the op, the input or output and both versions.
    """
    ran_at = fn.recorded_at
    for index, tensor in enumerate(fn.inputs):
        later = _changes_since(tensor, ran_at)
        if later:
            raise _error(tensor, f"input {index} of {fn.name}", tensor._version - later,
                         exact=later < len(tensor._bump_ticks) or len(tensor._bump_ticks) == tensor._version)
    if fn.outputs_modified:
        _raise_for_outputs(fn)
    fn.recorded_at = CLOCK.ticks


def _changes_since(tensor: Tensor, ran_at: int) -> int:
    """How many of the changes ``tensor`` remembers came after tick ``ran_at``."""
    ticks = getattr(tensor, "_bump_ticks", None)
    if not ticks or ticks[-1] <= ran_at:
        return 0
    return sum(1 for t in ticks if t > ran_at)


def _raise_for_outputs(fn: Any) -> None:
    for index, ref in enumerate(fn.outputs):
        tensor = ref()
        if tensor is not None and tensor._version:
            raise _error(tensor, f"output {index} of {fn.name}", 0, exact=True)
    raise RuntimeError(  # The op may have kept the changed output's array for its backward.
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: an output of {fn.name}, since freed, was changed after its forward ran. {HINT}"
    )


def _error(tensor: Tensor, role: str, expected: int, exact: bool) -> RuntimeError:
    described = f"[{tensor.array.dtype} tensor of shape {tuple(tensor.shape)}]"
    bound = "" if exact else " or lower"
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: {described}, which is {role}, is at version {tensor._version}; expected "
        f"version {expected}{bound} instead. {HINT}"
    )
