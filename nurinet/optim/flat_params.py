"""A list of parameters seen as one flat vector, for the batch optimizers.

L-BFGS, nonlinear conjugate gradient, line-search gradient descent and Hessian-free
all reason about ``x``, the concatenation of every parameter raveled in list order,
and its gradient ``g``. :class:`FlatParams` turns a parameter list into that view
without keeping a second copy of the parameters: it gathers the gradients into one
vector, moves the parameters along a flat direction (``x += t * d``) and saves and
restores their values. Every array is made with the array module of the parameters
(NumPy or CuPy, :func:`nurinet.backend.get_array_module`), so one code path serves
the CPU and the GPU; scalars that leave it (dot products, norms) are Python floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nurinet import backend
from nurinet._runtime import blas
from nurinet.autograd.tensor import Tensor
from nurinet.autograd.versions import increment_version


class FlatParams:
    """Parameters as one vector ``x`` (their values raveled and concatenated in order).

    Args:
        params: The parameters (leaf Tensors) in a fixed order.
        owner: The name used in error messages (the optimizer's class name).

    Raises:
        ValueError: the parameters differ in dtype or device (one flat vector holds one
            dtype on one device, as in PyTorch's LBFGS).
    """

    def __init__(self, params: Sequence[Tensor], owner: str) -> None:
        self.params = list(params)
        first = self.params[0].array
        for i, p in enumerate(self.params):
            if p.array.dtype != first.dtype or backend.device_of(p.array) != backend.device_of(first):
                raise ValueError(
                    f"{owner} works on one flat vector: every parameter must have one dtype on one "
                    f"device, but parameter 0 is {first.dtype} on {backend.device_of(first)} and "
                    f"parameter {i} is {p.array.dtype} on {backend.device_of(p.array)}"
                )
        self.xp = backend.get_array_module(first)
        self.dtype = first.dtype
        self.numel = sum(int(p.array.size) for p in self.params)

    # ----- reading --------------------------------------------------------------------
    def gather_grad(self) -> Any:
        """The gradient as one new flat vector (zeros for a parameter without ``.grad``)."""
        return self.flatten([p.grad for p in self.params])

    def flatten(self, arrays: Sequence[Any]) -> Any:
        """One flat vector from arrays or Tensors shaped as the parameters (gradients from
        ``nurinet.grad`` or ``.grad``; zeros for None)."""
        parts = [self.xp.zeros(p.array.size, dtype=self.dtype) if a is None
                 else (a.array if isinstance(a, Tensor) else a).reshape(-1)
                 for p, a in zip(self.params, arrays)]
        return self.xp.concatenate(parts)

    def unflatten(self, flat: Any) -> list[Any]:
        """Views of ``flat`` shaped as the parameters."""
        views, offset = [], 0
        for p in self.params:
            size = int(p.array.size)
            views.append(flat[offset:offset + size].reshape(p.array.shape))
            offset += size
        return views

    def values(self) -> Any:
        """The parameter values as one new flat vector."""
        return self.xp.concatenate([p.array.reshape(-1) for p in self.params])

    def clone(self) -> list[Any]:
        """Copies of the parameter values (to come back to after a trial step)."""
        return [p.array.copy() for p in self.params]

    # ----- writing ----------------------------------------------------------------------
    def add_(self, t: float, d: Any) -> None:
        """``x += t * d`` in place (``d`` flat), raising each parameter's version."""
        for p, step in zip(self.params, self.unflatten(d)):
            if not blas.axpy(t, step, p.array):  # one pass, no temporary, where the BLAS can
                p.array += t * step
        increment_version(self.params)

    def restore_(self, values: Sequence[Any]) -> None:
        """Put back values saved by :meth:`clone`."""
        for p, value in zip(self.params, values):
            p.array[...] = value
        increment_version(self.params)


def dot(a: Any, b: Any) -> float:
    """``a . b`` of two flat vectors, as a Python float."""
    return float(backend.get_array_module(a).dot(a, b))


def max_abs(a: Any) -> float:
    """``max |a_i|`` (the infinity norm), as a Python float."""
    return float(abs(a).max())


def sum_abs(a: Any) -> float:
    """``sum |a_i|`` (the 1-norm), as a Python float."""
    return float(abs(a).sum())
