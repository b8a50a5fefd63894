"""PyTorch's dtype names as NumPy dtypes: ``nurinet.float32``, ``nurinet.long``, ``nurinet.bool``...

A tensor's ``dtype`` is a ``numpy.dtype``, so ``x.dtype == nurinet.float32`` compares as in
PyTorch, and every constructor and ``.to()``/``.type()`` takes these names, NumPy's dtypes or
strings alike.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
complex64 = cfloat = np.dtype(np.complex64)
complex128 = cdouble = np.dtype(np.complex128)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = short = np.dtype(np.int16)
int32 = int = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)

NAMES = ("float16", "half", "float32", "float", "float64", "double", "complex64", "cfloat",
         "complex128", "cdouble", "uint8", "int8", "int16", "short", "int32", "int", "int64",
         "long", "bool")


def as_dtype(dtype: Any) -> np.dtype:
    """``dtype`` as a NumPy dtype: a dtype, a NumPy type, a string (``"float32"``, ``"long"``)
    or a Python type (``float`` is float32 and ``int`` int64, as PyTorch's defaults)."""
    if dtype is builtins.float:
        return float32
    if dtype is builtins.int:
        return int64
    if isinstance(dtype, str) and dtype in NAMES:
        return globals()[dtype]
    return np.dtype(dtype)

