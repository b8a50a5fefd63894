"""Higher-level derivatives of functions, as ``torch.autograd.functional``: vjp, jvp, jacobian, hessian, hvp, vhp.

Each takes a function ``func(*inputs)`` of Tensors and the point ``inputs`` (a Tensor
or a tuple of Tensors), runs ``func`` on copies of the inputs cut from any graph they
belong to, and differentiates the result with the reverse-mode engine
(:func:`nurinet.grad`). A single Tensor in gives a single Tensor out; a tuple in gives
a tuple out, as in PyTorch:

* ``vjp``: ``v^T J`` (one backward pass).
* ``jvp``: ``J v`` by the double-backward trick: ``g(u) = J^T u`` is linear in a dummy
  ``u``, so ``J v = d/du (g(u) . v)`` (nurinet has no forward mode; neither does
  PyTorch's version of this function).
* ``jacobian``: one backward per output element (``strategy="reverse-mode"``) or one
  ``jvp`` per input element (``"forward-mode"``); the Jacobian of output ``i`` with
  respect to input ``j`` has shape ``output_i.shape + input_j.shape``.
* ``hessian``: the Jacobian of the gradient (a scalar function).
* ``vhp``: ``v^T H`` (the gradient's vjp); ``hvp``: ``H v`` (the double-backward trick on
  the gradient). For a twice-differentiable function the two are equal.

``create_graph=True`` records the results' graph (for derivatives of them); otherwise
they are constants. ``strict=True`` raises when an output does not depend on an input,
where the default returns zeros (the mathematical value). ``vectorize`` is accepted for
PyTorch's signature; nurinet has no ``vmap`` and computes the same values one row at a
time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nurinet import backend
from nurinet.autograd.engine import grad
from nurinet.autograd.grad_mode import enable_grad
from nurinet.autograd.tensor import Tensor

TensorOrTensors = Tensor | tuple[Tensor, ...]
STRATEGIES = ("forward-mode", "reverse-mode")

__all__ = ["hessian", "hvp", "jacobian", "jvp", "vhp", "vjp"]


# ----- the public functions ----------------------------------------------------------------
def vjp(func: Callable[..., Any], inputs: TensorOrTensors, v: TensorOrTensors | None = None,
        create_graph: bool = False, strict: bool = False) -> tuple[Any, Any]:
    """The vector-Jacobian product ``v^T J`` of ``func`` at ``inputs``.

    Args:
        func: A function of Tensors returning a Tensor or a tuple of Tensors.
        inputs: The point: a Tensor or a tuple of Tensors.
        v: One Tensor per output, shaped as it; optional when ``func`` returns one
            single-element Tensor (then ``v = 1``).
        create_graph: Record the results' graph.
        strict: Raise when an output does not depend on an input (else: zeros).

    Returns:
        ``(func_output, vjp)``, ``vjp`` shaped as ``inputs``.
    """
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _grad_preprocess(inputs, create_graph, need_graph=True)
        is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", "vjp")
        _check_requires_grad(outputs, "outputs", strict)
        v = _vector_for(v, outputs, is_outputs_tuple, create_graph, "vjp", "user-provided function returns "
                        "a single Tensor with a single element.")
        result = _autograd_grad(outputs, inputs, v, create_graph)
        result = _fill_in_zeros(result, inputs, strict, create_graph, "back")
    return (_tuple_postprocess(_postprocess(outputs, create_graph), is_outputs_tuple),
            _tuple_postprocess(_postprocess(result, create_graph), is_inputs_tuple))


def jvp(func: Callable[..., Any], inputs: TensorOrTensors, v: TensorOrTensors | None = None,
        create_graph: bool = False, strict: bool = False) -> tuple[Any, Any]:
    """The Jacobian-vector product ``J v`` of ``func`` at ``inputs`` (double-backward trick).

    Args:
        func: A function of Tensors returning a Tensor or a tuple of Tensors.
        inputs: The point: a Tensor or a tuple of Tensors.
        v: One Tensor per input, shaped as it; optional for one single-element input.
        create_graph: Record the results' graph.
        strict: Raise when an output does not depend on an input (else: zeros).

    Returns:
        ``(func_output, jvp)``, ``jvp`` shaped as the outputs.
    """
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _grad_preprocess(inputs, create_graph, need_graph=True)
        v = _vector_for(v, inputs, is_inputs_tuple, create_graph, "jvp", "input to the user-provided "
                        "function is a single Tensor with a single element.")
        is_outputs_tuple, outputs, trick = _jvp_trick(func, inputs, strict, "jvp")
        result = trick(v, create_graph, retain_graph=None)
    return (_tuple_postprocess(_postprocess(outputs, create_graph), is_outputs_tuple),
            _tuple_postprocess(_postprocess(result, create_graph), is_outputs_tuple))


def _jvp_trick(func: Callable[..., Any], inputs: tuple[Tensor, ...], strict: bool,
               name: str) -> tuple[bool, tuple[Tensor, ...], Callable[..., tuple[Any, ...]]]:
    """``func``'s outputs and ``trick(v, create_graph, retain_graph)`` giving ``J v``, by the
    double-backward trick: ``J^T u`` is built once, and each ``J v`` is one more backward of it."""
    is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", name)
    _check_requires_grad(outputs, "outputs", strict)
    # J^T u is linear in u, so u's value never matters: zeros keep it free of inf and NaN.
    dummies = tuple(_zeros_like(out, requires_grad=True) for out in outputs)
    grad_inputs = _autograd_grad(outputs, inputs, dummies, create_graph=True)
    _check_requires_grad(grad_inputs, "grad_inputs", strict)

    def trick(v: Any, create_graph: bool, retain_graph: bool | None) -> tuple[Any, ...]:
        result = _autograd_grad(grad_inputs, dummies, v, create_graph, retain_graph=retain_graph)
        return _fill_in_zeros(result, outputs, strict, create_graph, "back_trick")

    return is_outputs_tuple, outputs, trick


def jacobian(func: Callable[..., Any], inputs: TensorOrTensors, create_graph: bool = False,
             strict: bool = False, vectorize: bool = False, strategy: str = "reverse-mode") -> Any:
    """The Jacobian of ``func`` at ``inputs``.

    Reverse mode: row ``j`` of output ``i``'s Jacobian is the gradient of its ``j``-th
    element (one backward pass each). Forward mode: column ``k`` is ``J e_k`` from
    :func:`jvp` (one per input element; cheaper when the outputs outnumber the inputs).

    Args:
        func: A function of Tensors returning a Tensor or a tuple of Tensors.
        inputs: The point: a Tensor or a tuple of Tensors.
        create_graph: Record the results' graph.
        strict: Raise when an output does not depend on an input (else: zeros).
        vectorize: Accepted for PyTorch's signature (the values are the same).
        strategy: ``"reverse-mode"`` or ``"forward-mode"``.

    Returns:
        A Tensor of shape ``output.shape + input.shape`` for one output and one input;
        a tuple over the inputs (for one output), over the outputs (for one input), or a
        tuple of tuples ``J[i][j]`` for several of both.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f'Expected strategy to be either "forward-mode" or "reverse-mode", got {strategy!r}')
    if strategy == "forward-mode":
        return _jacobian_forward(func, inputs, create_graph, strict)
    with enable_grad():
        is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _grad_preprocess(inputs, create_graph, need_graph=True)
        is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function",
                                              "jacobian")
        _check_requires_grad(outputs, "outputs", strict)
        result = tuple(_jacobian_rows(i, out, inputs, create_graph, strict) for i, out in enumerate(outputs))
    return _tuple_postprocess(_postprocess(result, create_graph), (is_outputs_tuple, is_inputs_tuple))


def hessian(func: Callable[..., Any], inputs: TensorOrTensors, create_graph: bool = False,
            strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode") -> Any:
    """The Hessian of the scalar function ``func`` at ``inputs``: the Jacobian of its gradient.

    Args:
        func: A function of Tensors returning a single-element Tensor.
        inputs: The point: a Tensor or a tuple of Tensors.
        create_graph: Record the results' graph.
        strict: Raise when the gradient does not depend on an input (else: zeros).
        vectorize: Accepted for PyTorch's signature (the values are the same).
        outer_jacobian_strategy: How the Jacobian of the gradient is computed
            (``"reverse-mode"`` or ``"forward-mode"``).

    Returns:
        A Tensor of shape ``input.shape + input.shape`` for one input; for a tuple of
        inputs, a tuple of tuples ``H[i][j]`` of shape ``input_i.shape + input_j.shape``.
    """
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    if outer_jacobian_strategy not in STRATEGIES:
        raise ValueError('Expected strategy to be either "forward-mode" or "reverse-mode", got '
                         f"{outer_jacobian_strategy!r}")

    def scalar_function(*inp: Tensor) -> Tensor:
        out = func(*inp)
        is_out_tuple, t_out = _as_tuple(out, "outputs of the user-provided function", "hessian")
        _check_requires_grad(t_out, "outputs", strict)
        if is_out_tuple or not isinstance(out, Tensor):
            raise RuntimeError("The function given to hessian should return a single Tensor")
        if out.array.size != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should contain a "
                               "single element")
        return out.reshape(())

    def jacobian_function(*inp: Tensor) -> Any:
        if outer_jacobian_strategy == "forward-mode":
            inp = tuple(t.requires_grad_(True) for t in inp)
        jac = jacobian(scalar_function, inp, create_graph=True)
        _check_requires_grad(jac, "jacobian", strict)
        return jac

    result = jacobian(jacobian_function, inputs, create_graph=create_graph, strict=strict,
                      vectorize=vectorize, strategy=outer_jacobian_strategy)
    return _tuple_postprocess(result, (is_inputs_tuple, is_inputs_tuple))


def vhp(func: Callable[..., Any], inputs: TensorOrTensors, v: TensorOrTensors | None = None,
        create_graph: bool = False, strict: bool = False) -> tuple[Any, Any]:
    """The vector-Hessian product ``v^T H`` of the scalar function ``func`` at ``inputs``.

    Args:
        func: A function of Tensors returning a single-element Tensor.
        inputs: The point: a Tensor or a tuple of Tensors.
        v: One Tensor per input, shaped as it; optional for one single-element input.
        create_graph: Record the results' graph.
        strict: Raise when the gradient does not depend on an input (else: zeros).

    Returns:
        ``(func_output, vhp)``, ``vhp`` shaped as ``inputs``.
    """
    with enable_grad():
        is_inputs_tuple, inputs, v, outputs, jac = _scalar_gradient_at(func, inputs, v, create_graph, strict,
                                                                       "vhp")
        result = _autograd_grad(jac, inputs, v, create_graph)
        result = _fill_in_zeros(result, inputs, strict, create_graph, "double_back")
    return _output_and_product(outputs, result, create_graph, is_inputs_tuple)


def hvp(func: Callable[..., Any], inputs: TensorOrTensors, v: TensorOrTensors | None = None,
        create_graph: bool = False, strict: bool = False) -> tuple[Any, Any]:
    """The Hessian-vector product ``H v`` of the scalar function ``func`` at ``inputs``.

    Computed as ``d/du ((H^T u) . v)`` with a dummy ``u`` (the double-backward trick applied
    to the gradient), as PyTorch does; equal to :func:`vhp` for a twice-differentiable
    function, whose Hessian is symmetric.

    Args:
        func: A function of Tensors returning a single-element Tensor.
        inputs: The point: a Tensor or a tuple of Tensors.
        v: One Tensor per input, shaped as it; optional for one single-element input.
        create_graph: Record the results' graph.
        strict: Raise when the gradient does not depend on an input (else: zeros).

    Returns:
        ``(func_output, hvp)``, ``hvp`` shaped as ``inputs``.
    """
    with enable_grad():
        is_inputs_tuple, inputs, v, outputs, jac = _scalar_gradient_at(func, inputs, v, create_graph, strict,
                                                                       "hvp")
        dummies = tuple(_zeros_like(inp, requires_grad=True) for inp in inputs)
        double_back = _autograd_grad(jac, inputs, dummies, create_graph=True)
        _check_requires_grad(jac, "hessian", strict)
        result = _autograd_grad(double_back, dummies, v, create_graph)
        result = _fill_in_zeros(result, inputs, strict, create_graph, "double_back_trick")
    return _output_and_product(outputs, result, create_graph, is_inputs_tuple)


# ----- the pieces they share -------------------------------------------------------------------
def _as_tuple(value: Any, arg_name: str, fn_name: str) -> tuple[bool, tuple[Tensor, ...]]:
    """``(was_a_tuple, value as a tuple)``; every element must be a Tensor."""
    is_tuple = isinstance(value, tuple)
    items = value if is_tuple else (value,)
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            where = f"the value at index {i}" if is_tuple else f"the given {arg_name}"
            raise TypeError(f"The {arg_name} given to {fn_name} must be either a Tensor or a tuple of "
                            f"Tensors but {where} has type {type(item)}.")
    return is_tuple, items


def _tuple_postprocess(result: Any, to_unpack: bool | tuple[bool, bool]) -> Any:
    """Undo :func:`_as_tuple`: unwrap the levels that were single Tensors."""
    if isinstance(to_unpack, tuple):
        if not to_unpack[1]:
            result = tuple(row[0] for row in result)
        return result if to_unpack[0] else result[0]
    return result if to_unpack else result[0]


def _grad_preprocess(inputs: Sequence[Tensor], create_graph: bool, need_graph: bool) -> tuple[Tensor, ...]:
    """New Tensor objects for the inputs: cut from their graph, or (``create_graph``) linked to it.

    A new object every time, so the function's own references to the same tensors (captured
    from outside) are not mistaken for the inputs.
    """
    # The ops live one layer up; imported where needed, as Tensor's methods are.
    from nurinet.functional.shape import Reshape

    result = []
    for inp in inputs:
        if create_graph and inp.requires_grad:
            result.append(Reshape(inp.shape)(inp))  # a differentiable alias, as PyTorch's view_as
        else:
            result.append(Tensor._wrap(inp.array, need_graph))
    return tuple(result)


def _postprocess(values: Any, create_graph: bool) -> Any:
    """The results as constants unless their graph was asked for (nested tuples too)."""
    if isinstance(values, Tensor):
        return values if create_graph else values.detach()
    return tuple(_postprocess(v, create_graph) for v in values)


def _vector_for(v: Any, refs: tuple[Tensor, ...], is_refs_tuple: bool, create_graph: bool, fn_name: str,
                none_rule: str) -> tuple[Tensor, ...] | None:
    """``v`` checked against ``refs`` (the outputs for vjp, the inputs for jvp, hvp and vhp)."""
    if v is None:
        if len(refs) != 1 or refs[0].array.size != 1:
            raise RuntimeError(f"The vector v can only be None if the {none_rule}")
        return None
    _, v = _as_tuple(v, "v", fn_name)
    v = _grad_preprocess(v, create_graph, need_graph=False)
    if len(v) != len(refs):
        if is_refs_tuple:
            raise RuntimeError(f"v is a tuple of invalid length: should be {len(refs)} but got {len(v)}.")
        raise RuntimeError("The given v should contain a single Tensor.")
    for i, (vi, ref) in enumerate(zip(v, refs)):
        if vi.shape != ref.shape:
            prefix = f"Entry {i} in " if is_refs_tuple else ""
            raise RuntimeError(f"{prefix}v has invalid size: should be {ref.shape} but got {vi.shape}.")
    return v


def _scalar_gradient_at(func: Callable[..., Any], inputs: Any, v: Any, create_graph: bool, strict: bool,
                        fn_name: str) -> tuple[bool, tuple[Tensor, ...], Any, tuple[Tensor, ...], tuple[Any, ...]]:
    """hvp's and vhp's common start: the inputs, ``v``, the checked scalar output and its gradient
    (with its graph, which both differentiate again)."""
    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", fn_name)
    inputs = _grad_preprocess(inputs, create_graph, need_graph=True)
    v = _vector_for(v, inputs, is_inputs_tuple, create_graph, fn_name, "input to the user-provided "
                    "function is a single Tensor with a single element.")
    is_outputs_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", fn_name)
    _check_requires_grad(outputs, "outputs", strict)
    if is_outputs_tuple:
        raise RuntimeError(f"The function given to {fn_name} should return a single Tensor")
    if outputs[0].array.size != 1:
        raise RuntimeError(f"The Tensor returned by the function given to {fn_name} should contain a "
                           "single element")
    jac = _autograd_grad(outputs, inputs, create_graph=True)
    _check_requires_grad(jac, "jacobian", strict)
    return is_inputs_tuple, inputs, v, outputs, jac


def _output_and_product(outputs: tuple[Tensor, ...], result: tuple[Any, ...], create_graph: bool,
                        is_inputs_tuple: bool) -> tuple[Any, Any]:
    """hvp's and vhp's result: ``(func_output, product)``, the product shaped as the inputs."""
    return (_tuple_postprocess(_postprocess(outputs, create_graph), False),
            _tuple_postprocess(_postprocess(result, create_graph), is_inputs_tuple))


def _autograd_grad(outputs: Sequence[Tensor | None], inputs: Sequence[Tensor], grad_outputs: Any = None,
                   create_graph: bool = False, retain_graph: bool | None = None) -> tuple[Any, ...]:
    """:func:`nurinet.grad` over the outputs that have a graph; None for unused inputs."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    kept = [(out, g) for out, g in zip(outputs, grad_outputs) if out is not None and out.requires_grad]
    if not kept or not any(inp.requires_grad for inp in inputs):
        return (None,) * len(inputs)
    usable = [inp for inp in inputs if inp.requires_grad]
    found = iter(grad([out for out, _ in kept], usable, [g for _, g in kept], create_graph=create_graph,
                      retain_graph=retain_graph, allow_unused=True))
    return tuple(next(found) if inp.requires_grad else None for inp in inputs)


def _zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return Tensor._wrap(backend.get_array_module(t.array).zeros_like(t.array), requires_grad)


STRICT_MESSAGES = {
    "back": "The output of the user-provided function is independent of input {i}. This is not allowed "
            "in strict mode.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the "
                  "grad_outputs when using the double backward trick to compute forward mode "
                  "gradients. This is not allowed in strict mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. This is "
                   "not allowed in strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry {i} in "
                         "the grad_jacobian. This is not allowed in strict mode as it prevents from "
                         "using the double backward trick to replace forward mode AD.",
}


def _fill_in_zeros(grads: Sequence[Any], refs: Sequence[Tensor], strict: bool, create_graph: bool,
                   stage: str) -> tuple[Tensor, ...]:
    """Zeros where a gradient is None (an independent input), or PyTorch's error in strict mode."""
    result = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise RuntimeError(STRICT_MESSAGES[stage].format(i=i))
            g = _zeros_like(refs[i])
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if "double" in stage else "jacobian"
            raise RuntimeError(f"The {what} of the user-provided function is independent of input {i}. "
                               "This is not allowed in strict mode when create_graph=True.")
        result.append(g)
    return tuple(result)


def _check_requires_grad(values: Sequence[Any], kind: str, strict: bool) -> None:
    """PyTorch's strict-mode errors for outputs, gradients, Jacobians and Hessians without a graph."""
    if not strict:
        return
    for i, value in enumerate(values):
        if value is None:
            raise RuntimeError(f"The output of the user-provided function is independent of input {i}. "
                               "This is not allowed in strict mode.")
        if isinstance(value, tuple) or value.requires_grad:
            continue
        if kind == "hessian":
            raise RuntimeError(f"The hessian of the user-provided function with respect to input {i} is "
                               "independent of the input. This is not allowed in strict mode. You should "
                               "ensure that your function is thrice differentiable and that the hessian "
                               "depends on the inputs.")
        if kind == "jacobian":
            raise RuntimeError("While computing the hessian, found that the jacobian of the user-provided "
                               f"function with respect to input {i} is independent of the input. This is "
                               "not allowed in strict mode. You should ensure that your function is twice "
                               "differentiable and that the jacobian depends on the inputs (this would be "
                               "violated by a linear function for example).")
        if kind == "grad_inputs":
            raise RuntimeError(f"The gradient with respect to input {i} is independent of the inputs of the "
                               "user-provided function. This is not allowed in strict mode.")
        raise RuntimeError(f"Output {i} of the user-provided function does not require gradients. The "
                           "outputs must be computed in a differentiable manner from the input when "
                           "running in strict mode.")


def _jacobian_rows(i: int, out: Tensor, inputs: tuple[Tensor, ...], create_graph: bool,
                   strict: bool) -> tuple[Tensor, ...]:
    """Output ``i``'s Jacobian with respect to each input, one backward pass per output element."""
    from nurinet.functional.shape import stack

    rows: list[list[Tensor]] = [[] for _ in inputs]
    flat = out.reshape(-1)
    for j in range(out.array.size):
        found = _autograd_grad((flat[j],), inputs, retain_graph=True, create_graph=create_graph)
        for k, (g, inp) in enumerate(zip(found, inputs)):
            if g is None:
                if strict:
                    raise RuntimeError(f"Output {i} of the user-provided function is independent of input "
                                       f"{k}. This is not allowed in strict mode.")
                g = _zeros_like(inp)
            elif strict and create_graph and not g.requires_grad:
                raise RuntimeError(f"The jacobian of the user-provided function is independent of input {i}. "
                                   "This is not allowed in strict mode when create_graph=True.")
            rows[k].append(g)
    return tuple(_assemble(stack, rows_k, out.shape + inp.shape, inp)
                 for rows_k, inp in zip(rows, inputs))


def _jacobian_forward(func: Callable[..., Any], inputs: Any, create_graph: bool, strict: bool) -> Any:
    """The Jacobian column by column: ``J e_k`` by :func:`jvp` for every element ``k`` of every input."""
    from nurinet.functional.shape import stack

    is_inputs_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
    if not any(inp.array.size for inp in inputs):  # nothing to differentiate by: run func for the shapes
        with enable_grad():
            returned = func(*_grad_preprocess(inputs, False, need_graph=True))
        is_outputs_tuple, outputs = _as_tuple(returned, "outputs of the user-provided function", "jacobian")
        columns = [[[] for _ in outputs] for _ in inputs]
    else:
        with enable_grad():
            inputs = _grad_preprocess(inputs, create_graph, need_graph=True)
            is_outputs_tuple, outputs, trick = _jvp_trick(func, inputs, strict, "jacobian")
            columns = [[[_postprocess(jv, create_graph)
                         for jv in trick(_unit(inputs, i, k), create_graph, retain_graph=True)]
                        for k in range(inp.array.size)] for i, inp in enumerate(inputs)]
        outputs = _postprocess(outputs, create_graph)
        # columns[i][k][o] -> columns[i][o][k]
        columns = [[[col[o] for col in per_k] for o in range(len(outputs))] for per_k in columns]
    result = tuple(
        tuple(_columns_to_jacobian(stack, columns[i][o], outputs[o], inputs[i]) for i in range(len(inputs)))
        for o in range(len(outputs)))
    return _tuple_postprocess(result, (is_outputs_tuple, is_inputs_tuple))


def _unit(inputs: tuple[Tensor, ...], i: int, k: int) -> tuple[Tensor, ...]:
    """The basis vector ``e_k`` of input ``i``: zeros in every input but a 1 at element ``k`` of input ``i``."""
    basis = tuple(_zeros_like(inp) for inp in inputs)
    basis[i].array.reshape(-1)[k] = 1  # a fresh C-contiguous array: reshape is a view of it
    return basis


def _columns_to_jacobian(stack: Any, columns: list[Tensor], out: Tensor, inp: Tensor) -> Tensor:
    """Columns ``J e_k`` (each shaped as the output) as a Jacobian of shape ``out.shape + inp.shape``."""
    if not columns:
        return _empty(out.shape + inp.shape, inp)
    stacked = stack([c.reshape(-1) for c in columns], axis=1)  # (out.size, inp.size)
    return stacked.reshape(out.shape + inp.shape)


def _assemble(stack: Any, rows: list[Tensor], shape: tuple[int, ...], inp: Tensor) -> Tensor:
    if not rows:
        return _empty(shape, inp)
    return stack(rows, axis=0).reshape(shape)


def _empty(shape: tuple[int, ...], like: Tensor) -> Tensor:
    return Tensor._wrap(backend.get_array_module(like.array).zeros(shape, dtype=like.array.dtype), False)
