"""Tensor: an array with a gradient, the node type of nurinet's graph.

Operator methods (``+``, ``@``, ``exp``, ``sum``...) are attached by
``nurinet.functional`` when the package is imported, so this module depends on
nothing above the autograd layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nurinet import backend

_engine_backward: Callable[..., None] | None = None  # nurinet.autograd.engine.backward, once imported

DEFAULT_FLOAT = np.float32


def _to_array(data: Any, dtype: Any = None, copy: bool = False) -> Any:
    """Turn ``data`` into an array with nurinet's dtype rules.

    Arrays keep their dtype (float64 stays float64); Python floats, lists of
    floats and other non-array data become float32, as in PyTorch.
    """
    if isinstance(data, Tensor):
        data = data.array
    if isinstance(data, np.ndarray) or backend.is_cupy_array(data):
        if dtype is not None and data.dtype != dtype:
            return data.astype(dtype)
        return data.copy() if copy else data
    if isinstance(data, np.generic):
        return np.array(data, dtype=dtype)
    array = np.array(data, dtype=dtype)
    if dtype is None and array.dtype == np.float64:
        array = array.astype(DEFAULT_FLOAT)
    return array


class Tensor:
    """A multi-dimensional array that can record the ops applied to it.

    Args:
        data: An array (its dtype is kept), a Tensor, a number or a nested list
            (floats become float32, ints int64, bools bool).
        requires_grad: Record ops on this tensor so ``backward`` can compute
            its gradient. Only floating-point tensors can require a gradient.
        dtype: Convert the data to this dtype.
        name: Optional label shown in ``repr`` and error messages.

    ``array`` is the NumPy (or CuPy) array itself, shared, never copied: the name nurinet's own
    code uses, and Chainer's. ``data`` means what it means in PyTorch: a Tensor sharing this one's
    array, outside the graph (changes made through it are not tracked by autograd);
    ``t.data = other`` makes ``t`` hold ``other``'s array.

    ``_version`` counts the changes made in place through nurinet's API
    (``t[...] = v``, optimizer steps, ``nn.init``, ``load_state_dict``); a backward
    through an op that ran before such a change raises (see
    :mod:`nurinet.autograd.versions`).
    """

    __slots__ = (
        "__weakref__",
        "_bump_ticks",
        "_hooks",
        "_requires_grad",
        "_version",
        "activation_source",
        "array",
        "creator",
        "generation",
        "grad",
        "name",
        "output_index",
        "retains_grad",
    )
    # ndarray + Tensor must call Tensor.__radd__, not broadcast the Tensor as an object.
    __array_ufunc__ = None
    __array_priority__ = 1000.0
    __hash__ = object.__hash__
    # Set once any tensor gets a hook or retain_grad(): until then the engine skips looking.
    observed = False

    def __init__(
        self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None
    ) -> None:
        self.array = _to_array(data, dtype)
        self.grad: Tensor | None = None
        self.creator = None
        self.generation = 0
        self.output_index = 0
        self.name = name
        self._hooks: list[Callable] | None = None
        self.retains_grad = False
        self._version = 0
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, data: Any, requires_grad: bool) -> Tensor:
        """Fast constructor for op outputs: no conversion, no validation."""
        t = object.__new__(Tensor)
        t.array = data
        t.grad = None
        t.creator = None
        t.generation = 0
        t.output_index = 0
        t.name = None
        t._hooks = None
        t.retains_grad = False
        t._version = 0
        t._requires_grad = requires_grad
        return t

    # ----- gradient bookkeeping -------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and self.array.dtype.kind not in "fc":
            raise TypeError(
                f"only floating-point tensors can require a gradient; this tensor has dtype "
                f"{self.array.dtype}. Convert it first, e.g. t.astype('float32')"
            )
        if not value and self.creator is not None:
            raise RuntimeError(
                "requires_grad cannot be switched off on a tensor computed by an op; "
                "use .detach() to get a tensor outside the graph"
            )
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return self."""
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than computed by a recorded op."""
        return self.creator is None

    def backward(
        self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False
    ) -> None:
        """Back-propagate from this tensor, accumulating into the leaves' ``.grad``.

        Args:
            gradient: The gradient of some scalar with respect to this tensor;
                may be omitted for a one-element tensor (it is then 1).
            retain_graph: Keep the graph so backward can run through it again;
                defaults to ``create_graph``.
            create_graph: Record the backward pass so the gradients themselves
                can be differentiated (second-order methods).
        """
        global _engine_backward
        if _engine_backward is None:  # imported once, here: the engine imports this module
            from nurinet.autograd.engine import backward as _engine_backward
        _engine_backward(self, gradient, retain_graph, create_graph)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed.

        The hook may return a new gradient (same shape and dtype) to use instead.
        Returns a handle whose ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require a gradient")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        Tensor.observed = True
        return RemovableHandle(self._hooks, hook)

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in ``.grad`` after backward."""
        if not self.requires_grad:
            raise RuntimeError(
                "retain_grad() on a tensor that does not require a gradient: it will never get one"
            )
        if self.creator is not None:
            self.retains_grad = True
            Tensor.observed = True

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, outside the graph."""
        return Tensor._wrap(self.array, False)

    @property
    def data(self) -> Tensor:
        """A tensor sharing this one's array, outside the graph, as PyTorch's ``Tensor.data``.

        ``p.data.add_(g, alpha=-lr)`` or ``p.data[...] = v`` change ``p`` in place without a
        version bump or a graph record; prefer ``with nurinet.no_grad(): p.add_(...)``. For the raw
        array use ``p.array`` (shared) or ``p.numpy()``.
        """
        return self.detach()

    @data.setter
    def data(self, value: Any) -> None:
        """Make this tensor hold ``value``'s array (a Tensor or an array; shape and dtype may change)."""
        self.array = _to_array(value)

    def zero_grad_(self) -> None:
        self.grad = None

    # ----- array facts ------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def xp(self) -> Any:
        """The array module of this tensor's data (numpy or cupy)."""
        return backend.get_array_module(self.array)

    @property
    def device(self) -> str:
        return backend.device_of(self.array)

    def __len__(self) -> int:
        if self.array.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    def numel(self) -> int:
        """The number of elements (NumPy's ``size``; ``x.size()`` is the shape, as in PyTorch)."""
        return self.array.size

    def dim(self) -> int:
        return self.array.ndim

    # ----- conversion ---------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied off the GPU if needed; shared on the CPU)."""
        return backend.to_numpy(self.array)

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if self.array.size != 1:
            raise ValueError(
                f"item() needs a tensor with one element, but this one has shape {self.shape}"
            )
        return self.array.item()

    def tolist(self) -> Any:
        return backend.to_numpy(self.array).tolist()

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """This tensor on a device ("cpu", "cuda") and/or in a dtype, as PyTorch's ``to``; differentiable.

        ``x.to("cuda")``, ``x.to(nurinet.float64)``, ``x.to("cpu", nurinet.float32)``,
        ``x.to(dtype=...)`` or ``x.to(other)`` (``other``'s device and dtype).
        """
        from nurinet.functional._tensor_methods import tensor_to

        return tensor_to(self, *args, **kwargs)

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = backend.to_numpy(self.array)
        return array if dtype is None else array.astype(dtype)

    def __format__(self, format_spec: str) -> str:
        """A 0-d tensor formats as its number (``f"{loss:.4f}"``), as in PyTorch; others as ``str``."""
        if self.array.ndim == 0:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.array.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors can be used as an index, not {self.dtype}")
        return int(self.item())

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.array.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.array.item())

    def __repr__(self) -> str:
        body = np.array2string(backend.to_numpy(self.array), separator=", ", prefix="tensor(")
        extras = []
        if self.array.dtype != DEFAULT_FLOAT and self.array.dtype.kind == "f":
            extras.append(f"dtype={self.array.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.creator is not None:
            extras.append(f"grad_fn=<{self.creator.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return "tensor(" + ", ".join([body, *extras]) + ")"


class Parameter(Tensor):
    """A Tensor that is a learnable parameter of a module (requires a gradient by default)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None,
                 name: str | None = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype, name=name)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: list[Callable], hook: Callable) -> None:
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def as_tensor(data: Any, like: Tensor | None = None) -> Tensor:
    """Wrap ``data`` as a Tensor (no copy for arrays and Tensors).

    A Python or NumPy scalar combined with a tensor ``like`` takes that tensor's
    dtype when it is floating point, so ``x * 2.0`` and ``x * np.float64(2.0)``
    stay float32 for a float32 ``x`` (as in PyTorch; NumPy itself would promote).
    """
    if isinstance(data, Tensor):
        return data
    if like is not None and isinstance(data, (np.number, np.bool_)):
        data = data.item()  # A NumPy scalar is a number here, not a float64 array.
    if like is not None and isinstance(data, (int, float, bool)):
        dtype = like.array.dtype
        if dtype.kind not in "fc":
            dtype = np.result_type(dtype, data)
            if dtype == np.float64 and isinstance(data, float):
                dtype = np.dtype(DEFAULT_FLOAT)
        return Tensor._wrap(like.xp.asarray(data, dtype=dtype), False)
    return Tensor(data)
