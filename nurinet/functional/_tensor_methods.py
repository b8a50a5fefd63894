"""Attach operators and methods to Tensor (``x + y``, ``x @ w``, ``x.sum()``...).

Done here rather than in tensor.py so the autograd layer imports nothing above it.

The methods speak PyTorch where they use PyTorch's names: ``x.transpose(0, 1)`` swaps two axes,
``x.max(1)`` returns ``(values, indices)``, ``x.size()`` is the shape, ``x.var(dim)`` is unbiased,
``x.repeat(2, 1)`` tiles and ``x.split(2)`` makes parts of size 2. Every axis may be given as
PyTorch's ``dim=`` or NumPy's ``axis=``. The NumPy meanings stay in ``nurinet.functional``
(``F.permute``, ``F.max``, ``F.var``, ``F.repeat``, ``F.split``) and on the arrays themselves.
"""

from __future__ import annotations

from typing import Any

from nurinet.autograd.tensor import Tensor
from nurinet.autograd.versions import increment_version
from nurinet.dtypes import as_dtype
from nurinet.functional import _inplace
from nurinet.functional import activation as act
from nurinet.functional import arithmetic as ar
from nurinet.functional import comparison as cmp
from nurinet.functional import elementwise as ew
from nurinet.functional import indexing as ix
from nurinet.functional import linalg as la
from nurinet.functional import reduction as rd
from nurinet.functional import shape as sh
from nurinet.functional import sorting as so
from nurinet.functional import tensor_ops as to
from nurinet.functional._util import pick_axis, pick_keepdims


def _to_device(x: Tensor, device: str) -> Tensor:
    from nurinet.functional.device import to_device

    return to_device(x, device)


def _swap(fn: Any) -> Any:
    return lambda self, other: fn(other, self)


def _setitem(self: Tensor, index: Any, value: Any) -> None:
    from nurinet.autograd.grad_mode import is_grad_enabled

    if self.requires_grad and is_grad_enabled():
        raise RuntimeError(
            "in-place assignment to a tensor that requires a gradient would corrupt the graph; "
            "do it under nurinet.no_grad(), or build a new tensor (e.g. with F.where)"
        )
    if isinstance(value, Tensor) and value.requires_grad and is_grad_enabled():
        raise RuntimeError(
            "assigning a tensor that requires a gradient into another tensor would drop its "
            "gradient; build the result with differentiable ops instead (F.where, F.concatenate, "
            "F.stack), or assign value.detach() if no gradient is wanted"
        )
    self.array[ix._raw_index(index)] = value.array if isinstance(value, Tensor) else value
    increment_version(self)  # An op that used the old values must not run its backward on these.


def _reshape(self: Tensor, *shape: Any) -> Tensor:
    return sh.reshape(self, *shape)


def _transpose(self: Tensor, dim0: int, dim1: int) -> Tensor:
    return sh.transpose(self, dim0, dim1)


class Size(tuple):
    """The shape of a tensor, as ``torch.Size``: a tuple with ``numel()``."""

    __slots__ = ()

    def numel(self) -> int:
        result = 1
        for n in self:
            result *= n
        return result

    def __repr__(self) -> str:
        return f"nurinet.Size({list(self)})"


def _size(self: Tensor, dim: int | None = None) -> Any:
    """``x.size()``: the shape as a :class:`Size`; ``x.size(d)``: the length of axis ``d``.

    The element count (NumPy's ``size``) is ``x.numel()``.
    """
    if dim is None:
        return Size(self.array.shape)
    return self.array.shape[dim]


def _type(self: Tensor, dtype: Any = None) -> Any:
    """``x.type()``: the dtype's name; ``x.type(dtype)``: ``x`` converted to ``dtype``."""
    if dtype is None:
        return f"nurinet.{self.array.dtype}"
    return ew.astype(self, as_dtype(dtype))


def _converter(dtype_name: str) -> Any:
    return lambda self: ew.astype(self, dtype_name)


def _truth_reduction(name: str) -> Any:
    def method(self: Tensor, dim: Any = None, keepdim: bool | None = None, *, axis: Any = None,
               keepdims: bool | None = None) -> Tensor:
        axis = pick_axis(axis, dim, name)
        keep = pick_keepdims(keepdims, keepdim, name)
        return Tensor._wrap(getattr(self.array, name)(axis=axis, keepdims=keep), False)

    return method


def _new(fill: Any) -> Any:
    """``x.new_zeros(*size)``-style constructors: ``x``'s dtype and device unless told otherwise."""

    def method(self: Tensor, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        array = self.xp.full(sh._shape_arg(size), fill, dtype=self.dtype if dtype is None else as_dtype(dtype))
        return Tensor(array, requires_grad=requires_grad)

    return method


def _new_full(self: Tensor, size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    array = self.xp.full(tuple(size), fill_value, dtype=self.dtype if dtype is None else as_dtype(dtype))
    return Tensor(array, requires_grad=requires_grad)


def _new_tensor(self: Tensor, data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    array = self.xp.array(data.array if isinstance(data, Tensor) else data,
                          dtype=self.dtype if dtype is None else as_dtype(dtype))
    return Tensor(array, requires_grad=requires_grad)


def _torch_repeat(self: Tensor, *sizes: Any) -> Tensor:
    """PyTorch's ``repeat``: tile the whole tensor (NumPy's ``tile``; NumPy's ``repeat`` is
    ``repeat_interleave``)."""
    sizes = sh._shape_arg(sizes)
    if len(sizes) < self.ndim:
        raise ValueError(f"repeat: {len(sizes)} repeat counts given for a tensor with {self.ndim} dims")
    return sh.tile(self, sizes)


def tensor_to(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """``x.to("cuda")``, ``x.to(nurinet.float64)``, ``x.to(device, dtype)`` or ``x.to(other)``."""
    dtype, device = kwargs.pop("dtype", None), kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            dtype, device = arg.dtype, arg.device
        elif _is_device(arg):
            device = arg
        else:
            dtype = arg
    result = self if device is None else _to_device(self, str(device))
    return result if dtype is None else ew.astype(result, as_dtype(dtype))


def _is_device(arg: Any) -> bool:
    return type(arg).__name__ == "device" or (isinstance(arg, str) and arg.split(":")[0] in ("cpu", "cuda", "gpu"))


METHODS = {
    "__add__": ar.add,
    "__radd__": _swap(ar.add),
    "__sub__": ar.sub,
    "__rsub__": _swap(ar.sub),
    "__mul__": ar.mul,
    "__rmul__": _swap(ar.mul),
    "__truediv__": ar.div,
    "__rtruediv__": _swap(ar.div),
    "__pow__": ar.pow,
    "__rpow__": _swap(ar.pow),
    "__neg__": ar.neg,
    "__pos__": lambda self: self,
    "__abs__": ew.abs,
    "__matmul__": la.matmul,
    "__rmatmul__": _swap(la.matmul),
    "__eq__": cmp.equal,
    "__ne__": cmp.not_equal,
    "__lt__": cmp.less,
    "__le__": cmp.less_equal,
    "__gt__": cmp.greater,
    "__ge__": cmp.greater_equal,
    "__getitem__": ix.getitem,
    "__setitem__": _setitem,
    "T": property(lambda self: sh.permute(self)),
    "mT": property(lambda self: sh.swapaxes(self, -1, -2)),
    "exp": ew.exp,
    "log": ew.log,
    "sqrt": ew.sqrt,
    "abs": ew.abs,
    "tanh": ew.tanh,
    "relu": act.relu,
    "sigmoid": act.sigmoid,
    "softmax": lambda self, dim=None, *, axis=None: act.softmax(self, axis, dim=dim),
    "log_softmax": lambda self, dim=None, *, axis=None: act.log_softmax(self, axis, dim=dim),
    "clip": ew.clip,
    "astype": ew.astype,
    "float": _converter("float32"),
    "double": _converter("float64"),
    "half": _converter("float16"),
    "long": _converter("int64"),
    "int": _converter("int32"),
    "bool": _converter("bool"),
    "byte": _converter("uint8"),
    "type": _type,
    "size": _size,
    "new_zeros": _new(0),
    "new_ones": _new(1),
    "new_full": _new_full,
    "new_tensor": _new_tensor,
    "sum": rd.sum,
    "mean": rd.mean,
    "var": rd.var_torch,
    "std": rd.std_torch,
    "max": so.max_torch,
    "min": so.min_torch,
    "amax": rd.max,
    "amin": rd.min,
    "sort": so.sort,
    "argsort": so.argsort,
    "topk": so.topk,
    "prod": rd.prod,
    "logsumexp": rd.logsumexp,
    "cumsum": rd.cumsum,
    "argmax": cmp.argmax,
    "argmin": cmp.argmin,
    "reshape": _reshape,
    "view": _reshape,
    "view_as": lambda self, other: sh.reshape(self, other.shape),
    "reshape_as": lambda self, other: sh.reshape(self, other.shape),
    "transpose": _transpose,
    "t": sh.t,
    "permute": sh.permute,
    "swapaxes": sh.swapaxes,
    "squeeze": sh.squeeze,
    "unsqueeze": sh.unsqueeze,
    "flatten": sh.flatten,
    "broadcast_to": sh.broadcast_to,
    "expand": sh.expand,
    "expand_as": lambda self, other: sh.broadcast_to(self, other.shape),
    "repeat": _torch_repeat,
    "repeat_interleave": sh.repeat_interleave,
    "gather": ix.gather,
    "tile": sh.tile,
    "flip": sh.flip,
    "split": sh.split_sizes,
    "chunk": sh.chunk,
    "matmul": la.matmul,
    "mm": to.mm,
    "bmm": to.bmm,
    "clone": to.clone,
    "contiguous": to.contiguous,
    "masked_fill": to.masked_fill,
    "diag": to.diag,
    "eq": cmp.equal,
    "ne": cmp.not_equal,
    "lt": cmp.less,
    "le": cmp.less_equal,
    "gt": cmp.greater,
    "ge": cmp.greater_equal,
    "maximum": ew.maximum,
    "minimum": ew.minimum,
    "clamp": ew.clip,
    "pow": ar.pow,
    "neg": ar.neg,
    "any": _truth_reduction("any"),
    "all": _truth_reduction("all"),
    **_inplace.METHODS,
}


def install() -> None:
    """Attach :data:`METHODS` to :class:`Tensor`."""
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
