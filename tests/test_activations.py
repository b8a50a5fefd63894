"""Activation functions, the erf they rely on, the activation registry and the layers.

Gradients of every activation op are checked by the generic registry tests
(tests/op_db.py); this file checks definitions, stability, options and errors.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor, nn
from nurinet.autograd.gradcheck import gradcheck, gradgradcheck
from nurinet.functional import activation_registry
from nurinet.functional.special import erf_array
from nurinet.nn import activation as A


def t64(values, grad: bool = False) -> Tensor:
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=grad)


# ----- erf ----------------------------------------------------------------------------------


def test_erf_matches_math_erf_in_float64() -> None:
    x = np.linspace(-8.0, 8.0, 40001)
    want = np.array([math.erf(v) for v in x])
    assert np.abs(erf_array(x) - want).max() < 2e-14


def test_erf_relative_accuracy_near_zero_and_float32() -> None:
    tiny = np.geomspace(1e-300, 1e-2, 200)
    want = np.array([math.erf(v) for v in tiny])
    assert (np.abs(erf_array(tiny) - want) / want).max() < 1e-14
    x32 = np.linspace(-6, 6, 2001, dtype=np.float32)
    got = erf_array(x32)
    assert got.dtype == np.float32
    assert np.abs(got - [math.erf(float(v)) for v in x32]).max() < 3e-7


def test_erf_special_values_and_symmetry() -> None:
    got = erf_array(np.array([np.inf, -np.inf, 0.0, 50.0, -50.0]))
    np.testing.assert_array_equal(got, [1.0, -1.0, 0.0, 1.0, -1.0])
    assert np.isnan(erf_array(np.array([np.nan]))[0])
    x = np.linspace(0.01, 5, 50)
    np.testing.assert_array_equal(erf_array(-x), -erf_array(x))


# ----- definitions and stability --------------------------------------------------------------


def test_sigmoid_is_one_over_one_plus_exp_minus_x() -> None:
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(F.sigmoid(t64(x)).array, 1.0 / (1.0 + np.exp(-x)), rtol=1e-15)
    # The formula printed in one widely shared note, 1 - 1/(1+e^-x), is sigmoid(-x): not ours.
    assert F.sigmoid(t64([2.0])).item() > 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_has_no_overflow_at_plus_minus_1000(dtype) -> None:
    x = Tensor(np.array([-1000.0, -40.0, 40.0, 1000.0], dtype=dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.sigmoid(x)
        y.sum().backward()
    assert y.dtype == dtype
    assert y.array[0] == 0.0 and y.array[-1] == 1.0
    assert y.array[1] > 0  # exp(-40) survives: no 1 - 1 cancellation on the negative side.
    assert np.all(np.isfinite(x.grad.array))


@pytest.mark.parametrize("name", ["softplus", "silu", "mish", "gelu", "elu", "selu", "celu",
                                  "log_softmax", "softmax", "rational_tanh", "softsign"])
def test_activations_are_finite_and_silent_at_extremes(name) -> None:
    x = t64([-1000.0, -50.0, 0.0, 50.0, 1000.0], grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = getattr(F, name)(x)
        y.sum().backward()
    assert np.all(np.isfinite(y.array)) and np.all(np.isfinite(x.grad.array))


def test_softplus_and_mish_limits() -> None:
    big = t64([1000.0, 30.0])
    np.testing.assert_allclose(F.softplus(big).array, [1000.0, 30.0], rtol=1e-12)
    np.testing.assert_allclose(F.mish(big).array, [1000.0, 30.0], rtol=1e-12)
    np.testing.assert_allclose(F.softplus(t64([-1000.0])).array, [0.0], atol=1e-300)


def test_leaky_relu_default_slope_is_one_hundredth() -> None:
    np.testing.assert_allclose(F.leaky_relu(t64([-2.0, 3.0])).array, [-0.02, 3.0])
    assert nn.LeakyReLU().negative_slope == 0.01


def test_selu_constants() -> None:
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    np.testing.assert_allclose(F.selu(t64([-1.0, 2.0])).array,
                               [scale * alpha * (math.exp(-1) - 1), scale * 2.0], rtol=1e-15)


def test_gelu_exact_and_tanh_forms() -> None:
    x = np.linspace(-4, 4, 81)
    exact = F.gelu(t64(x)).array
    want = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x]
    np.testing.assert_allclose(exact, want, rtol=1e-13, atol=3e-14)
    approx = F.gelu(t64(x), approximate="tanh").array
    assert np.abs(approx - exact).max() < 1e-3
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        F.gelu(t64(x), approximate="erf")


def test_gelu_gradient_is_cdf_plus_x_pdf() -> None:
    x = t64([-1.3, 0.2, 2.0], grad=True)
    F.gelu(x).sum().backward()
    v = x.array
    cdf = 0.5 * (1 + np.array([math.erf(u / math.sqrt(2)) for u in v]))
    pdf = np.exp(-v * v / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(x.grad.array, cdf + v * pdf, rtol=1e-13)


def test_hardsigmoid_is_pytorch_relu6_definition() -> None:
    np.testing.assert_allclose(F.hardsigmoid(t64([-4.0, -3.0, 0.0, 1.5, 3.0, 4.0])).array,
                               [0.0, 0.0, 0.5, 0.75, 1.0, 1.0])


def test_hardtanh_bounds_and_error() -> None:
    np.testing.assert_allclose(F.hardtanh(t64([-3.0, 0.2, 3.0]), -0.5, 2.0).array, [-0.5, 0.2, 2.0])
    with pytest.raises(ValueError, match="min_val < max_val"):
        F.hardtanh(t64([1.0]), 1.0, 1.0)


def test_rational_tanh_follows_dl4j_formula() -> None:
    x = np.linspace(-6, 6, 121)
    y = 2 * x / 3
    want = 1.7159 * np.sign(y) * (1 - 1 / (1 + np.abs(y) + y**2 + 1.41645 * y**4))
    np.testing.assert_allclose(F.rational_tanh(t64(x)).array, want, rtol=1e-14, atol=1e-15)
    # It approximates LeCun's 1.7159 tanh(2x/3): saturates at 1.7159, slope 1.7159 * 2/3 at 0.
    assert np.abs(want - 1.7159 * np.tanh(y)).max() < 0.03
    assert abs(F.rational_tanh(t64([1e6])).item() - 1.7159) < 1e-6
    x0 = t64([0.0], grad=True)
    F.rational_tanh(x0).sum().backward()
    assert x0.grad.item() == pytest.approx(1.7159 * 2 / 3, rel=1e-14)


def test_cube_and_identity() -> None:
    x = t64([-2.0, 0.5], grad=True)
    np.testing.assert_allclose(F.cube(x).array, [-8.0, 0.125])
    assert F.identity(x) is x


# ----- softmax, log-softmax, maxout -------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_sums_to_one_on_any_axis_and_keeps_argmax(axis) -> None:
    x = np.random.default_rng(0).normal(size=(3, 4, 5)) * 10
    y = F.softmax(t64(x), axis=axis).array
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=1e-14)
    assert (y >= 0).all()
    np.testing.assert_array_equal(y.argmax(axis=axis), x.argmax(axis=axis))
    logy = F.log_softmax(t64(x), axis=axis).array
    np.testing.assert_allclose(logy, np.log(y), rtol=1e-12, atol=1e-12)


def test_softmax_is_stable_for_huge_logits() -> None:
    x = t64([[1000.0, 1000.0, -1000.0], [1e4, 0.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.softmax(x).array
        logy = F.log_softmax(x).array
    np.testing.assert_allclose(y, [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    assert logy[1, 1] == -1e4 and np.isfinite(logy).all()


def test_softmax_gradient_of_the_sum_is_zero() -> None:
    x = t64(np.random.default_rng(1).normal(size=(2, 5)), grad=True)
    F.softmax(x, axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.array, 0.0, atol=1e-15)


def test_maxout_groups_consecutive_pieces() -> None:
    x = t64(np.arange(12.0).reshape(1, 6, 2) * np.array([1, -1])[None, None, :])
    y = F.maxout(x, 3, axis=1)
    assert y.shape == (1, 2, 2)
    np.testing.assert_allclose(y.array[0], [[4.0, -1.0], [10.0, -7.0]])
    with pytest.raises(ValueError, match="6 entries, which is not a multiple of pieces=4"):
        F.maxout(x, 4, axis=1)


# ----- PReLU and RReLU ----------------------------------------------------------------------------


def test_prelu_layer_learns_one_slope_per_channel() -> None:
    layer = nn.PReLU(3)
    assert layer.weight.shape == (3,) and layer.weight.dtype == np.float32
    np.testing.assert_array_equal(layer.weight.array, 0.25)
    x = Tensor(np.array([[[-1.0, 2.0], [-3.0, -1.0], [4.0, 5.0]]], dtype=np.float32))
    y = layer(x)
    np.testing.assert_allclose(y.array, [[[-0.25, 2.0], [-0.75, -0.25], [4.0, 5.0]]])
    y.sum().backward()
    np.testing.assert_allclose(layer.weight.grad.array, [-1.0, -4.0, 0.0])
    assert list(layer.state_dict()) == ["weight"]


def test_prelu_shared_slope_and_errors() -> None:
    layer = nn.PReLU()
    y = layer(Tensor(np.array([[-2.0, 1.0]], dtype=np.float32)))
    np.testing.assert_allclose(y.array, [[-0.5, 1.0]])
    with pytest.raises(ValueError, match=r"weight has shape \(3,\) but the input of shape \(2, 4\)"):
        nn.PReLU(3)(Tensor(np.ones((2, 4), np.float32)))
    with pytest.raises(ValueError, match="num_parameters must be a positive integer"):
        nn.PReLU(0)


def test_rrelu_random_slopes_while_training_mean_slope_in_eval() -> None:
    x = -np.ones((200, 50))
    y = F.rrelu(t64(x), training=True, generator=nurinet.Generator(5)).array
    slopes = -y
    assert slopes.min() >= 1 / 8 and slopes.max() <= 1 / 3
    assert len(np.unique(slopes)) > 1000  # One slope per element.
    assert abs(slopes.mean() - (1 / 8 + 1 / 3) / 2) < 0.005
    again = F.rrelu(t64(x), training=True, generator=nurinet.Generator(5)).array
    np.testing.assert_array_equal(y, again)  # Seedable.
    np.testing.assert_allclose(F.rrelu(t64([-2.0, 3.0])).array, [-2 * (1 / 8 + 1 / 3) / 2, 3.0])


def test_rrelu_layer_follows_train_and_eval() -> None:
    layer = nn.RReLU(0.1, 0.3, generator=nurinet.Generator(0))
    x = Tensor(-np.ones((4, 4), np.float32))
    train_out = layer(x).array
    assert len(np.unique(train_out)) > 1
    layer.eval()
    np.testing.assert_allclose(layer(x).array, -0.2, rtol=1e-6)
    with pytest.raises(ValueError, match="lower <= upper"):
        nn.RReLU(0.5, 0.1)


# ----- registry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name,fn", [
    ("relu", F.relu), ("ReLU", F.relu), ("leakyrelu", F.leaky_relu), ("leaky_relu", F.leaky_relu),
    ("LeakyReLU", F.leaky_relu), ("Leaky-ReLU", F.leaky_relu), ("softmax", F.softmax),
    ("log_softmax", F.log_softmax), ("swish", F.silu), ("SiLU", F.silu), ("linear", F.identity),
    ("hard_sigmoid", F.hardsigmoid), ("HardTanh", F.hardtanh), ("rational_tanh", F.rational_tanh),
    ("CUBE", F.cube), ("tanh", F.tanh), ("sigmoid", F.sigmoid), ("gelu", F.gelu),
])
def test_get_activation_resolves_names_case_insensitively(name, fn) -> None:
    assert F.get_activation(name) is fn


def test_get_activation_passes_callables_and_none() -> None:
    assert F.get_activation(F.relu) is F.relu
    assert F.get_activation(None) is F.identity
    x = t64([-1.0, 2.0])
    np.testing.assert_allclose(F.get_activation("gelu_tanh")(x).array,
                               F.gelu(x, approximate="tanh").array)


def test_get_activation_unknown_name_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown activation 'relu7'.*leakyrelu.*sigmoid"):
        F.get_activation("relu7")
    with pytest.raises(TypeError, match="a name or a callable"):
        F.get_activation(3)
    with pytest.raises(ValueError, match=r"learned weight.*nn\.PReLU"):
        F.get_activation("prelu")(t64([1.0]))


def test_register_activation_forward_only_gets_gradients() -> None:
    def quick_gelu(x):
        return x * F.sigmoid(x * 1.702)

    try:
        F.register_activation("Quick_GELU", quick_gelu)
        fn = F.get_activation("quickgelu")
        assert fn is quick_gelu
        x = t64(np.random.default_rng(2).uniform(-3, 3, (3, 4)), grad=True)
        assert gradcheck(fn, [x])
        assert gradgradcheck(fn, [x], mode="fast")
        layer = nn.Activation("quick-gelu")
        np.testing.assert_allclose(layer(x).array, quick_gelu(x).array)
        with pytest.raises(ValueError, match="exists already; pass overwrite=True"):
            F.register_activation("quick_gelu", F.relu)
        F.register_activation("quick_gelu", F.relu, overwrite=True)
        assert F.get_activation("quickgelu") is F.relu
    finally:
        activation_registry._REGISTRY.pop("quickgelu", None)
    with pytest.raises(ValueError, match="unknown activation"):
        F.get_activation("quickgelu")


def test_register_activation_as_decorator_and_bad_values() -> None:
    try:
        @F.register_activation("twice_relu")
        def twice_relu(x):
            return F.relu(x) * 2.0

        np.testing.assert_allclose(F.get_activation("twicerelu")(t64([-1.0, 1.5])).array, [0.0, 3.0])
    finally:
        activation_registry._REGISTRY.pop("twicerelu", None)
    with pytest.raises(TypeError, match="must map to a callable"):
        F.register_activation("thing", 3)
    with pytest.raises(ValueError, match="not a usable name"):
        F.register_activation("__", F.relu)


# ----- layers -----------------------------------------------------------------------------------

LAYERS = [
    (nn.Sigmoid(), F.sigmoid), (nn.Tanh(), F.tanh), (nn.ReLU(), F.relu), (nn.ReLU6(), F.relu6),
    (nn.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)), (nn.ELU(0.5), lambda x: F.elu(x, 0.5)),
    (nn.SELU(), F.selu), (nn.CELU(0.7), lambda x: F.celu(x, 0.7)), (nn.GELU(), F.gelu),
    (nn.GELU("tanh"), lambda x: F.gelu(x, "tanh")), (nn.SiLU(), F.silu), (nn.Mish(), F.mish),
    (nn.Softplus(2.0, 5.0), lambda x: F.softplus(x, 2.0, 5.0)), (nn.Softsign(), F.softsign),
    (nn.Hardsigmoid(), F.hardsigmoid), (nn.Hardtanh(-2.0, 2.0), lambda x: F.hardtanh(x, -2, 2)),
    (nn.RationalTanh(), F.rational_tanh), (nn.Cube(), F.cube),
    (nn.Softmax(dim=0), lambda x: F.softmax(x, 0)), (nn.LogSoftmax(dim=1), F.log_softmax),
    (nn.Activation("leaky_relu"), F.leaky_relu), (nn.Activation(F.mish), F.mish),
    (nn.RReLU(), F.rrelu),
]


@pytest.mark.parametrize("layer,fn", LAYERS, ids=[type(m).__name__ for m, _ in LAYERS])
def test_layer_matches_its_function_and_keeps_float32(layer, fn) -> None:
    layer.eval()
    x = Tensor(np.random.default_rng(3).normal(size=(3, 4)).astype(np.float32))
    y = layer(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.array, fn(x).array, rtol=1e-6)


def test_layer_reprs() -> None:
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.Activation("relu")) == "Activation('relu')"


def test_layer_argument_errors() -> None:
    with pytest.raises(ValueError, match="approximate must be"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="alpha must be non-zero"):
        nn.CELU(0.0)
    with pytest.raises(ValueError, match="beta must be non-zero"):
        nn.Softplus(0.0)
    with pytest.raises(ValueError, match="min_val < max_val"):
        nn.Hardtanh(1.0, -1.0)
    with pytest.raises(ValueError, match=r"unknown activation 'nope'.*relu"):
        nn.Activation("nope")


def test_activation_by_name_builds_stateful_layers() -> None:
    prelu = nn.Activation("PReLU")
    assert [name for name, _ in prelu.named_parameters()] == ["layer.weight"]
    rrelu = nn.Activation("rrelu")
    x = Tensor(-np.ones((3, 3), np.float32))
    assert len(np.unique(rrelu(x).array)) > 1
    rrelu.eval()
    np.testing.assert_allclose(rrelu(x).array, -(1 / 8 + 1 / 3) / 2, rtol=1e-6)


def test_nn_get_activation_gives_layers() -> None:
    layer = A.get_activation("relu")
    assert isinstance(layer, nn.Module)
    assert A.get_activation(None) is None
    assert A.get_activation(F.tanh) is F.tanh


def test_tensor_methods() -> None:
    x = t64([[1.0, -2.0], [0.5, 3.0]])
    np.testing.assert_allclose(x.relu().array, F.relu(x).array)
    np.testing.assert_allclose(x.sigmoid().array, F.sigmoid(x).array)
    np.testing.assert_allclose(x.softmax(0).array, F.softmax(x, 0).array)
    np.testing.assert_allclose(x.log_softmax().array, F.log_softmax(x).array)
