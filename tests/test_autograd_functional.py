"""nurinet.autograd.functional against closed forms and against torch.autograd.functional.

A registry of functions (``CASES``), each with its inputs and the closed forms of its
Jacobian (every case) and Hessian (scalar cases), drives the tests: every function of the
module is checked on every case against the closed form, and (marked ``torch``) against
PyTorch's result on the same function written with torch ops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import nurinet as nt
import nurinet.autograd.functional as AF
import nurinet.functional as F

RNG = np.random.default_rng(7)
A = RNG.standard_normal((3, 4))
X0 = RNG.standard_normal(4)
Y0 = RNG.standard_normal(4)
M0 = RNG.standard_normal((2, 3))


@dataclass
class Case:
    """A function, its inputs, and its derivatives in closed form (``inputs`` as NumPy arrays).

    ``jacobian(*arrays)`` returns the Jacobian in nurinet's nesting (a tuple level for a tuple
    of inputs or outputs); ``hessian`` likewise, for scalar functions only.
    """

    name: str
    nt_fn: Callable[..., Any]
    torch_fn: Callable[..., Any]
    inputs: tuple[np.ndarray, ...]
    jacobian: Callable[..., Any]
    hessian: Callable[..., Any] | None = None
    tuple_inputs: bool = False
    tuple_outputs: bool = False
    kwargs: dict = field(default_factory=dict)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


CASES = [
    Case("linear_map", lambda x: nt.tensor(A) @ x, lambda x: _t(A) @ x, (X0,),
         lambda x: A),
    Case("tanh_elementwise", lambda x: F.tanh(x), lambda x: x.tanh(), (X0,),
         lambda x: np.diag(1 - np.tanh(x) ** 2)),
    Case("quartic_sum", lambda x: (x**4).sum(), lambda x: (x**4).sum(), (X0,),
         lambda x: 4 * x**3, lambda x: np.diag(12 * x**2)),
    Case("quadratic_form", lambda x: (x * (nt.tensor(A.T @ A) @ x)).sum(),
         lambda x: (x * (_t(A.T @ A) @ x)).sum(), (X0,),
         lambda x: 2 * A.T @ A @ x, lambda x: 2 * A.T @ A),
    Case("log_sum_exp", lambda x: F.log(F.exp(x).sum()), lambda x: x.exp().sum().log(), (X0,),
         lambda x: np.exp(x) / np.exp(x).sum(),
         lambda x: np.diag(_softmax(x)) - np.outer(_softmax(x), _softmax(x))),
    Case("product_of_two", lambda x, y: (x * y).sum(), lambda x, y: (x * y).sum(), (X0, Y0),
         lambda x, y: (y, x),
         lambda x, y: ((np.zeros((4, 4)), np.eye(4)), (np.eye(4), np.zeros((4, 4)))),
         tuple_inputs=True),
    Case("sigmoid_dot", lambda x, y: F.sigmoid((x * y).sum()), lambda x, y: (x * y).sum().sigmoid(), (X0, Y0),
         lambda x, y: (_sigmoid(x @ y) * (1 - _sigmoid(x @ y)) * y, _sigmoid(x @ y) * (1 - _sigmoid(x @ y)) * x),
         lambda x, y: _sigmoid_dot_hessian(x, y), tuple_inputs=True),
    Case("two_outputs", lambda x: (x * 2.0, (x**2).sum()), lambda x: (x * 2.0, (x**2).sum()), (X0,),
         lambda x: (2 * np.eye(4), 2 * x), tuple_outputs=True),
    Case("matrix_input", lambda m: m @ nt.tensor(A), lambda m: m @ _t(A), (M0,),
         lambda m: np.einsum("ik,jl->ijkl", np.eye(2), A.T)),
    Case("ignores_second_input", lambda x, y: (x**2).sum(), lambda x, y: (x**2).sum(), (X0, Y0),
         lambda x, y: (2 * x, np.zeros(4)),
         lambda x, y: ((2 * np.eye(4), np.zeros((4, 4))), (np.zeros((4, 4)), np.zeros((4, 4)))),
         tuple_inputs=True),
]
SCALAR_CASES = [c for c in CASES if c.hessian is not None]


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _sigmoid_dot_hessian(x, y):
    s = _sigmoid(x @ y)
    ds, dds = s * (1 - s), s * (1 - s) * (1 - 2 * s)
    hxx, hyy = dds * np.outer(y, y), dds * np.outer(x, x)
    hxy = dds * np.outer(y, x) + ds * np.eye(4)
    return (hxx, hxy), (hxy.T, hyy)


def _t(a):
    import torch

    return torch.tensor(a)


def _nt_inputs(case: Case) -> Any:
    values = tuple(nt.tensor(a) for a in case.inputs)
    return values if case.tuple_inputs else values[0]


def _rows(value: Any) -> Any:
    """A nested tuple of Tensors (or arrays) as nested tuples of NumPy arrays."""
    if isinstance(value, (tuple, list)):
        return tuple(_rows(v) for v in value)
    if isinstance(value, nt.Tensor):
        return value.numpy()
    if hasattr(value, "detach"):
        return value.detach().numpy()
    return np.asarray(value)


def assert_nested_close(got: Any, want: Any, atol: float = 1e-10) -> None:
    got, want = _rows(got), _rows(want)
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), (type(got), len(want))
        for g, w in zip(got, want):
            assert_nested_close(g, w, atol)
        return
    assert not isinstance(got, tuple), "a tuple where PyTorch returns one Tensor"
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=atol)


def _closed_jacobian(case: Case) -> Any:
    jac = case.jacobian(*case.inputs)
    if case.tuple_outputs and not case.tuple_inputs:
        return tuple(jac)
    return jac


def _random_like(arrays: tuple[np.ndarray, ...], seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(a.shape) for a in arrays)


def _pack(case: Case, arrays: tuple[np.ndarray, ...]) -> Any:
    values = tuple(nt.tensor(a) for a in arrays)
    return values if len(values) > 1 or case.tuple_inputs else values[0]


# ----- closed forms ------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_jacobian_equals_the_closed_form(case: Case, strategy: str) -> None:
    assert_nested_close(AF.jacobian(case.nt_fn, _nt_inputs(case), strategy=strategy), _closed_jacobian(case))


@pytest.mark.parametrize("strategy", ["reverse-mode", "forward-mode"])
@pytest.mark.parametrize("case", SCALAR_CASES, ids=[c.name for c in SCALAR_CASES])
def test_hessian_equals_the_closed_form(case: Case, strategy: str) -> None:
    got = AF.hessian(case.nt_fn, _nt_inputs(case), outer_jacobian_strategy=strategy)
    assert_nested_close(got, case.hessian(*case.inputs))


@pytest.mark.parametrize("case", SCALAR_CASES, ids=[c.name for c in SCALAR_CASES])
def test_hvp_and_vhp_are_the_hessian_times_v(case: Case) -> None:
    v = _random_like(case.inputs, 1)
    hessian = case.hessian(*case.inputs)
    if not case.tuple_inputs:
        want = hessian @ v[0]
    else:
        want = tuple(sum(hessian[i][j] @ v[j] for j in range(len(v))) for i in range(len(v)))
    for fn in (AF.hvp, AF.vhp):
        value, product = fn(case.nt_fn, _nt_inputs(case), _pack(case, v))
        assert_nested_close(product, want)
        assert value.shape == () and not value.requires_grad


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_vjp_and_jvp_are_products_with_the_jacobian(case: Case) -> None:
    jac = _closed_jacobian(case)
    outputs = case.nt_fn(*[nt.tensor(a) for a in case.inputs])
    out_list = outputs if isinstance(outputs, tuple) else (outputs,)
    jac_rows = jac if case.tuple_outputs else (jac,)  # one entry per output
    jac_rows = [row if case.tuple_inputs else (row,) for row in jac_rows]  # then one per input
    u = _random_like(tuple(o.numpy() for o in out_list), 2)
    v = _random_like(case.inputs, 3)
    want_vjp = tuple(sum(np.tensordot(u[o], jac_rows[o][i], axes=u[o].ndim) for o in range(len(u)))
                     for i in range(len(v)))
    want_jvp = tuple(sum(np.tensordot(jac_rows[o][i], v[i], axes=v[i].ndim) for i in range(len(v)))
                     for o in range(len(u)))
    u_arg = tuple(nt.tensor(a) for a in u) if case.tuple_outputs else nt.tensor(u[0])
    _, got_vjp = AF.vjp(case.nt_fn, _nt_inputs(case), u_arg)
    _, got_jvp = AF.jvp(case.nt_fn, _nt_inputs(case), _pack(case, v))
    assert_nested_close(got_vjp, want_vjp if case.tuple_inputs else want_vjp[0])
    assert_nested_close(got_jvp, want_jvp if case.tuple_outputs else want_jvp[0])


def test_create_graph_gives_differentiable_results() -> None:
    x = nt.tensor(X0, requires_grad=True)
    value, grad = AF.vjp(lambda t: (t**3).sum(), x, create_graph=True)
    assert value.requires_grad and grad.requires_grad
    (second,) = nt.grad(grad.sum(), x)
    np.testing.assert_allclose(second.numpy(), 6 * X0)
    hess = AF.hessian(lambda t: (t**4).sum(), x, create_graph=True)
    (third,) = nt.grad(hess.sum(), x)
    np.testing.assert_allclose(third.numpy(), 24 * X0)
    value, grad = AF.vjp(lambda t: (t**3).sum(), x)
    assert not value.requires_grad and not grad.requires_grad


def test_inputs_are_cut_from_their_graph_without_create_graph() -> None:
    x = nt.tensor(X0, requires_grad=True)
    y = x * 2.0
    jac = AF.jacobian(lambda t: t**2, y)
    np.testing.assert_allclose(jac.numpy(), np.diag(2 * y.numpy()))
    assert not jac.requires_grad and x.grad is None


def test_strict_mode_and_zeros_for_independent_inputs() -> None:
    x, y = nt.tensor(X0), nt.tensor(Y0)
    _, (_, gy) = AF.vjp(lambda a, b: (a**2).sum(), (x, y))
    np.testing.assert_array_equal(gy.numpy(), np.zeros(4))
    with pytest.raises(RuntimeError, match="independent of input 1. This is not allowed in strict mode"):
        AF.vjp(lambda a, b: (a**2).sum(), (x, y), strict=True)
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function does not require gradients"):
        AF.jacobian(lambda a: nt.tensor(np.ones(2)), x, strict=True)
    with pytest.raises(RuntimeError, match="jacobian of the user-provided function with respect to input 0 is "
                                           "independent"):
        AF.hessian(lambda a: (a * 3.0).sum(), x, strict=True)
    np.testing.assert_array_equal(AF.hessian(lambda a: (a * 3.0).sum(), x).numpy(), np.zeros((4, 4)))


def test_argument_errors_are_pytorchs() -> None:
    x = nt.tensor(X0)
    with pytest.raises(TypeError, match="inputs given to vjp must be either a Tensor or a tuple of Tensors"):
        AF.vjp(lambda a: a.sum(), X0)
    with pytest.raises(RuntimeError, match="v can only be None if the user-provided function returns a single "
                                           "Tensor with a single element"):
        AF.vjp(lambda a: a * 2.0, x)
    with pytest.raises(RuntimeError, match=r"v has invalid size: should be \(4,\) but got \(3,\)"):
        AF.jvp(lambda a: a * 2.0, x, nt.tensor(np.ones(3)))
    with pytest.raises(RuntimeError, match="should return a single Tensor"):
        AF.hvp(lambda a: (a.sum(), a.sum()), x, x)
    with pytest.raises(RuntimeError, match="should contain a single element"):
        AF.hessian(lambda a: a * 2.0, x)
    with pytest.raises(ValueError, match="strategy"):
        AF.jacobian(lambda a: a, x, strategy="sideways")


def test_float32_stays_float32() -> None:
    x = nt.tensor(X0.astype(np.float32))
    assert AF.jacobian(lambda a: F.tanh(a), x).dtype == np.float32
    assert AF.hvp(lambda a: (a**4).sum(), x, x)[1].dtype == np.float32


def test_gpu_double_runs_on_device_arrays(fake_cupy) -> None:
    x = nt.tensor(X0).to("cuda")
    jac = AF.jacobian(lambda a: F.tanh(a) * 2.0, x)
    assert jac.device.startswith("cuda")
    np.testing.assert_allclose(nt.backend.to_numpy(jac.array), np.diag(2 * (1 - np.tanh(X0) ** 2)))
    _, product = AF.hvp(lambda a: (a**4).sum(), x, x)
    np.testing.assert_allclose(nt.backend.to_numpy(product.array), 12 * X0**3)
    assert AF.jacobian(lambda a: a * 2.0, x, strategy="forward-mode").device.startswith("cuda")


# ----- PyTorch ---------------------------------------------------------------------------------
def _torch_inputs(torch, case: Case) -> Any:
    values = tuple(torch.tensor(a) for a in case.inputs)
    return values if case.tuple_inputs else values[0]


@pytest.mark.torch
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_jacobian_vjp_jvp_equal_pytorchs(torch, case: Case) -> None:
    TF = torch.autograd.functional
    want = TF.jacobian(case.torch_fn, _torch_inputs(torch, case))
    assert_nested_close(AF.jacobian(case.nt_fn, _nt_inputs(case)), want)
    want_forward = TF.jacobian(case.torch_fn, _torch_inputs(torch, case), vectorize=True, strategy="forward-mode")
    assert_nested_close(AF.jacobian(case.nt_fn, _nt_inputs(case), strategy="forward-mode"), want_forward)
    v = _random_like(case.inputs, 4)
    torch_v = tuple(torch.tensor(a) for a in v)
    torch_v = torch_v if case.tuple_inputs else torch_v[0]
    assert_nested_close(AF.jvp(case.nt_fn, _nt_inputs(case), _pack(case, v)),
                        TF.jvp(case.torch_fn, _torch_inputs(torch, case), torch_v))
    outputs = case.torch_fn(*[torch.tensor(a) for a in case.inputs])
    out_list = outputs if isinstance(outputs, tuple) else (outputs,)
    u = _random_like(tuple(o.detach().numpy() for o in out_list), 5)
    u_nt = tuple(nt.tensor(a) for a in u) if case.tuple_outputs else nt.tensor(u[0])
    u_torch = tuple(torch.tensor(a) for a in u) if case.tuple_outputs else torch.tensor(u[0])
    assert_nested_close(AF.vjp(case.nt_fn, _nt_inputs(case), u_nt),
                        TF.vjp(case.torch_fn, _torch_inputs(torch, case), u_torch))


@pytest.mark.torch
@pytest.mark.parametrize("case", SCALAR_CASES, ids=[c.name for c in SCALAR_CASES])
def test_hessian_hvp_vhp_equal_pytorchs(torch, case: Case) -> None:
    TF = torch.autograd.functional
    assert_nested_close(AF.hessian(case.nt_fn, _nt_inputs(case)), TF.hessian(case.torch_fn, _torch_inputs(torch, case)))
    v = _random_like(case.inputs, 6)
    torch_v = tuple(torch.tensor(a) for a in v)
    torch_v = torch_v if case.tuple_inputs else torch_v[0]
    for ours, theirs in ((AF.hvp, TF.hvp), (AF.vhp, TF.vhp)):
        assert_nested_close(ours(case.nt_fn, _nt_inputs(case), _pack(case, v)),
                            theirs(case.torch_fn, _torch_inputs(torch, case), torch_v))


@pytest.mark.torch
def test_strict_errors_match_pytorchs(torch) -> None:
    TF = torch.autograd.functional
    with pytest.raises(RuntimeError) as theirs:
        TF.vjp(lambda a, b: (a**2).sum(), (torch.tensor(X0), torch.tensor(Y0)), strict=True)
    with pytest.raises(RuntimeError) as ours:
        AF.vjp(lambda a, b: (a**2).sum(), (nt.tensor(X0), nt.tensor(Y0)), strict=True)
    assert str(ours.value) == str(theirs.value)
