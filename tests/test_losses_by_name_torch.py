"""Losses found by name against PyTorch: each name applied to a softmax/sigmoid/log-softmax output
(or to logits and values) gives PyTorch's value and input gradient for the objective it means,
in float64, with saturated logits included."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import nurinet
import nurinet.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

pytestmark = pytest.mark.torch

RNG = np.random.default_rng(5)
Z = RNG.normal(size=(7, 4)) * np.array([[1.0], [1.0], [30.0], [1.0], [60.0], [1.0], [2.0]])
Y = RNG.integers(0, 4, 7)
ONE_HOT = np.eye(4)[Y]
B = RNG.integers(0, 2, (7, 4)).astype(np.float64)
V = RNG.uniform(0.5, 2.0, (7, 4))


def _ours(name: str, activation: Any, target: Any) -> tuple[float, np.ndarray]:
    z = nurinet.tensor(Z, requires_grad=True)
    out = activation(z)
    loss = F.get_loss(name)(out, target)
    loss.backward()
    return loss.item(), z.grad.numpy()


def _theirs(fn: Any) -> tuple[float, np.ndarray]:
    z = torch.tensor(Z, requires_grad=True)
    loss = fn(z)
    loss.backward()
    return loss.item(), z.grad.numpy()


SOFTMAX = (lambda z: F.softmax(z, axis=-1))
SIGMOID = F.sigmoid
LOG_SOFTMAX = (lambda z: F.log_softmax(z, axis=-1))
IDENTITY = (lambda z: z)

CASES = [
    ("MCXENT", SOFTMAX, Y, lambda z: TF.cross_entropy(z, torch.tensor(Y))),
    ("NEGATIVELOGLIKELIHOOD", SOFTMAX, Y, lambda z: TF.cross_entropy(z, torch.tensor(Y))),
    ("categorical_crossentropy", SOFTMAX, ONE_HOT,
     lambda z: TF.cross_entropy(z, torch.tensor(ONE_HOT))),
    ("sparse_categorical_crossentropy", SOFTMAX, Y, lambda z: TF.cross_entropy(z, torch.tensor(Y))),
    ("cross_entropy", SOFTMAX, Y, lambda z: TF.cross_entropy(z, torch.tensor(Y))),
    ("cross_entropy", IDENTITY, Y, lambda z: TF.cross_entropy(z, torch.tensor(Y))),
    ("nll_loss", LOG_SOFTMAX, Y, lambda z: TF.nll_loss(TF.log_softmax(z, -1), torch.tensor(Y))),
    ("XENT", SIGMOID, B, lambda z: TF.binary_cross_entropy_with_logits(z, torch.tensor(B))),
    ("BCELoss", SIGMOID, B, lambda z: TF.binary_cross_entropy_with_logits(z, torch.tensor(B))),
    ("bce_with_logits", IDENTITY, B, lambda z: TF.binary_cross_entropy_with_logits(z, torch.tensor(B))),
    ("kl_div", LOG_SOFTMAX, V / V.sum(1, keepdims=True),
     lambda z: TF.kl_div(TF.log_softmax(z, -1), torch.tensor(V / V.sum(1, keepdims=True)))),
    ("KL_DIVERGENCE", SOFTMAX, V / V.sum(1, keepdims=True),
     lambda z: TF.kl_div(TF.log_softmax(z, -1), torch.tensor(V / V.sum(1, keepdims=True)),
                         reduction="batchmean")),
    ("poisson_nll_loss", IDENTITY, V, lambda z: TF.poisson_nll_loss(z, torch.tensor(V))),
    ("mse", SIGMOID, B, lambda z: TF.mse_loss(torch.sigmoid(z), torch.tensor(B))),
    ("huber", IDENTITY, V, lambda z: TF.huber_loss(z, torch.tensor(V))),
]


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")
@pytest.mark.parametrize("name,activation,target,reference", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_loss_by_name_matches_pytorch(name, activation, target, reference) -> None:
    value, grad = _ours(name, activation, target)
    expected, expected_grad = _theirs(reference)
    assert value == pytest.approx(expected, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-12)


def test_poisson_nll_full_matches_pytorch() -> None:
    x, t = RNG.normal(size=(5, 3)), RNG.integers(0, 6, (5, 3)).astype(np.float64)
    ours = F.loss_regression.poisson_nll_loss(nurinet.tensor(x), nurinet.tensor(t), full=True).item()
    theirs = TF.poisson_nll_loss(torch.tensor(x), torch.tensor(t), full=True).item()
    assert ours == pytest.approx(theirs, rel=1e-12)
    p = np.abs(x) + 0.1
    ours = F.loss_regression.poisson_nll_loss(nurinet.tensor(p), nurinet.tensor(t), log_input=False).item()
    theirs = TF.poisson_nll_loss(torch.tensor(p), torch.tensor(t), log_input=False).item()
    assert ours == pytest.approx(theirs, rel=1e-12)
