"""Keras's ``keras.utils`` helpers."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["to_categorical"]


def to_categorical(y: Any, num_classes: int | None = None, dtype: Any = "float32") -> np.ndarray:
    """One-hot rows for integer class labels, as ``keras.utils.to_categorical``.

    A trailing axis of size 1 (``(N, 1)`` labels) is dropped first; ``num_classes`` defaults to
    ``max(y) + 1``.
    """
    y = np.asarray(y)
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
        raise ValueError(f"to_categorical expects integer class labels, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"to_categorical: labels must be in [0, {num_classes}), got {y.min()}..{y.max()}")
    return np.eye(num_classes, dtype=dtype)[y]
