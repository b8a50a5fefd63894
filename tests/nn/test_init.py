"""nn.init: each initializer draws from the distribution its docstring writes out.

Moment checks use tolerances from sampling theory with a fixed seed: for n iid
draws of standard deviation s and kurtosis k, the sample mean has standard error
s / sqrt(n) and the sample standard deviation about s * sqrt((k - 1) / (4 n)).
We allow 5 standard errors (a false failure has probability under 1e-6).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import nurinet
from nurinet import Parameter, Tensor, nn
from nurinet.nn import init
from nurinet.nn.init import _calculate_fan_in_and_fan_out

UNIFORM_KURTOSIS, NORMAL_KURTOSIS = 1.8, 3.0


def _empty(*shape: int, dtype=np.float32) -> Parameter:
    return Parameter(np.full(shape, np.nan, dtype))


def assert_moments(values: np.ndarray, mean: float, std: float, kurtosis: float) -> None:
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    assert abs(x.mean() - mean) < 5 * std / math.sqrt(n), f"mean {x.mean()} vs {mean}"
    assert abs(x.std() - std) < 5 * std * math.sqrt((kurtosis - 1) / (4 * n)), f"std {x.std()} vs {std}"


def pdf(z: float) -> float:
    """The standard normal density."""
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def assert_uniform(values: np.ndarray, bound: float) -> None:
    """U(-bound, bound): inside the bounds, reaching near both ends, with its moments."""
    assert values.min() >= -bound and values.max() <= bound
    assert values.max() > 0.999 * bound and values.min() < -0.999 * bound
    assert_moments(values, 0.0, bound / math.sqrt(3.0), UNIFORM_KURTOSIS)


# ----- fans and gains ---------------------------------------------------------------------------
def test_fans_of_linear_and_conv_weights() -> None:
    assert _calculate_fan_in_and_fan_out(_empty(30, 20)) == (20, 30)
    assert _calculate_fan_in_and_fan_out(_empty(16, 3, 5, 5)) == (75, 400)
    assert _calculate_fan_in_and_fan_out(_empty(8, 4, 3)) == (12, 24)
    with pytest.raises(ValueError, match="at least 2 dimensions.*shape \\(5,\\)"):
        _calculate_fan_in_and_fan_out(_empty(5))


def test_calculate_gain() -> None:
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("conv2d") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="slope must be a number"):
        init.calculate_gain("leaky_relu", "0.1")


@pytest.mark.torch
def test_gains_and_fans_match_pytorch() -> None:
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("tanh", None), ("relu", None), ("leaky_relu", None),
                        ("leaky_relu", 0.3), ("selu", None), ("sigmoid", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))
    fans = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(16, 3, 5, 5))
    assert _calculate_fan_in_and_fan_out(_empty(16, 3, 5, 5)) == fans


# ----- constant fills --------------------------------------------------------------------------
def test_constant_fills_in_place() -> None:
    w = _empty(3, 4)
    array = w.array
    assert init.zeros_(w) is w and w.array is array and np.all(w.array == 0)
    init.ones_(w)
    assert np.all(w.array == 1)
    init.constant_(w, -2.5)
    assert np.all(w.array == -2.5) and w.dtype == np.float32


# ----- random fills -----------------------------------------------------------------------------
def test_uniform_and_normal() -> None:
    g = nurinet.Generator(0)
    w = init.uniform_(_empty(400, 500), -0.3, 0.7, generator=g)
    assert w.dtype == np.float32
    assert w.array.min() >= -0.3 and w.array.max() <= 0.7
    assert_moments(w.array, 0.2, 1.0 / math.sqrt(12), UNIFORM_KURTOSIS)
    w = init.normal_(_empty(400, 500), 1.5, 0.2, generator=g)
    assert_moments(w.array, 1.5, 0.2, NORMAL_KURTOSIS)


def test_trunc_normal() -> None:
    w = init.trunc_normal_(_empty(400, 500, dtype=np.float64), mean=0.5, std=2.0, a=-3.0, b=4.0,
                           generator=nurinet.Generator(1))
    assert w.array.min() >= -3.0 and w.array.max() <= 4.0
    # Moments of N(mu, s^2) truncated to [a, b], with alpha, beta the standardized bounds.
    mu, s, alpha, beta = 0.5, 2.0, -1.75, 1.75
    mass = 0.5 * (math.erf(beta / math.sqrt(2)) - math.erf(alpha / math.sqrt(2)))
    mean = mu + s * (pdf(alpha) - pdf(beta)) / mass
    var = s**2 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / mass - ((pdf(alpha) - pdf(beta)) / mass) ** 2)
    assert_moments(w.array, mean, math.sqrt(var), NORMAL_KURTOSIS)  # truncation lowers the kurtosis


def test_xavier() -> None:
    g = nurinet.Generator(2)
    w = init.xavier_uniform_(_empty(300, 700), gain=2.0, generator=g)
    assert_uniform(w.array, 2.0 * math.sqrt(6 / 1000))
    w = init.xavier_normal_(_empty(300, 700), gain=0.5, generator=g)
    assert_moments(w.array, 0.0, 0.5 * math.sqrt(2 / 1000), NORMAL_KURTOSIS)


def test_kaiming() -> None:
    g = nurinet.Generator(3)
    w = init.kaiming_uniform_(_empty(400, 250), generator=g)  # leaky_relu with a=0: gain sqrt(2)
    assert_uniform(w.array, math.sqrt(2) * math.sqrt(3 / 250))
    w = init.kaiming_uniform_(_empty(400, 250), a=0.2, mode="fan_out", generator=g)
    assert_uniform(w.array, math.sqrt(2 / 1.04) * math.sqrt(3 / 400))
    w = init.kaiming_normal_(_empty(64, 32, 3, 3), mode="fan_in", nonlinearity="relu", generator=g)
    assert_moments(w.array, 0.0, math.sqrt(2 / (32 * 9)), NORMAL_KURTOSIS)
    w = init.kaiming_normal_(_empty(500, 400), nonlinearity="tanh", mode="fan_out", generator=g)
    assert_moments(w.array, 0.0, (5 / 3) / math.sqrt(500), NORMAL_KURTOSIS)


def test_lecun() -> None:
    g = nurinet.Generator(4)
    w = init.lecun_uniform_(_empty(500, 300), generator=g)
    assert_uniform(w.array, math.sqrt(3 / 300))
    w = init.lecun_normal_(_empty(500, 300), generator=g)
    assert_moments(w.array, 0.0, math.sqrt(1 / 300), NORMAL_KURTOSIS)


@pytest.mark.parametrize("shape", [(4, 9), (9, 4), (6, 6), (5, 2, 3, 3)])
def test_orthogonal(shape: tuple[int, ...]) -> None:
    w = init.orthogonal_(_empty(*shape, dtype=np.float64), gain=1.5, generator=nurinet.Generator(5))
    m = w.array.reshape(shape[0], -1)
    rows, cols = m.shape
    gram = m @ m.T if rows <= cols else m.T @ m
    np.testing.assert_allclose(gram, 1.5**2 * np.eye(min(rows, cols)), atol=1e-12)


def test_orthogonal_is_not_biased_towards_the_identity() -> None:
    # Folding in sign(diag(R)) makes Q Haar-distributed: E[Q_11] = 0. Without it, Q_11 < 0 always.
    g = nurinet.Generator(6)
    first = [init.orthogonal_(_empty(3, 3, dtype=np.float64), generator=g).array[0, 0] for _ in range(400)]
    assert abs(np.mean(first)) < 5 * math.sqrt(1 / 3) / math.sqrt(400)


# ----- reproducibility --------------------------------------------------------------------------
def test_generator_and_manual_seed_make_draws_reproducible() -> None:
    a = init.xavier_uniform_(_empty(5, 4), generator=nurinet.Generator(9)).array.copy()
    b = init.xavier_uniform_(_empty(5, 4), generator=nurinet.Generator(9)).array.copy()
    np.testing.assert_array_equal(a, b)
    nurinet.manual_seed(3)
    np.random.seed(0)  # NumPy's global state must play no part
    c = init.kaiming_normal_(_empty(5, 4)).array.copy()
    nurinet.manual_seed(3)
    np.random.seed(1)
    d = init.kaiming_normal_(_empty(5, 4)).array.copy()
    np.testing.assert_array_equal(c, d)
    assert not np.array_equal(c, init.kaiming_normal_(_empty(5, 4)).array)


def test_linear_default_init_is_uniform_one_over_sqrt_in_features() -> None:
    layer = nn.Linear(400, 600, generator=nurinet.Generator(10))
    assert_uniform(layer.weight.array, 1 / math.sqrt(400))
    assert layer.bias.array.min() >= -1 / 20 and layer.bias.array.max() <= 1 / 20
    assert_moments(layer.bias.array, 0.0, (1 / 20) / math.sqrt(3), UNIFORM_KURTOSIS)


# ----- errors -----------------------------------------------------------------------------------
def test_initializer_errors() -> None:
    with pytest.raises(TypeError, match="fills a nurinet Tensor"):
        init.zeros_(np.zeros(3))
    with pytest.raises(TypeError, match="floating-point tensor"):
        init.normal_(Tensor(np.zeros(3, np.int64)))
    with pytest.raises(ValueError, match="must not exceed"):
        init.uniform_(_empty(3), 1.0, 0.0)
    with pytest.raises(ValueError, match="std must be >= 0"):
        init.normal_(_empty(3), std=-1.0)
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_uniform_(_empty(3, 3), mode="fan_avg")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_normal_(_empty(3))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.orthogonal_(_empty(3))
    with pytest.raises(ValueError, match="its fan_in is 0"):
        init.lecun_normal_(_empty(3, 0))
    with pytest.raises(ValueError, match="std > 0 and a < b"):
        init.trunc_normal_(_empty(3), a=1.0, b=-1.0)
    with pytest.raises(ValueError, match="holds only"):
        init.trunc_normal_(_empty(3), mean=0.0, std=1.0, a=10.0, b=11.0)
