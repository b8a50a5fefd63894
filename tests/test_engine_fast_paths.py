"""The engine's inline paths (one-output nodes with ``backward_arrays``) against its general one.

A plain ``backward()`` runs most nodes inline; hooks, retain_grad, captured tensors, several
outputs and ops without ``backward_arrays`` go through the general step. These tests put each of
those cases on a node the inline loop would otherwise take, and check ``Function.__call__``'s
arity-specialized paths and the fast checks of ``linear`` and ``mse_loss``.
"""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Function, Tensor
from nurinet.autograd import GradientError
from nurinet.autograd.versions import increment_version

# Each test runs with the backward's node loop in C and in Python (conftest.engine_loop).
pytestmark = pytest.mark.usefixtures("engine_loop")


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=True)


class Scale(Function):
    """``factor * x`` with both backward forms, so a plain backward takes the inline loop."""

    def __init__(self, factor: float = 3.0) -> None:
        self.factor = factor

    def forward(self, x):
        return x * self.factor

    def backward(self, gy):
        return gy * self.factor

    def backward_arrays(self, gy):
        return gy * self.factor


class ArrayGradient(Function):
    """An op whose ``backward_arrays`` returns ``gradient(gy, x)``: for the checks on what it returns."""

    def __init__(self, gradient) -> None:
        self.gradient = gradient

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy

    def backward_arrays(self, gy):
        return self.gradient(gy, self.inputs[0].array)


class Four(Function):
    """Four inputs: the generic arity of ``Function.__call__``."""

    def forward(self, a, b, c, d):
        return a * b + c * d

    def backward(self, gy):
        a, b, c, d = self.inputs
        return gy * b, gy * a, gy * d, gy * c

    def backward_arrays(self, gy):
        a, b, c, d = (x.array for x in self.inputs)
        return gy * b, gy * a, gy * d, gy * c


# ----- Function.__call__ ---------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_each_arity_records_generation_needs_and_gradients(count: int) -> None:
    xs = [leaf([1.0, 2.0]) for _ in range(count)]
    plain = Tensor(np.array([5.0, 7.0]))
    if count == 1:
        y = Scale()(xs[0])
        inputs = xs
    elif count == 2:
        y = F.mul(xs[0], xs[1])
        inputs = xs
    elif count == 3:
        y = F.linear(Tensor(np.ones((1, 2))), xs[0].reshape((1, 2)), xs[1][:1])
        inputs = xs[:2]
    else:
        y = Four()(xs[0], plain, xs[2], xs[3])
        inputs = [xs[0], xs[2], xs[3]]
    assert y.requires_grad and y.creator is not None and y.generation >= 1
    if count == 4:
        assert y.creator.needs_input_grad == (True, False, True, True)
    y.sum().backward()
    for x in inputs:
        assert x.grad is not None and x.grad.shape == x.shape


def test_four_inputs_gradients_and_non_tensor_inputs() -> None:
    a, c, d = leaf([1.0, 2.0]), leaf([3.0, 4.0]), leaf([5.0, 6.0])
    Four()(a, np.array([2.0, 2.0]), c, d).sum().backward()
    np.testing.assert_allclose(a.grad.array, [2.0, 2.0])
    np.testing.assert_allclose(c.grad.array, d.array)
    np.testing.assert_allclose(d.grad.array, c.array)


def test_generation_is_one_more_than_the_deepest_input() -> None:
    x = leaf([1.0])
    deep = Scale()(Scale()(Scale()(x)))
    assert F.mul(deep, x).generation == deep.generation + 1
    assert F.mul(x, deep).generation == deep.generation + 1


def test_no_grad_and_constant_inputs_record_nothing() -> None:
    x = leaf([1.0, 2.0])
    with nurinet.no_grad():
        y = Scale()(x)
    assert not y.requires_grad and y.creator is None
    z = Scale()(Tensor(np.array([1.0])))
    assert not z.requires_grad and z.creator is None


def test_a_scalar_output_becomes_a_zero_d_array() -> None:
    class Total(Function):
        def forward(self, x):
            return x.sum()  # a NumPy scalar

        def backward(self, gy):
            return F.broadcast_to(gy, self.inputs[0].shape)

    x = leaf([1.0, 2.0])
    y = Total()(x)
    assert type(y.array) is np.ndarray and y.shape == ()
    with nurinet.no_grad():
        assert type(Total()(x).array) is np.ndarray


# ----- the inline loop and its ways out ---------------------------------------------------------


def test_hook_on_an_inline_node_output_changes_the_gradient() -> None:
    x = leaf([1.0, 2.0])
    y = Scale(2.0)(x)
    seen = []
    y.register_hook(lambda g: seen.append(g.array.copy()) or g * 10.0)
    Scale(3.0)(y).sum().backward()
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    np.testing.assert_allclose(x.grad.array, [60.0, 60.0])


def test_retain_grad_on_an_inline_node_output() -> None:
    x = leaf([1.0, 2.0])
    y = Scale(2.0)(x)
    y.retain_grad()
    z = Scale(3.0)(y)
    z.sum().backward()
    np.testing.assert_allclose(y.grad.array, [3.0, 3.0])
    np.testing.assert_allclose(x.grad.array, [6.0, 6.0])
    assert z.grad is None


def test_grad_captures_an_intermediate_of_an_inline_chain() -> None:
    x = leaf([1.0, 2.0])
    y = Scale(2.0)(x)
    out = Scale(5.0)(Scale(3.0)(y)).sum()
    gy, gx = nurinet.grad(out, [y, x])
    np.testing.assert_allclose(gy.array, [15.0, 15.0])
    np.testing.assert_allclose(gx.array, [30.0, 30.0])
    assert x.grad is None


def test_inline_and_general_nodes_mix_in_one_pass() -> None:
    x = leaf([0.5, 1.5])
    a, b = F.split(Scale(2.0)(x), 2)
    assert a.creator is b.creator  # one node, two outputs: the general step
    loss = (Scale(3.0)(a) * b).sum() + F.exp(x).sum()
    loss.backward()
    np.testing.assert_allclose(x.grad.array, [3.0 * 2.0 * 3.0, 3.0 * 2.0 * 1.0] + np.exp(x.array))


def test_inplace_change_after_saving_raises_in_the_inline_loop() -> None:
    x = leaf([1.0, 2.0])
    y = Scale(2.0)(x)
    z = F.tanh(y)
    increment_version(y)
    with pytest.raises(RuntimeError, match="modified by an inplace operation.*Tanh"):
        z.sum().backward()


def test_inplace_change_of_an_unrelated_tensor_lets_the_pass_run() -> None:
    x = leaf([1.0, 2.0])
    z = F.tanh(Scale(2.0)(x))
    increment_version(leaf([0.0]))  # the clock moves: each node looks, and finds nothing of its own
    z.sum().backward()
    np.testing.assert_allclose(x.grad.array, 2.0 * (1.0 - np.tanh(2.0 * x.array) ** 2))


def test_second_backward_through_a_freed_inline_node_names_the_op() -> None:
    x = leaf([1.0, 2.0])
    y = Scale(2.0)(Scale(3.0)(x)).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="'Sum' a second time"):
        y.backward()
    z = Scale(2.0)(x)
    w = Scale(3.0)(z)
    w.sum().backward()
    with pytest.raises(RuntimeError, match="'Scale' a second time"):
        (z * w).sum().backward()


def test_retain_graph_keeps_inline_nodes_for_a_second_pass() -> None:
    x = leaf([1.0, 2.0])
    y = Scale(2.0)(Scale(3.0)(x)).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.array, [12.0, 12.0])


def test_create_graph_goes_through_backward_not_backward_arrays() -> None:
    x = leaf([1.0, 2.0])
    (gx,) = nurinet.grad((F.tanh(x) * x).sum(), x, create_graph=True)
    gx.sum().backward()
    t = np.tanh(x.array)
    d1 = 1.0 - t**2
    expected = 2.0 * d1 + x.array * (-2.0 * t * d1)
    np.testing.assert_allclose(x.grad.array, expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("gradient", "error"),
    [
        (lambda gy, x: np.ones(x.shape, np.float32), r"'ArrayGradient'.*dtype float32.*dtype float64"),
        (lambda gy, x: np.ones(3), r"'ArrayGradient'.*shape \(3,\).*input 0 of shape \(2,\)"),
        (lambda gy, x: (gy, gy), r"'ArrayGradient' returned 2 gradient\(s\).*1 input"),
        (lambda gy, x: "no", r"'ArrayGradient' returned str"),
    ],
)
def test_what_backward_arrays_returns_is_checked_in_the_inline_loop(gradient, error) -> None:
    with pytest.raises(GradientError, match=error):
        Scale()(ArrayGradient(gradient)(leaf([1.0, 2.0]))).sum().backward()


def test_broadcast_and_scalar_gradients_from_backward_arrays_are_fixed_up() -> None:
    x = leaf([1.0, 2.0])
    ArrayGradient(lambda gy, data: np.broadcast_to(gy, (3,) + data.shape))(x).sum().backward()
    np.testing.assert_allclose(x.grad.array, [3.0, 3.0])
    s = leaf(2.0)
    ArrayGradient(lambda gy, data: np.float64(4.0))(s).backward()
    assert type(s.grad.array) is np.ndarray and s.grad.item() == 4.0


def test_list_from_backward_arrays_and_none_for_an_input() -> None:
    class Pair(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, gy):
            return gy * self.inputs[1], None

        def backward_arrays(self, gy):
            return [gy * self.inputs[1].array, None]

    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    Pair()(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.array, [3.0, 4.0])
    assert b.grad is None


def test_leaves_never_share_a_gradient_buffer() -> None:
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (Scale(1.0)(a + b)).sum().backward()  # add hands one array to both inputs
    a.grad.array += 100.0
    np.testing.assert_allclose(b.grad.array, [1.0, 1.0])
    root = leaf([1.0, 2.0])
    given = np.array([1.0, 1.0])
    root.backward(given)
    root.grad.array += 1.0
    np.testing.assert_allclose(given, [1.0, 1.0])


def test_a_leaf_used_by_several_inline_nodes_accumulates_and_adds_to_grad() -> None:
    x = leaf([1.0, 2.0])
    (Scale(2.0)(x) + Scale(3.0)(x)).sum().backward()
    np.testing.assert_allclose(x.grad.array, [5.0, 5.0])
    Scale(4.0)(x).sum().backward()
    np.testing.assert_allclose(x.grad.array, [9.0, 9.0])


def test_leaf_gradients_are_writable_arrays_of_the_leaf_dtype() -> None:
    w = Tensor(np.ones((3, 2), np.float32), requires_grad=True)
    b = Tensor(np.zeros(3, np.float32), requires_grad=True)
    F.linear(Tensor(np.ones((4, 2), np.float32)), w, b).sum().backward()
    for p in (w, b):
        assert p.grad.dtype == np.float32 and p.grad.shape == p.shape
        assert p.grad.array.flags.writeable
        p.grad.array *= 2.0  # gradient clipping edits in place


# ----- linear and mse_loss ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3), (3,)])
def test_linear_gradients_for_any_leading_dims(shape) -> None:
    rng = np.random.default_rng(0)
    x, w, b = leaf(rng.standard_normal(shape)), leaf(rng.standard_normal((2, 3))), leaf(rng.standard_normal(2))
    y = F.linear(x, w, b)
    assert y.shape == shape[:-1] + (2,)
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    g2, x2 = gy.reshape(-1, 2), x.array.reshape(-1, 3)
    np.testing.assert_allclose(x.grad.array, (g2 @ w.array).reshape(shape), rtol=1e-12)
    np.testing.assert_allclose(w.grad.array, g2.T @ x2, rtol=1e-12)
    np.testing.assert_allclose(b.grad.array, g2.sum(axis=0), rtol=1e-12)


def test_linear_without_bias_and_with_a_constant_input() -> None:
    x, w = Tensor(np.ones((4, 3))), leaf(np.ones((2, 3)))
    F.linear(x, w).sum().backward()
    np.testing.assert_allclose(w.grad.array, np.full((2, 3), 4.0))
    assert x.grad is None


def test_linear_checks_features_and_dtype_on_every_path() -> None:
    w = leaf(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"linear: input of shape \(4, 5\) has 5 features"):
        F.linear(Tensor(np.ones((4, 5))), w)
    with pytest.raises(ValueError, match="linear: input of shape"):
        F.linear(np.ones((4, 5)), w)  # an array input takes the general checks
    with pytest.raises(TypeError, match=r"linear: the input \(float32\) and weight \(float64\)"):
        F.linear(Tensor(np.ones((4, 3), np.float32)), w)
    with pytest.raises(ValueError, match="linear"):
        F.linear(Tensor(np.float64(1.0)), w)
    y = F.linear(np.ones((4, 3)), w)  # arrays are accepted as inputs
    assert y.shape == (4, 2)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_loss_value_and_gradients(reduction: str) -> None:
    a, b = leaf([[1.0, 2.0], [3.0, 5.0]]), leaf([[0.0, 2.0], [1.0, 1.0]])
    loss = F.mse_loss(a, b, reduction=reduction)
    d = a.array - b.array
    scale = 1.0 / d.size if reduction == "mean" else 1.0
    assert type(loss.array) is np.ndarray and loss.shape == () and loss.dtype == np.float64
    np.testing.assert_allclose(loss.item(), (d**2).sum() * scale)
    loss.backward()
    np.testing.assert_allclose(a.grad.array, 2.0 * d * scale)
    np.testing.assert_allclose(b.grad.array, -2.0 * d * scale)


def test_mse_loss_general_path_still_converts_and_checks() -> None:
    a = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    loss = F.mse_loss(a, np.array([0.0, 0.0]))  # an array target of another dtype: cast to the input's
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.item(), 2.5)
    assert F.mse_loss(a, Tensor(np.zeros(2)), reduction="none").shape == (2,)
    with pytest.raises(ValueError, match="mse_loss: input shape"):
        F.mse_loss(a, Tensor(np.zeros(3, np.float32)))
    with pytest.raises(ValueError, match="mse_loss: reduction must be one of"):
        F.mse_loss(a, a, reduction="avg")


def test_xor_step_matches_a_hand_written_backward() -> None:
    rng = np.random.default_rng(1)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    t = np.array([[0], [1], [1], [0]], np.float32)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(8, 2), (8,), (1, 8), (1,)]]
    w1, b1, w2, b2 = (Tensor(a, requires_grad=True) for a in arrays)
    loss = F.mse_loss(F.sigmoid(F.linear(F.tanh(F.linear(Tensor(x), w1, b1)), w2, b2)), Tensor(t))
    loss.backward()
    h = np.tanh(x @ arrays[0].T + arrays[1])
    p = 1.0 / (1.0 + np.exp(-(h @ arrays[2].T + arrays[3])))
    gz = 2.0 * (p - t) / p.size * p * (1.0 - p)
    gh = (gz @ arrays[2]) * (1.0 - h * h)
    expected = [gh.T @ x, gh.sum(0), gz.T @ h, gz.sum(0)]
    for param, want in zip((w1, b1, w2, b2), expected):
        assert param.grad.dtype == np.float32
        np.testing.assert_allclose(param.grad.array, want, rtol=1e-5, atol=1e-7)
