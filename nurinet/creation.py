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
    if device is None:
        device = backend.get_default_device()
    if backend.normalize_device(str(device)) != "cpu":
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


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory (its dtype kept), as ``torch.from_numpy``."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def as_tensor(data: Any, dtype: Any = None, device: str | None = None) -> Tensor:
    """``data`` as a tensor, sharing memory when it already is an array or tensor of ``dtype`` on
    ``device`` (``torch.as_tensor``); otherwise a converted copy."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    array = _to_array(data, None if dtype is None else np.dtype(dtype))
    if device is not None and backend.normalize_device(str(device)) != "cpu":
        array = backend.to_device(array, device)
    return Tensor(array)


def randperm(n: int, generator: Generator | None = None, dtype: Any = np.int64,
             device: str | None = None) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64)."""
    return _finish(resolve(generator).permutation(int(n)).astype(dtype), device, False)


def multinomial(input: Any, num_samples: int, replacement: bool = False,
                generator: Generator | None = None) -> Tensor:
    """Draw ``num_samples`` category indices per row from the (unnormalized) weights in ``input``.

    As ``torch.multinomial``: 1-D weights give ``(num_samples,)``, 2-D give one row of draws per
    row of weights; without ``replacement`` an index is drawn at most once per row.
    """
    weights = backend.to_numpy(input.array if isinstance(input, Tensor) else np.asarray(input))
    rows = np.atleast_2d(weights).astype(np.float64)
    if (rows < 0).any() or not np.isfinite(rows).all() or (rows.sum(axis=1) <= 0).any():
        raise ValueError("multinomial: the weights must be finite, non-negative and not all zero in a row")
    if not replacement and num_samples > (rows > 0).sum(axis=1).min():
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without replacement from rows "
                         "with fewer non-zero weights")
    rng = resolve(generator)
    draws = [rng.choice(row.size, size=num_samples, replace=replacement, p=row / row.sum()) for row in rows]
    result = np.stack(draws).astype(np.int64)
    return _finish(result if weights.ndim == 2 else result[0], None, False)


def linspace(start: float, end: float, steps: int, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False,
             device: str | None = None) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive, as ``torch.linspace``."""
    return _finish(np.linspace(start, end, int(steps), dtype=dtype), device, requires_grad)


def empty(*shape: Any, dtype: Any = DEFAULT_FLOAT, requires_grad: bool = False,
          device: str | None = None) -> Tensor:
    """A tensor to be filled: here zeros, so an unfilled element is never garbage (PyTorch's
    ``empty`` leaves memory uninitialized)."""
    return zeros(*shape, dtype=dtype, requires_grad=requires_grad, device=device)


def empty_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """:func:`empty` with the shape, dtype and device of ``x``."""
    return zeros_like(x, dtype=dtype, requires_grad=requires_grad)
