"""A generic test harness for layers: one call checks what every layer must satisfy.

Usage::

    from tests.nn.harness import check_layer

    def test_linear():
        check_layer(nn.Linear(4, 3), (5, 4), (5, 3), expected_param_count=4 * 3 + 3)

``check_layer`` asserts, with a message naming the layer:

1. the output shape, and that the output keeps the input's float dtype;
2. the number of scalar parameters;
3. a ``state_dict`` round trip: the values are copies, and a fresh layer (a deep
   copy whose parameters and buffers are overwritten with noise, or one made by
   ``make_fresh``) loaded with the state gives identical outputs in eval mode;
4. one hand-written SGD step (``p.array -= lr * p.grad.array``) on the loss
   ``mean((y - target)^2)`` lowers it, after checking every trainable parameter got a
   gradient of its shape and dtype (``lr`` is halved until the loss drops: the
   check is about the direction of the gradient, not the size of the step);
5. train vs eval: with ``train_eval_differ=True`` the training-mode output differs
   from the evaluation-mode output and eval is deterministic; otherwise both modes agree;
6. the dtype policy (PyTorch's): a layer with parameters refuses, at forward, a float
   input of the other float dtype (float64 for a float32 layer, float32 for a float64
   one) and an integer input where it takes a float input, with a ValueError or
   TypeError that names the layer class (or, for a container, the class of the layer
   that met the input) and both dtypes (see :func:`check_refuses_other_dtypes`).

With ``device="cuda"`` the layer and its inputs are moved to the GPU first and every check runs
there (tests/test_gpu_double.py runs it on the CuPy double of tests/fake_cupy.py).

Layers that draw random numbers while training (dropout) should pass
``train_eval_differ=True``: the SGD check then runs in eval mode, where the layer
is a deterministic function. Layers whose input is not a float tensor of a shape
(embeddings, attention with several inputs) pass ``inputs=`` instead of ``input_shape``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import nurinet
from nurinet import Tensor, backend
from nurinet.nn import Module


def check_layer(
    layer: Module,
    input_shape: Sequence[int] | None,
    expected_output_shape: Sequence[int],
    expected_param_count: int,
    train_eval_differ: bool = False,
    inputs: Tensor | Sequence[Tensor] | None = None,
    make_fresh: Callable[[], Module] | None = None,
    seed: int = 0,
    device: str = "cpu",
) -> None:
    """Run the generic layer checks (see the module docstring); raise AssertionError on failure.

    Args:
        layer: The layer under test (left in the mode it was given in).
        input_shape: Shape of a random float input in the layer's parameter dtype
            (float32 for parameterless layers); ignored when ``inputs`` is given.
        expected_output_shape: Shape of the (first) output.
        expected_param_count: Total number of scalar parameters.
        train_eval_differ: Whether training mode computes something else than eval mode.
        inputs: Explicit input(s) instead of a random one.
        make_fresh: Builds an independent layer of the same architecture for the
            state_dict round trip (default: a perturbed deep copy).
        seed: Seed of the random input, targets and perturbations.
        device: Where the checks run: the layer and the inputs are moved there first.
    """
    rng = np.random.default_rng(seed)
    if device != "cpu":
        layer.to(device)
    args = [a.to(device) for a in _inputs(layer, input_shape, inputs, rng)]
    was_training = layer.training
    try:
        out = _first(layer.train()(*args))
        name = type(layer).__name__
        assert out.shape == tuple(expected_output_shape), \
            f"{name}: output shape {out.shape}, expected {tuple(expected_output_shape)}"
        float_in = [a for a in args if a.dtype.kind == "f"]
        if float_in and out.dtype.kind == "f":
            assert out.dtype == float_in[0].dtype, f"{name}: a {float_in[0].dtype} input gave {out.dtype}"
        count = sum(p.numel() for p in layer.parameters())
        assert count == expected_param_count, f"{name}: {count} parameters, expected {expected_param_count}"
        assert isinstance(repr(layer), str) and name in repr(layer)
        _check_state_round_trip(layer, args, make_fresh, rng, device)
        _check_modes(layer, args, train_eval_differ)
        _check_sgd_step(layer, args, train_eval_differ, rng)
        check_refuses_other_dtypes(layer, args)
    finally:
        layer.train(was_training)


def check_refuses_other_dtypes(layer: Module, args: Sequence[Tensor]) -> None:
    """Assert that ``layer`` refuses inputs whose dtype is not its parameters' dtype.

    Each float input in turn, then all of them together, is given the other float dtype, then
    an integer dtype; every call must raise a ValueError or TypeError naming the layer class (or
    a submodule's class: a container reports the layer that met the input) and both dtypes. A
    layer without parameters follows its input's dtype, and one without float inputs (an
    embedding takes integer indices) has none to refuse: both pass trivially.

    Args:
        layer: The layer under test.
        args: Valid inputs, in the parameters' dtype.
    """
    dtype = _parameter_dtype(layer)
    floats = [i for i, a in enumerate(args) if a.dtype.kind == "f"]
    if dtype is None or not floats:
        return
    other = np.dtype(np.float64 if dtype == np.float32 else np.float32)
    groups = [[i] for i in floats] + ([floats] if len(floats) > 1 else [])
    for bad, positions in [(other, group) for group in groups] + [(np.dtype(np.int64), floats)]:
        _expect_dtype_error(layer, args, positions, bad, dtype)


def _parameter_dtype(layer: Module) -> np.dtype | None:
    """The dtype of the layer's first floating-point parameter, or None when it has none."""
    return next((p.dtype for p in layer.parameters() if p.dtype.kind == "f"), None)


def _expect_dtype_error(layer: Module, args: Sequence[Tensor], positions: list[int], bad: np.dtype,
                        dtype: np.dtype) -> None:
    name = type(layer).__name__
    converted = [_on(a.device, a.numpy().astype(bad)) if i in positions else a for i, a in enumerate(args)]
    try:
        with nurinet.no_grad():
            layer(*converted)
    except (TypeError, ValueError) as error:
        message = str(error)
        names = {type(m).__name__ for m in layer.modules()}
        assert any(n in message for n in names), f"{name}: the dtype error does not name the layer: {message}"
        assert str(bad) in message and str(dtype) in message, \
            f"{name}: the dtype error does not name both dtypes ({bad} input, {dtype} parameters): {message}"
    else:
        raise AssertionError(f"{name}: a {bad} input (argument {positions}) was accepted by a layer with "
                             f"{dtype} parameters; refuse it with a clear error (check_input_dtype)")


def _inputs(layer: Module, shape: Any, inputs: Any, rng: np.random.Generator) -> list[Tensor]:
    if inputs is not None:
        return [inputs] if isinstance(inputs, Tensor) else list(inputs)
    params = list(layer.parameters())
    dtype = params[0].dtype if params else np.float32
    return [Tensor(rng.standard_normal(tuple(shape)).astype(dtype))]


def _on(device: str, array: np.ndarray) -> Tensor:
    """A tensor of the host ``array`` on ``device``."""
    return Tensor(backend.to_device(array, device))


def _first(output: Any) -> Tensor:
    """The first Tensor of an output that may be a Tensor or a (nested) tuple of them."""
    while isinstance(output, (tuple, list)):
        output = output[0]
    return output


def _tensors(output: Any) -> list[Tensor]:
    if isinstance(output, Tensor):
        return [output]
    return [t for item in output for t in _tensors(item)]


def _eval_output(layer: Module, args: list[Tensor]) -> np.ndarray:
    with nurinet.no_grad():
        return np.array(_first(layer.eval()(*args)).numpy(), copy=True)


def _check_state_round_trip(layer: Module, args: list[Tensor], make_fresh: Any,
                            rng: np.random.Generator, device: str = "cpu") -> None:
    name = type(layer).__name__
    state = layer.state_dict()
    snapshot = {key: np.array(value, copy=True) for key, value in state.items()}
    for key, value in state.items():
        assert isinstance(value, np.ndarray), f"{name}: state_dict[{key!r}] is not a NumPy array"
        if value.size and value.dtype.kind == "f":
            value += 1.0  # the values are copies: changing them must not change the layer
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, snapshot[key], err_msg=f"{name}: state_dict shares {key}")
    before = _eval_output(layer, args)
    fresh = make_fresh().to(device) if make_fresh is not None else _perturbed_copy(layer, rng)
    fresh.load_state_dict(snapshot)
    for value in snapshot.values():
        if value.size and value.dtype.kind == "f":
            value += 1.0  # loading copies too: the fresh layer must not share the given arrays
    after = _eval_output(fresh, args)
    np.testing.assert_array_equal(after, before, err_msg=f"{name}: outputs differ after a state_dict round trip")


def _perturbed_copy(layer: Module, rng: np.random.Generator) -> Module:
    fresh = copy.deepcopy(layer)
    for tensor in [*fresh.parameters(), *fresh.buffers()]:
        if tensor.dtype.kind == "f":
            noise = rng.standard_normal(tensor.shape).astype(tensor.dtype)
            tensor.array = tensor.array + backend.to_device(noise, tensor.device)
    return fresh


def _check_modes(layer: Module, args: list[Tensor], train_eval_differ: bool) -> None:
    name = type(layer).__name__
    state = layer.state_dict()  # training mode may update buffers (running statistics): restore them
    evaluated = _eval_output(layer, args)
    with nurinet.no_grad():
        trained = _first(layer.train()(*args)).numpy()
    layer.load_state_dict(state)
    if train_eval_differ:
        assert not np.allclose(trained, evaluated), f"{name}: training and eval outputs should differ"
        assert np.array_equal(evaluated, _eval_output(layer, args)), f"{name}: eval output is not deterministic"
    else:
        np.testing.assert_allclose(trained, evaluated, rtol=1e-6, atol=1e-6,
                                   err_msg=f"{name}: training and eval outputs should agree")


def _loss(layer: Module, args: list[Tensor], targets: list[np.ndarray]) -> Tensor:
    outputs = [y for y in _tensors(layer(*args)) if y.dtype.kind == "f"]
    total = None
    for y, t in zip(outputs, targets):
        term = ((y - _on(y.device, t)) ** 2).mean()
        total = term if total is None else total + term
    return total


def _check_sgd_step(layer: Module, args: list[Tensor], train_eval_differ: bool,
                    rng: np.random.Generator) -> None:
    params = [p for p in layer.parameters() if p.requires_grad]
    if not params:
        return
    name = type(layer).__name__
    layer.train(not train_eval_differ)  # a random layer is checked in its deterministic mode
    with nurinet.no_grad():
        shapes = [(y.shape, y.dtype) for y in _tensors(layer(*args)) if y.dtype.kind == "f"]
    targets = [rng.standard_normal(s).astype(d) for s, d in shapes]
    layer.zero_grad()
    loss = _loss(layer, args, targets)
    loss.backward()
    for pname, p in layer.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name}: parameter {pname} got no gradient"
            assert p.grad.shape == p.shape and p.grad.dtype == p.dtype, f"{name}: bad gradient for {pname}"
    start = [p.array.copy() for p in params]
    lr = 0.1
    for _ in range(30):
        for p, p0 in zip(params, start):
            p.array = p0 - lr * p.grad.array
        with nurinet.no_grad():
            if float(_loss(layer, args, targets).item()) < float(loss.item()):
                break
        lr /= 2
    else:
        raise AssertionError(f"{name}: no SGD step along -grad lowered the loss; the gradient is wrong")
    for p, p0 in zip(params, start):
        p.array = p0
    layer.zero_grad()
