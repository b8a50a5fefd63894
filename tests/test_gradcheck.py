"""gradcheck and gradgradcheck as a user would run them on their own ops."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet.functional as F
from nurinet import Function, Tensor
from nurinet.autograd import gradcheck, gradgradcheck
from nurinet.autograd.gradcheck import GradcheckError

MODES = ["full", "fast"]


class Square(Function):
    """A correct user op: x**2 with a backward written in Tensor ops."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        (x,) = self.inputs
        return gy * x * 2.0


class WrongSquare(Square):
    """Its first derivative is off by a factor 3/2."""

    def backward(self, gy):
        (x,) = self.inputs
        return gy * x * 3.0


class ConstantSlopeSquare(Square):
    """First derivative right, but built from raw data, so its own derivative is lost."""

    def backward(self, gy):
        (x,) = self.inputs
        return gy * Tensor(2.0 * x.array)


class ProductAndSum(Function):
    """Two inputs, two outputs: (a * b, a + b)."""

    def forward(self, a, b):
        return a * b, a + b

    def backward(self, g_prod, g_sum):
        a, b = self.inputs
        return g_prod * b + g_sum, g_prod * a + g_sum


def _x(shape=(3, 2), seed=0) -> Tensor:
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)


@pytest.mark.parametrize("mode", MODES)
def test_correct_custom_function_passes(mode) -> None:
    assert gradcheck(lambda t: Square()(t), [_x()], mode=mode) is True
    assert gradgradcheck(lambda t: Square()(t), [_x()], mode=mode) is True


@pytest.mark.parametrize("mode", MODES)
def test_several_inputs_and_outputs(mode) -> None:
    inputs = [_x(seed=1), _x(seed=2)]
    assert gradcheck(lambda a, b: ProductAndSum()(a, b), inputs, mode=mode)
    assert gradgradcheck(lambda a, b: ProductAndSum()(a, b), inputs, mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_wrong_backward_fails(mode) -> None:
    what = "full Jacobian" if mode == "full" else "direction"
    with pytest.raises(GradcheckError, match=rf"gradcheck failed for input 0 \({what}\).*analytic"):
        gradcheck(lambda t: WrongSquare()(t), [_x()], mode=mode)
    assert gradcheck(lambda t: WrongSquare()(t), [_x()], mode=mode, raise_exception=False) is False


@pytest.mark.parametrize("mode", MODES)
def test_wrong_second_derivative_fails_only_gradgradcheck(mode) -> None:
    assert gradcheck(lambda t: ConstantSlopeSquare()(t), [_x()], mode=mode)
    with pytest.raises(GradcheckError, match="gradcheck failed"):
        gradgradcheck(lambda t: ConstantSlopeSquare()(t), [_x()], mode=mode)
    assert not gradgradcheck(lambda t: ConstantSlopeSquare()(t), [_x()], mode=mode,
                             raise_exception=False)


def test_full_mode_reports_the_failing_jacobian_entry() -> None:
    # d(2x)/dx is diagonal; the wrong op gets 3x instead of 2x, largest where |x| is largest.
    x = Tensor(np.array([0.1, -2.0, 0.5]), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"\(1, 1\): analytic -6 vs numerical -4"):
        gradcheck(lambda t: WrongSquare()(t), [x])


def test_only_inputs_that_require_grad_are_checked() -> None:
    x = _x()
    constant = Tensor(np.ones((3, 2), np.float32))  # float32 is fine when not checked.
    assert gradcheck(lambda a, c: Square()(a) * c.double(), [x, constant])


def test_float32_inputs_are_rejected() -> None:
    x32 = Tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match=r"input 0 has dtype float32.*float64.*astype"):
        gradcheck(lambda t: Square()(t), [x32])
    with pytest.raises(TypeError, match="float64"):
        gradgradcheck(lambda t: Square()(t), [x32])


def test_non_tensor_inputs_and_unknown_mode_are_rejected() -> None:
    with pytest.raises(TypeError, match="input 0 is a ndarray, not a Tensor"):
        gradcheck(lambda t: t, [np.ones(2)])
    with pytest.raises(ValueError, match="mode must be 'full' or 'fast', got 'exact'"):
        gradcheck(lambda t: Square()(t), [_x()], mode="exact")


def test_library_ops_pass_in_composition() -> None:
    def fn(a, b):
        return F.tanh(a @ b).sum(axis=0) * F.exp(b).mean()

    inputs = [_x((2, 3), seed=3), _x((3, 4), seed=4)]
    for mode in MODES:
        assert gradcheck(fn, inputs, mode=mode)
        assert gradgradcheck(fn, inputs, mode=mode)


def test_gradcheck_leaves_inputs_unchanged() -> None:
    x = _x()
    before = x.array.copy()
    gradcheck(lambda t: Square()(t), [x])
    np.testing.assert_array_equal(x.array, before)
    assert x.grad is None
