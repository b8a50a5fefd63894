"""Linear algebra: matmul (batched, broadcasting), linear (fused matmul + bias), linear_relu, einsum."""

from __future__ import annotations

import re
from typing import Any

from nurinet._runtime import gemm
from nurinet._runtime.fast import activation as fast_activation
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor
from nurinet.functional._util import check_operand_dtype, operands, xp_of
from nurinet.functional.activation import relu_grad, relu_grad_array


class MatMul(Function):
    """``a @ b`` for operands of at least 2 dims; batch dims broadcast."""

    def forward(self, a: Any, b: Any) -> Any:
        return gemm.matmul(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = matmul(gy, _t(b)) if self.needs_input_grad[0] else None
        gb = matmul(_t(a), gy) if self.needs_input_grad[1] else None
        return ga, gb


def _t(x: Tensor) -> Tensor:
    from nurinet.functional.shape import swapaxes

    return swapaxes(x, -1, -2)


class Linear(Function):
    """``x @ weight.T + bias`` in one op (PyTorch's weight layout: out x in).

    The input may have any number of leading dims; they are folded into one so
    the product is a single 2-D GEMM (NumPy's batched matmul on 3-D arrays is
    much slower than one large GEMM).

    backward_arrays: the MLP, CNN, LSTM, XOR and Transformer benchmarks.
    """

    def forward(self, x: Any, weight: Any, bias: Any = None) -> Any:
        return _affine_arrays(x, weight, bias, relu=False)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        return _linear_grads(self.inputs, self.needs_input_grad, gy)

    def backward_arrays(self, gy: Any) -> tuple[Any, ...]:
        return _linear_grad_arrays(self.inputs, self.needs_input_grad, gy)


class LinearReLU(Function):
    """``relu(x @ weight.T + bias)`` in one op: what :class:`~nurinet.nn.Sequential` runs for a
    ``Linear`` followed by a ``ReLU`` (neither with hooks). The native GEMM applies the bias and the
    ReLU as it stores the product, saving two passes over the output; the gradient is the linear
    layer's, of ``gy`` masked where the output is not positive (as ReLU's: 0 at 0, NaN gives 0).

    backward_arrays: the MLP and CNN benchmarks.
    """

    def forward(self, x: Any, weight: Any, bias: Any = None) -> Any:
        return _affine_arrays(x, weight, bias, relu=True)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        return _linear_grads(self.inputs, self.needs_input_grad, relu_grad(gy, self.output().array))

    def backward_arrays(self, gy: Any) -> tuple[Any, ...]:
        y, needs = self.output().array, self.needs_input_grad
        if len(needs) == 3 and needs[2] and gy.shape == y.shape:  # the bias gradient in the ReLU gradient's pass
            features = y.shape[-1]
            fused = fast_activation.relu_grad_with_column_sums(gy.reshape(-1, features), y.reshape(-1, features))
            if fused is not None:
                g, gb = fused
                return (*_linear_grad_arrays(self.inputs, needs[:2], g.reshape(y.shape)), gb)
        return _linear_grad_arrays(self.inputs, needs, relu_grad_array(gy, y))


def _affine_arrays(x: Any, weight: Any, bias: Any, relu: bool) -> Any:
    """``x @ weight.T + bias`` (through a ReLU with ``relu``), leading dims of ``x`` folded into one
    so that the product is a single 2-D GEMM (NumPy's batched matmul on 3-D arrays is much slower)."""
    if x.ndim == 2:
        return gemm.matmul(x, weight.T, bias=bias, relu=relu)
    y = gemm.matmul(x.reshape(-1, x.shape[-1]), weight.T, bias=bias, relu=relu)
    return y.reshape(x.shape[:-1] + (weight.shape[0],))


def _linear_grads(inputs: tuple[Tensor, ...], needs: tuple[bool, ...], gy: Tensor) -> tuple[Tensor | None, ...]:
    """The gradients of ``x @ weight.T (+ bias)`` as Tensors (recorded, for gradients of gradients)."""
    from nurinet.functional.reduction import sum as sum_
    from nurinet.functional.shape import reshape

    x, weight = inputs[0], inputs[1]
    g2 = reshape(gy, (-1, gy.shape[-1])) if gy.ndim != 2 else gy
    gx = reshape(matmul(g2, weight), x.shape) if needs[0] else None
    gw = None
    if needs[1]:
        x2 = reshape(x, (-1, x.shape[-1])) if x.ndim != 2 else x
        gw = matmul(_t(g2), x2)
    if len(inputs) == 2:
        return gx, gw
    gb = sum_(g2, axis=0) if needs[2] else None
    return gx, gw, gb


def _linear_grad_arrays(inputs: tuple[Tensor, ...], needs: tuple[bool, ...], gy: Any) -> tuple[Any, ...]:
    """The gradients of ``x @ weight.T (+ bias)`` as arrays (a plain backward)."""
    x, weight = inputs[0].array, inputs[1].array
    if x.ndim == 2:  # gy is 2-D too: no reshapes, and gx is a plain array rather than a view
        gx = gemm.matmul(gy, weight) if needs[0] else None
        gw = gemm.matmul(gy.T, x) if needs[1] else None
        g2 = gy
    else:
        g2 = gy.reshape(-1, gy.shape[-1])
        gx = gemm.matmul(g2, weight).reshape(x.shape) if needs[0] else None
        gw = gemm.matmul(g2.T, x.reshape(-1, x.shape[-1])) if needs[1] else None
    if len(needs) == 2:
        return gx, gw
    if not needs[2]:
        return gx, gw, None
    return gx, gw, gemm.column_sums(g2)


class Einsum(Function):
    """Einstein summation over explicit subscripts ``"ij,jk->ik"``.

    The gradient of each operand is another einsum of the output gradient with
    the other operands. Subscripts may not repeat within one operand (no
    diagonals) and every output letter must appear in an input.
    """

    def __init__(self, inputs: list[str], output: str) -> None:
        self.in_subs, self.out_sub = inputs, output

    def forward(self, *xs: Any) -> Any:
        spec = ",".join(self.in_subs) + "->" + self.out_sub
        return xp_of(xs[0]).einsum(spec, *xs, optimize=len(xs) > 2)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        grads = []
        for i, sub in enumerate(self.in_subs):
            if not self.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [s for j, s in enumerate(self.in_subs) if j != i]
            tensors = [t for j, t in enumerate(self.inputs) if j != i]
            grads.append(_einsum_grad(self.out_sub, gy, others, tensors, sub, self.inputs[i]))
        return tuple(grads)


def _einsum_grad(out_sub: str, gy: Tensor, others: list[str], tensors: list[Tensor], target: str,
                 x: Tensor) -> Tensor:
    """Gradient of one einsum operand; letters summed away in it are broadcast back."""
    from nurinet.autograd.broadcast import broadcast_to
    from nurinet.functional.shape import reshape

    present = set(out_sub).union(*others)
    kept = "".join(c for c in target if c in present)
    g = Einsum([out_sub, *others], kept)(gy, *tensors)
    if kept == target:
        return g
    # A letter only in this operand was summed out in forward: its gradient is constant along it.
    shape = tuple(x.shape[target.index(c)] if c in kept else 1 for c in target)
    return broadcast_to(reshape(g, shape), x.shape)


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with NumPy's ``@`` rules (1-D operands and broadcast batch dims)."""
    from nurinet.functional.shape import reshape, squeeze

    a, b = operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: both operands must have at least one dimension; use mul for scalars")
    _check_matmul(a.shape, b.shape)
    if a.ndim == 1 and b.ndim == 1:
        return squeeze(MatMul()(reshape(a, (1, -1)), reshape(b, (-1, 1))))
    if a.ndim == 1:
        return squeeze(MatMul()(reshape(a, (1, -1)), b), -2)
    if b.ndim == 1:
        return squeeze(MatMul()(a, reshape(b, (-1, 1))), -1)
    return MatMul()(a, b)


def _check_matmul(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    inner_a = a[-1]
    inner_b = b[0] if len(b) == 1 else b[-2]
    if inner_a != inner_b:
        raise ValueError(
            f"matmul: shapes {a} and {b} do not fit: the last dim of the first ({inner_a}) must "
            f"equal the {'only' if len(b) == 1 else 'second-to-last'} dim of the second ({inner_b})"
        )


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias``: the affine map of a fully connected layer.

    Shape:
        x: (*, in_features); weight: (out_features, in_features); bias: (out_features,);
        output: (*, out_features).
    """
    return _affine(Linear, x, weight, bias)


def linear_relu(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``relu(x @ weight.T + bias)`` as one op (see :class:`LinearReLU`); :class:`~nurinet.nn.Sequential`
    runs a ``Linear`` followed by a ``ReLU`` this way.

    Shape:
        x: (*, in_features); weight: (out_features, in_features); bias: (out_features,);
        output: (*, out_features).
    """
    return _affine(LinearReLU, x, weight, bias)


def _affine(op: type[Function], x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    # The common case, checked on the arrays; anything else gets _check_linear's full checks.
    if not (isinstance(x, Tensor) and isinstance(weight, Tensor) and _fits(x.array, weight.array)):
        _check_linear(x, weight)
    if bias is None:
        return op()(x, weight)
    return op()(x, weight, bias)


def _fits(x: Any, weight: Any) -> bool:
    """Whether the arrays pass :func:`_check_linear`'s checks, in the common case (else False)."""
    return (weight.ndim == 2 and x.ndim != 0 and x.shape[-1] == weight.shape[1]
            and (x.dtype is weight.dtype or x.dtype == weight.dtype))


def _check_linear(x: Any, weight: Any) -> None:
    """Raise for an input whose features or dtype do not fit ``weight``."""
    if x.shape[-1:] != weight.shape[1:]:
        raise ValueError(
            f"linear: input of shape {x.shape} has {x.shape[-1] if x.ndim else 0} features but the "
            f"weight of shape {weight.shape} expects {weight.shape[1]}"
        )
    check_operand_dtype(x, weight, "linear")  # mixed dtypes would fail later, in backward


_SUBSCRIPT = re.compile(r"^[a-zA-Z]*$")


def einsum(subscripts: str, *operands_: Any) -> Tensor:
    """Einstein summation, e.g. ``einsum("bij,bjk->bik", a, b)``.

    Implicit output (no ``->``) follows NumPy: letters that appear once, sorted.
    """
    spec = subscripts.replace(" ", "")
    if "..." in spec:
        raise ValueError("einsum: ellipsis ('...') is not supported; name every axis")
    ins, _, out = spec.partition("->")
    in_subs = ins.split(",")
    if "->" not in spec:
        letters = "".join(in_subs)
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if len(in_subs) != len(operands_):
        raise ValueError(f"einsum: '{subscripts}' names {len(in_subs)} operands, got {len(operands_)}")
    tensors = [op if isinstance(op, Tensor) else Tensor(op) for op in operands_]
    for sub, t in zip(in_subs, tensors):
        if not _SUBSCRIPT.match(sub) or len(set(sub)) != len(sub) or len(sub) != t.ndim:
            raise ValueError(
                f"einsum: subscript '{sub}' does not fit an operand of shape {t.shape} "
                "(one distinct letter per axis)"
            )
    return Einsum(in_subs, out)(*tensors)
