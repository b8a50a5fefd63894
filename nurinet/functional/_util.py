"""Helpers shared by the op modules: operand coercion, axis handling, array module."""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.backend import get_array_module


def xp_of(x: Any) -> Any:
    """The array module (numpy or cupy) of an array."""
    return get_array_module(x)


def on_device_of(value: Any, like: Tensor) -> Any:
    """``value`` on ``like``'s device when it is a NumPy array and ``like`` is on a GPU, else itself.

    A NumPy array given to an op beside a GPU tensor (a target, a mask, a constant operand) is a
    constant, as a scalar is: it goes where the tensor is, as ``where``'s condition and
    ``cross_entropy``'s targets already do. CuPy refuses NumPy operands, so without this the op
    would fail on a GPU where the same call works on the CPU. Tensors are never moved (a move
    of a tensor that needs a gradient is ``Tensor.to``'s job).
    """
    if type(value) is np.ndarray and type(like.array) is not np.ndarray:
        return like.xp.asarray(value)
    return value


def operands(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Turn the two operands of a binary op into Tensors of one dtype.

    A Python or NumPy scalar takes the tensor's dtype (``x * 2.0`` stays
    float32), and an integer tensor meeting a float scalar becomes float32, as
    in PyTorch. Two tensors of different dtypes are cast to their common type
    (an integer tensor takes the float tensor's dtype) by a differentiable
    cast, so each binary op sees one dtype and never promotes float32 to
    float64 by accident.
    """
    if not isinstance(a, Tensor) and (isinstance(b, Tensor) or _is_scalar(a)):
        b = as_tensor(b)
        weak, a = _is_scalar(a), as_tensor(on_device_of(a, b), b)
        scalar = a
    else:
        a = as_tensor(a)
        weak, b = _is_scalar(b), as_tensor(on_device_of(b, a), a)
        scalar = b
    if a.array.dtype != b.array.dtype:
        from nurinet.functional.elementwise import astype

        # A scalar already took the dtype the result should have (see as_tensor).
        common = scalar.array.dtype if weak else _common_dtype(a.array.dtype, b.array.dtype)
        a, b = astype(a, common), astype(b, common)
    return a, b


def _common_dtype(x: np.dtype, y: np.dtype) -> np.dtype:
    """NumPy's common type, except that integers meeting floats take the float's dtype.

    NumPy turns int64 with float32 into float64; PyTorch keeps float32, and so do
    we: ``arange(n) * w`` must not silently make a float32 model float64.
    """
    if x.kind in "iub" and y.kind in "fc":
        return y
    if y.kind in "iub" and x.kind in "fc":
        return x
    return np.result_type(x, y)


def _is_scalar(x: Any) -> bool:
    return isinstance(x, (int, float, bool, np.number, np.bool_))


def normalize_axis(axis: Any, ndim: int) -> tuple[int, ...] | None:
    """``axis`` as a sorted tuple of non-negative ints (``None`` stays ``None``)."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    result = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimension(s)")
        result.append(int(a) % max(ndim, 1))
    return tuple(sorted(result))


def pick_axis(axis: Any, dim: Any, op: str, default: Any = None) -> Any:
    """The axis an op was given as NumPy's ``axis=`` or PyTorch's ``dim=`` (``default`` when neither).

    Both spellings are accepted so that code ported from either library runs; giving
    both at once is refused, since one of them would be silently ignored.

    Raises:
        TypeError: both ``axis`` and ``dim`` were given.
    """
    if dim is not None:
        if axis is not None:
            raise TypeError(f"{op}: got both axis={axis!r} (NumPy's name) and dim={dim!r} (PyTorch's); "
                            "give one of them")
        return dim
    return default if axis is None else axis


def pick_keepdims(keepdims: bool | None, keepdim: bool | None, op: str) -> bool:
    """NumPy's ``keepdims=`` or PyTorch's ``keepdim=`` (False when neither).

    Raises:
        TypeError: both were given.
    """
    if keepdim is not None:
        if keepdims is not None:
            raise TypeError(f"{op}: got both keepdims= (NumPy's name) and keepdim= (PyTorch's); "
                            "give one of them")
        return bool(keepdim)
    return bool(keepdims)


def keepdims_shape(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape a reduction over ``axis`` has with ``keepdims=True``."""
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else s for i, s in enumerate(shape))


# ----- the dtype policy of layers and ops with parameters ---------------------------------
def check_input_dtype(x: Any, param: Any, owner: str, what: str = "input") -> None:
    """Refuse an input whose dtype is not the dtype of its layer's parameters, as PyTorch does.

    Letting a float64 input meet float32 parameters would silently compute in float64 (or
    fail later, in backward, with an internal error about a gradient's dtype), and an integer
    input would compute in the wrong type. Called once per forward: one comparison when the
    dtypes agree.

    Args:
        x: The input (a Tensor or array).
        param: One parameter of the layer (they share one dtype), or None for a layer without
            parameters: then only a non-floating input is refused.
        owner: The layer's class name, the first word of the message.
        what: What the message calls ``x`` ("input", "query", "h_0", ...).

    Raises:
        TypeError: naming ``owner``, both dtypes and how to convert one side.
    """
    if param is None:
        if x.dtype.kind != "f":
            raise TypeError(f"{owner} needs a floating-point {what}, got {_article(x.dtype)} {x.dtype} "
                            f"{what}: convert it with {_variable(what)}.astype('float32')")
        return
    if x.dtype != param.dtype:
        raise TypeError(f"{owner} has {param.dtype} parameters but got {_article(x.dtype)} {x.dtype} {what}: "
                        + _conversion(x.dtype, param.dtype, what, "the layer with layer"))


def check_operand_dtype(x: Any, param: Any, op: str, param_name: str = "weight", what: str = "input") -> None:
    """:func:`check_input_dtype` for a functional op, whose parameters are arguments (``F.linear``).

    Raises:
        TypeError: naming ``op``, both dtypes and how to convert one side.
    """
    if x.dtype != param.dtype:
        raise TypeError(f"{op}: the {what} ({x.dtype}) and {param_name} ({param.dtype}) must share one dtype: "
                        + _conversion(x.dtype, param.dtype, what, f"the {param_name} with {param_name}"))


def _conversion(got: np.dtype, want: np.dtype, what: str, other_side: str) -> str:
    """How to make ``got`` and ``want`` agree: convert the input, or (floats) the other side."""
    text = f"convert the {what} with {_variable(what)}.astype('{want}')"
    method = {np.dtype(np.float64): ".double()", np.dtype(np.float32): ".float()"}.get(np.dtype(got))
    if got.kind != "f":
        return text + " (floating-point parameters need a floating-point input)"
    return text + (f" or {other_side}{method}" if method else "")


def _variable(what: str) -> str:
    return "x" if what == "input" else what


def _article(dtype: np.dtype) -> str:
    return "an" if str(dtype)[0] in "aeio" else "a"
