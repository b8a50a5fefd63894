"""Tensor constructors: tensor, zeros, ones, full, arange, eye, rand, randn and the ``*_like`` forms.

Floating-point constructors default to float32. Random ones draw from the
default generator (seeded by ``nurinet.manual_seed``) or the one passed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import DEFAULT_FLOAT, Tensor, _to_array
from nurinet.random import Generator, resolve


def _shape(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(int(s) for s in shape[0])
    return tuple(int(s) for s in shape)


def _finish(array: np.ndarray, device: str | None, requires_grad: bool) -> Tensor:
    if device is not None and backend.normalize_device(device) != "cpu":
        array = backend.to_device(array, device)
    return Tensor(array, requires_grad=requires_grad)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False, device: str | None = None) -> Tensor:
    """A new tensor holding a copy of ``data``.

    Arrays keep their dtype; Python floats and lists of floats become float32.
    """
    return _finish(_to_array(data, dtype, copy=True), device, requires_grad)


def zeros(*shape: Any, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False,
          device: str | None = None) -> Tensor:
    """A tensor of zeros."""
    return _finish(np.zeros(_shape(shape), dtype), device, requires_grad)


def ones(*shape: Any, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False,
         device: str | None = None) -> Tensor:
    """A tensor of ones."""
    return _finish(np.ones(_shape(shape), dtype), device, requires_grad)


def full(shape: Any, fill_value: float, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False,
         device: str | None = None) -> Tensor:
    """A tensor filled with ``fill_value``."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return _finish(np.full(shape, fill_value, dtype), device, requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None,
           requires_grad: bool = False, device: str | None = None) -> Tensor:
    """Evenly spaced values in ``[start, stop)``; integers unless a float is involved."""
    array = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None and array.dtype == np.float64:
        dtype = DEFAULT_FLOAT
    return _finish(array.astype(dtype) if dtype is not None else array, device, requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False,
        device: str | None = None) -> Tensor:
    """An ``n`` x ``m`` identity matrix."""
    return _finish(np.eye(n, m, dtype=dtype), device, requires_grad)


def rand(*shape: Any, dtype: Any = DEFAULT_FLOAT, generator: Generator | None = None,
         requires_grad: bool = False, device: str | None = None) -> Tensor:
    """Uniform draws from [0, 1)."""
    array = resolve(generator).random(_shape(shape)).astype(dtype)
    return _finish(array, device, requires_grad)


def randn(*shape: Any, dtype: Any = DEFAULT_FLOAT, generator: Generator | None = None,
          requires_grad: bool = False, device: str | None = None) -> Tensor:
    """Standard normal draws."""
    array = resolve(generator).standard_normal(_shape(shape)).astype(dtype)
    return _finish(array, device, requires_grad)


def randint(low: int, high: int, shape: Any, generator: Generator | None = None,
            device: str | None = None) -> Tensor:
    """Integers drawn uniformly from ``[low, high)`` (int64)."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return _finish(resolve(generator).integers(low, high, shape), device, False)


def _like(x: Tensor, dtype: Any) -> tuple[tuple[int, ...], Any, str]:
    return x.shape, (x.dtype if dtype is None else dtype), x.device


def zeros_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape, dtype and device of ``x``."""
    shape, dtype, device = _like(x, dtype)
    return zeros(shape, dtype=dtype, requires_grad=requires_grad, device=device)


def ones_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with the shape, dtype and device of ``x``."""
    shape, dtype, device = _like(x, dtype)
    return ones(shape, dtype=dtype, requires_grad=requires_grad, device=device)


def full_like(x: Tensor, fill_value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` with the shape, dtype and device of ``x``."""
    shape, dtype, device = _like(x, dtype)
    return full(shape, fill_value, dtype=dtype, requires_grad=requires_grad, device=device)


def rand_like(x: Tensor, dtype: Any = None, generator: Generator | None = None) -> Tensor:
    """Uniform [0, 1) draws with the shape, dtype and device of ``x``."""
    shape, dtype, device = _like(x, dtype)
    return rand(shape, dtype=dtype, generator=generator, device=device)


def randn_like(x: Tensor, dtype: Any = None, generator: Generator | None = None) -> Tensor:
    """Standard normal draws with the shape, dtype and device of ``x``."""
    shape, dtype, device = _like(x, dtype)
    return randn(shape, dtype=dtype, generator=generator, device=device)
