"""Stateless differentiable ops, imported as ``F`` (``import nurinet.functional as F``).

Ops are grouped by family; each is a ``Function`` subclass with a lowercase
wrapper. See docs/autograd.md for the op contract.
"""

from nurinet.autograd.broadcast import broadcast_to, sum_to
from nurinet.functional import _tensor_methods
from nurinet.functional.arithmetic import add, div, mul, neg, pow, sub
from nurinet.functional.comparison import (
    argmax,
    argmin,
    equal,
    greater,
    greater_equal,
    less,
    less_equal,
    not_equal,
    one_hot,
)
from nurinet.functional.device import to_device
from nurinet.functional.elementwise import (
    abs,
    astype,
    clip,
    cos,
    exp,
    expm1,
    log,
    log1p,
    maximum,
    minimum,
    sign,
    sin,
    sqrt,
    tanh,
    where,
)
from nurinet.functional.indexing import getitem, take_along_axis
from nurinet.functional.linalg import einsum, linear, matmul
from nurinet.functional.reduction import (
    cumsum,
    logsumexp,
    max,
    mean,
    min,
    prod,
    std,
    sum,
    var,
)
from nurinet.functional.shape import (
    concatenate,
    flatten,
    flip,
    pad,
    permute,
    repeat,
    reshape,
    split,
    squeeze,
    stack,
    swapaxes,
    tile,
    transpose,
    unsqueeze,
)

_tensor_methods.install()

cat = concatenate
clamp = clip

__all__ = [
    "abs",
    "add",
    "argmax",
    "argmin",
    "astype",
    "broadcast_to",
    "cat",
    "clamp",
    "clip",
    "concatenate",
    "cos",
    "cumsum",
    "div",
    "einsum",
    "equal",
    "exp",
    "expm1",
    "flatten",
    "flip",
    "getitem",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "linear",
    "log",
    "log1p",
    "logsumexp",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mul",
    "neg",
    "not_equal",
    "one_hot",
    "pad",
    "permute",
    "pow",
    "prod",
    "repeat",
    "reshape",
    "sign",
    "sin",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "std",
    "sub",
    "sum",
    "sum_to",
    "swapaxes",
    "take_along_axis",
    "tanh",
    "tile",
    "to_device",
    "transpose",
    "unsqueeze",
    "var",
    "where",
]
