"""The backward engine: graph shapes, grad mode, memory, hooks, higher-order gradients, errors."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Function, Tensor
from nurinet.autograd import GradientError

# Each test runs with the backward's node loop in C and in Python (conftest.engine_loop).
pytestmark = pytest.mark.usefixtures("engine_loop")


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ----- graph shapes -----------------------------------------------------------------


def test_long_chain_has_no_recursion_limit() -> None:
    x = leaf(1.0)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad.array, 1.0001**10_000, rtol=1e-9)


def test_wide_graph_backpropagates_correctly() -> None:
    x = leaf([1.0, -2.0])
    total = x * 0.0
    for i in range(1, 8_000):
        total = total + x * float(i)
    total.sum().backward()
    np.testing.assert_allclose(x.grad.array, [8_000 * 7_999 / 2] * 2)


def test_gradient_accumulates_over_uses() -> None:
    x = leaf([0.5, -1.5, 3.0])
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.array, 2 * x.array + 1)


def test_diamond_runs_the_shared_node_once_with_the_summed_gradient() -> None:
    x = leaf([1.0, 2.0])
    b = x * 2.0
    seen = []
    b.register_hook(lambda g: seen.append(g.array.copy()))
    (b * 3.0 + b * 4.0).sum().backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [7.0, 7.0])
    np.testing.assert_allclose(x.grad.array, [14.0, 14.0])


def test_paths_of_different_lengths_meet_before_the_node_runs() -> None:
    x = leaf([1.0, 2.0])
    a = x.exp()
    calls = []
    a.register_hook(lambda g: calls.append(g.array.copy()))
    long = a
    for _ in range(5):
        long = long * 1.5
    (a + long).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], 1 + 1.5**5)
    np.testing.assert_allclose(x.grad.array, (1 + 1.5**5) * np.exp(x.array))


def test_gradients_accumulate_across_backward_calls_into_leaves() -> None:
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.array, 3.0 + 2 * x.array)


def test_leaves_sharing_one_gradient_do_not_share_its_buffer() -> None:
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (a + b).sum().backward()
    a.grad.array *= 10  # e.g. in-place gradient clipping on one parameter
    np.testing.assert_allclose(b.grad.array, [1.0, 1.0])


def test_broadcast_gradient_is_summed_back_to_the_input_shape() -> None:
    x = leaf(np.ones((3, 1)))
    w = leaf(np.arange(4.0))
    (x * w).sum().backward()
    assert x.grad.shape == (3, 1) and w.grad.shape == (4,)
    np.testing.assert_allclose(x.grad.array, np.full((3, 1), 6.0))
    np.testing.assert_allclose(w.grad.array, np.full(4, 3.0))


def test_non_scalar_backward_with_an_explicit_gradient() -> None:
    x = leaf([1.0, 2.0, 3.0])
    (x * x).backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_allclose(x.grad.array, [2.0, 0.0, -6.0])


def test_backward_gradient_of_another_dtype_is_cast_to_the_output_dtype() -> None:
    x = leaf([1.0, 2.0], np.float32)
    (x * 2.0).backward(Tensor(np.array([1.0, 3.0])))  # float64 gradient, float32 output
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.array, [2.0, 6.0])
    x.grad = None
    x.backward(Tensor(np.array([1.0, 1.0])))
    assert x.grad.dtype == np.float32


def test_leaf_gradient_does_not_alias_the_gradient_passed_in() -> None:
    x = leaf([1.0, 2.0])
    g = np.array([1.0, 1.0])
    (x + 0.0).backward(g)
    g[:] = 100.0  # The caller reuses its buffer.
    np.testing.assert_allclose(x.grad.array, [1.0, 1.0])


# ----- grad mode ----------------------------------------------------------------------


def test_no_grad_records_no_graph() -> None:
    x = leaf([1.0, 2.0])
    with nurinet.no_grad():
        assert not nurinet.is_grad_enabled()
        y = (x * 2.0).exp()
    assert nurinet.is_grad_enabled()
    assert not y.requires_grad and y.creator is None


def test_enable_grad_inside_no_grad_records() -> None:
    x = leaf([1.0, 2.0])
    with nurinet.no_grad():
        with nurinet.enable_grad():
            y = x * 2.0
        z = x * 2.0
    assert y.requires_grad and y.creator is not None
    assert not z.requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.array, [2.0, 2.0])


def test_no_grad_and_set_grad_enabled_as_decorators() -> None:
    x = leaf([1.0])

    @nurinet.no_grad()
    def frozen(t):
        return t * 2.0

    @nurinet.set_grad_enabled(False)
    def frozen_too(t):
        return t * 2.0

    assert nurinet.is_grad_enabled()
    assert not frozen(x).requires_grad and not frozen_too(x).requires_grad
    assert (x * 2.0).requires_grad


def test_grad_mode_is_restored_after_an_exception() -> None:
    with pytest.raises(ZeroDivisionError), nurinet.no_grad():
        1 / 0  # noqa: B018
    assert nurinet.is_grad_enabled()


def test_grad_mode_is_thread_local() -> None:
    inside, release = threading.Event(), threading.Event()
    other_thread_mode = []

    def worker() -> None:
        with nurinet.no_grad():
            other_thread_mode.append(nurinet.is_grad_enabled())
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert inside.wait(10)
        x = leaf([1.0])
        y = x * 2.0  # The other thread is inside no_grad right now.
        assert nurinet.is_grad_enabled() and y.requires_grad and y.creator is not None
    finally:
        release.set()
        thread.join()
    assert other_thread_mode == [False]


# ----- memory -----------------------------------------------------------------------------


def test_graph_is_freed_without_the_garbage_collector() -> None:
    gc.disable()
    try:
        x = leaf(np.ones(3))
        hidden = (x * 2.0).exp()
        out = (hidden * x).sum()
        tensor_ref, fn_ref = weakref.ref(hidden), weakref.ref(hidden.creator)
        del hidden, out
        assert tensor_ref() is None and fn_ref() is None
    finally:
        gc.enable()


def test_graph_is_freed_after_backward_without_the_garbage_collector() -> None:
    gc.disable()
    try:
        x = leaf(np.ones(3))
        hidden = x.tanh() * 3.0
        out = hidden.sum()
        out.backward()
        fn_ref = weakref.ref(hidden.creator)
        del hidden, out
        assert fn_ref() is None
        assert x.grad is not None
    finally:
        gc.enable()


# ----- retain_graph --------------------------------------------------------------------------


def test_second_backward_without_retain_graph_raises() -> None:
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"'Sum' a second time.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward_that_accumulates() -> None:
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.array, 4 * x.array)


# ----- hooks and retain_grad ----------------------------------------------------------------


def test_hook_on_leaf_inspects_replaces_and_is_removed() -> None:
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.array.copy()))
    handle = x.register_hook(lambda g: g * 10.0)
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(seen[0], [3.0, 3.0])
    np.testing.assert_allclose(x.grad.array, [30.0, 30.0])
    handle.remove()
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.array, [3.0, 3.0])
    assert len(seen) == 2


def test_hook_on_non_leaf_replaces_the_gradient_flowing_down() -> None:
    x = leaf([1.0, 2.0])
    y = x * 2.0
    y.register_hook(lambda g: g * 0.0 + 5.0)
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.array, [10.0, 10.0])


def test_hook_returning_a_wrong_shape_is_a_clear_error() -> None:
    x = leaf([1.0, 2.0])
    y = x * 2.0
    y.register_hook(lambda g: Tensor(np.ones(3)))
    with pytest.raises(GradientError, match=r"hook.*shape \(3,\).*shape \(2,\)"):
        y.sum().backward()


def test_register_hook_needs_a_tensor_that_requires_grad() -> None:
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        Tensor(np.ones(2)).register_hook(lambda g: g)


def test_retain_grad_keeps_and_accumulates_non_leaf_gradients() -> None:
    x = leaf([1.0, 2.0])
    y = x * 2.0
    z = y * y
    assert y.grad is None
    y.retain_grad()
    s = z.sum()
    s.backward(retain_graph=True)
    np.testing.assert_allclose(y.grad.array, 2 * y.array)
    assert not y.grad.requires_grad
    s.backward()
    np.testing.assert_allclose(y.grad.array, 4 * y.array)


def test_non_leaf_gradient_is_not_kept_by_default() -> None:
    x = leaf([1.0, 2.0])
    y = x * 2.0
    y.sum().backward()
    assert y.grad is None and x.grad is not None


# ----- nurinet.grad and higher order -----------------------------------------------------------


def test_second_derivative_of_cube() -> None:
    x = leaf([0.5, -1.0, 2.0])
    (g,) = nurinet.grad((x**3).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.array, 3 * x.array**2)
    assert g.requires_grad
    (gg,) = nurinet.grad(g.sum(), x)
    np.testing.assert_allclose(gg.array, 6 * x.array)
    assert x.grad is None  # nurinet.grad does not touch .grad


def test_second_derivative_of_sin() -> None:
    x = leaf([0.3, 1.2, -2.0])
    (g,) = nurinet.grad(F.sin(x).sum(), x, create_graph=True)
    (gg,) = nurinet.grad(g.sum(), x)
    np.testing.assert_allclose(g.array, np.cos(x.array))
    np.testing.assert_allclose(gg.array, -np.sin(x.array))


def test_third_derivative_through_backward_create_graph() -> None:
    x = leaf(1.5)
    (x**4).backward(create_graph=True)
    first = x.grad
    assert first.requires_grad
    (second,) = nurinet.grad(first, x, create_graph=True)
    (third,) = nurinet.grad(second, x)
    np.testing.assert_allclose([first.item(), second.item(), third.item()],
                               [4 * 1.5**3, 12 * 1.5**2, 24 * 1.5])


def test_grad_with_grad_outputs_is_a_vector_jacobian_product() -> None:
    x = leaf([1.0, 2.0, 3.0])
    v = np.array([0.5, -1.0, 2.0])
    (g,) = nurinet.grad(x * x, x, grad_outputs=Tensor(v))
    np.testing.assert_allclose(g.array, 2 * x.array * v)


def test_grad_of_several_inputs_and_non_leaf_inputs() -> None:
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    h = a * b
    ga, gb, gh = nurinet.grad((h * h).sum(), [a, b, h])
    np.testing.assert_allclose(gh.array, 2 * h.array)
    np.testing.assert_allclose(ga.array, 2 * h.array * b.array)
    np.testing.assert_allclose(gb.array, 2 * h.array * a.array)


def test_grad_allow_unused() -> None:
    x, unused = leaf([1.0, 2.0]), leaf([3.0])
    with pytest.raises(RuntimeError, match=r"input\(s\) \[1\] were not used.*allow_unused=True"):
        nurinet.grad((x * 2.0).sum(), [x, unused])
    gx, gu = nurinet.grad((x * 2.0).sum(), [x, unused], allow_unused=True)
    np.testing.assert_allclose(gx.array, [2.0, 2.0])
    assert gu is None


def test_grad_input_must_require_grad() -> None:
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        nurinet.grad((x * 2.0).sum(), Tensor(np.ones(1)))


def test_newton_method_with_second_derivatives_converges() -> None:
    # f(x) = x^4 - 2x^2 has its minimum at x = 1; Newton on f' from x0 = 2.
    x = leaf(2.0)
    for _ in range(8):
        f = x**4 - x**2 * 2.0
        (df,) = nurinet.grad(f, x, create_graph=True)
        (d2f,) = nurinet.grad(df, x)
        x = Tensor(x.array - df.array / d2f.array, requires_grad=True)
    assert x.dtype == np.float64
    assert abs(x.item() - 1.0) < 1e-12


# ----- errors --------------------------------------------------------------------------------


class _Doubler(Function):
    """A user op whose backward is replaced per test."""

    def forward(self, x):
        return x * 2


class WrongShape(_Doubler):
    def backward(self, gy):
        return Tensor(np.ones(gy.shape[0] + 1))


class WrongDtype(_Doubler):
    def backward(self, gy):
        return (gy * 2.0).astype("float32")


class WrongCount(_Doubler):
    def backward(self, gy):
        return gy * 2.0, gy * 2.0


class NotATensor(_Doubler):
    def backward(self, gy):
        return "gradient"


class ListOfGrads(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        return [gy * b, gy * a]


def test_custom_function_gradient_of_wrong_shape_names_the_op() -> None:
    with pytest.raises(GradientError, match=r"'WrongShape'.*shape \(4,\).*input 0 of shape \(3,\)"):
        WrongShape()(leaf([1.0, 2.0, 3.0])).sum().backward()


def test_custom_function_gradient_of_wrong_dtype_names_the_op() -> None:
    with pytest.raises(GradientError, match=r"'WrongDtype'.*dtype float32.*dtype float64"):
        WrongDtype()(leaf([1.0, 2.0])).sum().backward()


def test_custom_function_wrong_number_of_gradients() -> None:
    with pytest.raises(GradientError, match=r"'WrongCount' returned 2 gradient\(s\).*1 input"):
        WrongCount()(leaf([1.0, 2.0])).sum().backward()


def test_custom_function_gradient_that_is_not_an_array() -> None:
    with pytest.raises(GradientError, match=r"'NotATensor' returned str"):
        NotATensor()(leaf([1.0, 2.0])).sum().backward()


def test_custom_function_may_return_a_list_of_gradients() -> None:
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    ListOfGrads()(a, b).sum().backward()
    np.testing.assert_allclose(a.grad.array, b.array)
    np.testing.assert_allclose(b.grad.array, a.array)


def test_custom_function_broadcast_shaped_gradient_is_summed_back() -> None:
    class Tiled(_Doubler):
        def backward(self, gy):
            return F.broadcast_to(gy * 2.0, (4,) + gy.shape)

    x = leaf([1.0, 2.0])
    Tiled()(x).sum().backward()
    np.testing.assert_allclose(x.grad.array, [8.0, 8.0])


def test_backward_of_non_scalar_without_gradient() -> None:
    with pytest.raises(RuntimeError, match=r"non-scalar tensor of shape \(2,\) needs a gradient"):
        (leaf([1.0, 2.0]) * 2.0).backward()


def test_backward_gradient_of_wrong_shape() -> None:
    with pytest.raises(RuntimeError, match=r"shape \(3,\) but the output has shape \(2,\)"):
        (leaf([1.0, 2.0]) * 2.0).backward(np.ones(3))


def test_backward_of_a_tensor_outside_the_graph() -> None:
    with pytest.raises(RuntimeError, match="does not require a gradient and has no graph"):
        (Tensor(np.ones(2)) * 2.0).sum().backward()


def test_matmul_shape_mismatch_names_both_shapes() -> None:
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not fit"):
        a @ b


def test_requires_grad_on_integer_tensor() -> None:
    with pytest.raises(TypeError, match="only floating-point tensors can require a gradient.*int64"):
        nurinet.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="floating-point"):
        nurinet.arange(3).requires_grad_()


def test_requires_grad_cannot_be_switched_off_on_a_computed_tensor() -> None:
    y = leaf([1.0]) * 2.0
    with pytest.raises(RuntimeError, match=r"use \.detach\(\)"):
        y.requires_grad = False


def test_leaf_gradient_of_a_sum_is_a_writable_array() -> None:
    x = leaf(np.ones((2, 3)))
    x.sum().backward()
    x.grad.array *= 0.5  # A read-only broadcast view would fail here.
    np.testing.assert_allclose(x.grad.array, np.full((2, 3), 0.5))


def test_zero_dimensional_gradients_are_arrays_that_optimizers_can_update() -> None:
    """0-d array arithmetic yields NumPy scalars; .grad must still be an ndarray."""
    from nurinet import optim

    p = nurinet.tensor(2.0, requires_grad=True)
    (p * p * 3.0 + p * 1.0).backward()
    assert type(p.grad.array) is np.ndarray and p.grad.item() == pytest.approx(13.0)
    w = nurinet.tensor(1.0, requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    values = []
    for _ in range(3):
        opt.zero_grad()
        (w * 1.0).sum().backward()  # constant gradient 1
        opt.step()
        values.append(w.item())
    # Momentum buffer 1, 1.9, 2.71 -> w = 0.9, 0.71, 0.439.
    np.testing.assert_allclose(values, [0.9, 0.71, 0.439], rtol=1e-6)


def test_a_backward_that_reads_its_output_runs_after_the_consumers_have_let_go():
    """Nodes free their inputs during the pass; a node's own output must outlive its consumers until
    its backward (here expm1's, which reads its output) has run."""
    values = np.array([0.5, 1.0, 2.0])
    x = nurinet.tensor(values, requires_grad=True)
    # Only the product's node holds the expm1 output, and the deeper branch runs between the product's
    # backward and expm1's.
    loss = (F.expm1(x) * 2.0 + F.tanh(F.tanh(((x * 3.0) * 3.0) * 3.0))).sum()
    loss.backward()
    t = np.tanh(27.0 * values)
    expected = 2.0 * np.exp(values) + (1 - np.tanh(t) ** 2) * (1 - t**2) * 27.0
    np.testing.assert_allclose(x.grad.array, expected, rtol=1e-12)
