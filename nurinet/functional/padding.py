"""Padding by mode: reflect, replicate and circular (PyTorch's ``F.pad`` modes), as gathers.

``F.pad`` pads with a constant. The other modes fill the border with values taken from the
input itself, so each is a gather along each padded axis: an index array built by
``numpy.pad`` of ``arange(n)`` picks the source of every output position. The op is
``getitem`` with that index, whose backward scatter-adds the gradient of every copy back to
its source (an edge value copied three times by ``replicate`` gets three gradients), and
whose backward is a gather again, so the op is differentiable twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional._util import on_device_of
from nurinet.functional.indexing import getitem
from nurinet.functional.shape import pad, pad_widths

# PyTorch's mode names and the numpy.pad mode that builds the same source index.
NUMPY_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}
PAD_MODES = ("constant", "zeros", *NUMPY_PAD_MODES)


def _check_width(mode: str, size: int, before: int, after: int, axis: int) -> None:
    """PyTorch's limits: reflect needs a pad below the size (the edge is not repeated),
    circular at most the size (one wrap)."""
    largest = max(before, after)
    if mode == "reflect" and largest >= size:
        raise ValueError(f"pad_mode: reflect padding of {largest} on axis {axis} needs the axis to be longer "
                         f"than the pad, but it has size {size}")
    if mode == "circular" and largest > size:
        raise ValueError(f"pad_mode: circular padding of {largest} on axis {axis} needs the axis to be at "
                         f"least as long as the pad, but it has size {size}")


def source_index(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """The input position each output position copies, along one axis padded by ``mode``."""
    return np.pad(np.arange(size), (before, after), mode=NUMPY_PAD_MODES[mode])


def pad_mode(x: Any, pad_width: Any, mode: str = "reflect", value: float = 0.0) -> Tensor:
    """Pad ``x`` by ``mode``; ``pad_width`` as in ``numpy.pad`` (int, pair, or pair per axis).

    Modes (PyTorch's names): ``"reflect"`` mirrors without repeating the edge
    (``[1, 2, 3] -> 3 2 | 1 2 3 | 2 1``), ``"replicate"`` repeats the edge value
    (``1 1 | 1 2 3 | 3 3``), ``"circular"`` wraps around (``2 3 | 1 2 3 | 1 2``);
    ``"constant"`` and ``"zeros"`` are :func:`nurinet.functional.pad` with ``value``
    (0 for ``"zeros"``).

    Unlike PyTorch's ``F.pad``, whose flat ``pad`` tuple starts at the last axis,
    ``pad_width`` names every axis in order, as ``numpy.pad`` and ``F.pad`` do here:
    ``((0, 0), (0, 0), (1, 1), (2, 2))`` pads H by 1 and W by 2 of an NCHW batch.

    Raises:
        ValueError: an unknown mode, a negative width, a reflect pad not smaller than its
            axis, or a circular pad longer than its axis.
    """
    x = as_tensor(x)
    if mode not in PAD_MODES:
        raise ValueError(f"pad_mode: mode must be one of {PAD_MODES}, got {mode!r}")
    widths = pad_widths(pad_width, x.ndim, "pad_mode")
    if mode in ("constant", "zeros"):
        return pad(x, widths, value=0.0 if mode == "zeros" else value)
    out = x
    for axis, (before, after) in enumerate(widths):
        if before == after == 0:
            continue
        _check_width(mode, x.shape[axis], before, after, axis)
        source = on_device_of(source_index(x.shape[axis], before, after, mode), x)
        index = (slice(None),) * axis + (source,)
        out = getitem(out, index)
    return out
