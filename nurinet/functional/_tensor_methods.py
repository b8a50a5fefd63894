"""Attach operators and methods to Tensor (``x + y``, ``x @ w``, ``x.sum()``...).

Done here rather than in tensor.py so the autograd layer imports nothing above it.
"""

from __future__ import annotations

from typing import Any

from nurinet.autograd.tensor import Tensor
from nurinet.autograd.versions import increment_version
from nurinet.functional import activation as act
from nurinet.functional import arithmetic as ar
from nurinet.functional import comparison as cmp
from nurinet.functional import elementwise as ew
from nurinet.functional import indexing as ix
from nurinet.functional import linalg as la
from nurinet.functional import reduction as rd
from nurinet.functional import shape as sh


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
    self.data[ix._raw_index(index)] = value.data if isinstance(value, Tensor) else value
    increment_version(self)  # An op that used the old values must not run its backward on these.


def _reshape(self: Tensor, *shape: Any) -> Tensor:
    return sh.reshape(self, *shape)


def _transpose(self: Tensor, *axes: Any) -> Tensor:
    return sh.transpose(self, sh._shape_arg(axes) if axes else None)


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
    "T": property(lambda self: sh.transpose(self)),
    "mT": property(lambda self: sh.swapaxes(self, -1, -2)),
    "exp": ew.exp,
    "log": ew.log,
    "sqrt": ew.sqrt,
    "abs": ew.abs,
    "tanh": ew.tanh,
    "relu": act.relu,
    "sigmoid": act.sigmoid,
    "softmax": act.softmax,
    "log_softmax": act.log_softmax,
    "clip": ew.clip,
    "astype": ew.astype,
    "float": lambda self: ew.astype(self, "float32"),
    "double": lambda self: ew.astype(self, "float64"),
    "sum": rd.sum,
    "mean": rd.mean,
    "var": rd.var,
    "std": rd.std,
    "max": rd.max,
    "min": rd.min,
    "prod": rd.prod,
    "logsumexp": rd.logsumexp,
    "cumsum": rd.cumsum,
    "argmax": cmp.argmax,
    "argmin": cmp.argmin,
    "reshape": _reshape,
    "view": _reshape,
    "transpose": _transpose,
    "permute": sh.permute,
    "swapaxes": sh.swapaxes,
    "squeeze": sh.squeeze,
    "unsqueeze": sh.unsqueeze,
    "flatten": sh.flatten,
    "broadcast_to": sh.broadcast_to,
    "repeat": sh.repeat,
    "tile": sh.tile,
    "flip": sh.flip,
    "matmul": la.matmul,
    "any": lambda self, axis=None: Tensor._wrap(self.data.any(axis=axis), False),
    "all": lambda self, axis=None: Tensor._wrap(self.data.all(axis=axis), False),
}


def install() -> None:
    """Attach :data:`METHODS` to :class:`Tensor`."""
    for name, fn in METHODS.items():
        setattr(Tensor, name, fn)
