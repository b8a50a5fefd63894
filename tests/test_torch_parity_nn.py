"""Activations and losses against ``torch.nn.functional``: forward values and input
gradients in float64.

Every tests/op_db.py entry that exercises an activation or loss op is mapped to a PyTorch
callable in :data:`TORCH_NN` or listed in :data:`NO_TORCH_COUNTERPART` with the reason
(a test enforces it). Further cases sweep the options (reductions, label smoothing,
class weights, ignore_index, spatial targets) and wide input ranges.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor
from nurinet.functional import activation, loss, loss_classification, special
from tests.op_db import (
    BCE_W,
    CE_T,
    CE_T4,
    CE_T_PLAIN,
    CE_W,
    COS_Y,
    HINGE_Y,
    OPS,
    PAIR_Y,
    POS_W,
    OpSpec,
)

torch = pytest.importorskip("torch")
TF = torch.nn.functional

pytestmark = pytest.mark.torch


def _t(array: np.ndarray) -> Any:
    return torch.from_numpy(np.asarray(array))


def _maxout(x: Any) -> Any:
    return x.reshape(x.shape[0], -1, 3, *x.shape[2:]).max(dim=2).values


def _hinge(s: Any, squared: bool = False) -> Any:
    margin = torch.clamp(1 - _t(HINGE_Y) * s, min=0)
    return (margin**2 if squared else margin).mean()


def _contrastive(d: Any) -> Any:
    y = _t(PAIR_Y)
    return (y * d**2 + (1 - y) * torch.clamp(2.5 - d, min=0) ** 2).mean()


TORCH_NN: dict[str, Callable[..., Any]] = {
    "sigmoid": torch.sigmoid,
    "relu": TF.relu,
    "leaky_relu": lambda x: TF.leaky_relu(x, 0.2),
    "rrelu_eval": TF.rrelu,
    "prelu_channels": TF.prelu,
    "prelu_shared": TF.prelu,
    "elu": lambda x: TF.elu(x, 0.8),
    "selu": TF.selu,
    "celu": lambda x: TF.celu(x, 0.6),
    "erf": torch.erf,
    "gelu": TF.gelu,
    "gelu_tanh": lambda x: TF.gelu(x, approximate="tanh"),
    "silu": TF.silu,
    "mish": TF.mish,
    "softplus": lambda x: TF.softplus(x, beta=2.0),
    "softplus_linear_region": lambda x: TF.softplus(x, beta=2.0),
    "softsign": TF.softsign,
    "hardsigmoid": TF.hardsigmoid,
    "hardtanh": lambda x: TF.hardtanh(x, -0.5, 1.2),
    "relu6": TF.relu6,
    "cube": lambda x: x**3,
    "softmax": lambda x: TF.softmax(x, dim=1),
    "log_softmax": lambda x: TF.log_softmax(x, dim=-1),
    "maxout": _maxout,
    "mse_loss": TF.mse_loss,
    "mse_loss_sum": lambda a, b: TF.mse_loss(a, b, reduction="sum"),
    "l1_loss_none": lambda a, b: TF.l1_loss(a, b, reduction="none"),
    "huber_loss": lambda a, b: TF.huber_loss(a, b, reduction="sum", delta=0.8),
    "smooth_l1_loss": lambda a, b: TF.smooth_l1_loss(a, b, beta=0.6),
    "binary_cross_entropy": lambda p, y: TF.binary_cross_entropy(p, y, weight=_t(BCE_W)),
    "bce_with_logits": lambda x, y: TF.binary_cross_entropy_with_logits(
        x, y, weight=_t(BCE_W), reduction="sum", pos_weight=_t(POS_W)),
    "bce_with_logits_plain": TF.binary_cross_entropy_with_logits,
    "cross_entropy": lambda x: TF.cross_entropy(x, _t(CE_T), _t(CE_W), label_smoothing=0.1),
    "cross_entropy_plain": lambda x: TF.cross_entropy(x, _t(CE_T_PLAIN)),
    "cross_entropy_plain_sum": lambda x: TF.cross_entropy(x, _t(CE_T_PLAIN), reduction="sum"),
    "cross_entropy_nd_none": lambda x: TF.cross_entropy(x, _t(CE_T4), reduction="none"),
    "cross_entropy_probs": lambda x, q: TF.cross_entropy(x, q, _t(CE_W), label_smoothing=0.2),
    "cross_entropy_composite": lambda x: TF.cross_entropy(x, _t(CE_T), _t(CE_W),
                                                          label_smoothing=0.1),
    "nll_loss": lambda x: TF.nll_loss(x, _t(CE_T), _t(CE_W), reduction="sum"),
    "kl_div_batchmean": lambda lp, t: TF.kl_div(lp, t, reduction="batchmean"),
    "kl_div_log_target": lambda lp, t: TF.kl_div(lp, t, reduction="none", log_target=True),
    "hinge_loss": _hinge,
    "squared_hinge_loss": lambda s: _hinge(s, squared=True),
    "cosine_embedding_loss": lambda a, b: TF.cosine_embedding_loss(a, b, _t(COS_Y), margin=0.1),
    "pairwise_distance": TF.pairwise_distance,
    "contrastive_loss": _contrastive,
}

NO_TORCH_COUNTERPART = {
    "rrelu_train": "the random slopes come from nurinet's generator, not torch's; the "
                   "inference form is compared as rrelu_eval",
    "rational_tanh": "Deeplearning4j's activation, not in PyTorch; op_db checks it against "
                     "DL4J's published formula",
}

# PyTorch computes a few constants in float32 even for float64 tensors: celu's 1/alpha in
# its backward and hardsigmoid's 1/6, so those gradients agree to float32 precision only.
LOOSE = {"celu": 1e-6, "hardsigmoid": 1e-7}

MY_MODULES = (activation, loss, loss_classification, special)


def _compare(fn: Callable, torch_fn: Callable, arrays: list[np.ndarray],
             grad_inputs: Any = None, rtol: float = 1e-10) -> None:
    wanted = range(len(arrays)) if grad_inputs is None else grad_inputs
    ours = [Tensor(a, requires_grad=i in wanted) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=i in wanted) for i, a in enumerate(arrays)]
    y, ty = fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(y.array, ty.detach().numpy(), rtol=rtol, atol=1e-12)
    upstream = np.random.default_rng(9).normal(size=y.shape)
    targets = [x for x in ours if x.requires_grad]
    grads = nurinet.grad([y], targets, [Tensor(upstream)], allow_unused=True)
    tgrads = torch.autograd.grad([ty], [x for x in theirs if x.requires_grad], [_t(upstream)],
                                 allow_unused=True)
    for i, (g, tg) in enumerate(zip(grads, tgrads)):
        want = np.zeros(targets[i].shape) if tg is None else tg.numpy()
        got = np.zeros(targets[i].shape) if g is None else g.array
        np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-12, err_msg=f"input {i}")


def _mine(spec: OpSpec) -> bool:
    return any(cls.__module__ in {m.__name__ for m in MY_MODULES} for cls in spec.functions)


def test_every_activation_and_loss_entry_is_compared() -> None:
    mine = {s.name for s in OPS if _mine(s)}
    missing = sorted(mine - set(TORCH_NN) - set(NO_TORCH_COUNTERPART))
    assert not missing, f"op_db entries with no PyTorch comparison: {missing}"
    unknown = sorted((set(TORCH_NN) | set(NO_TORCH_COUNTERPART)) - {s.name for s in OPS})
    assert not unknown, f"names not in op_db: {unknown}"


SPECS = [s for s in OPS if s.name in TORCH_NN]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_op_db_entry_matches_torch(spec: OpSpec) -> None:
    arrays = spec.sample(np.random.default_rng(11))
    _compare(spec.fn, TORCH_NN[spec.name], arrays, spec.grad_inputs,
             rtol=LOOSE.get(spec.name, 1e-10))


WIDE = np.linspace(-40.0, 40.0, 401) + 0.01  # Off the kinks at 0; into both tails.
WIDE_ACTIVATIONS = [
    ("sigmoid", F.sigmoid, torch.sigmoid), ("tanh", F.tanh, torch.tanh),
    ("gelu", F.gelu, TF.gelu), ("gelu_tanh", lambda x: F.gelu(x, "tanh"),
                                lambda x: TF.gelu(x, approximate="tanh")),
    ("silu", F.silu, TF.silu), ("mish", F.mish, TF.mish), ("softplus", F.softplus, TF.softplus),
    ("elu", F.elu, TF.elu), ("selu", F.selu, TF.selu), ("softsign", F.softsign, TF.softsign),
    ("leaky_relu_default", F.leaky_relu, TF.leaky_relu), ("erf", F.erf, torch.erf),
    ("log_softmax_axis0", lambda x: F.log_softmax(x, 0), lambda x: TF.log_softmax(x, 0)),
    ("softmax_axis0", lambda x: F.softmax(x, 0), lambda x: TF.softmax(x, 0)),
]


@pytest.mark.parametrize("name,fn,torch_fn", WIDE_ACTIVATIONS, ids=[a[0] for a in WIDE_ACTIVATIONS])
def test_activation_matches_torch_over_a_wide_range(name, fn, torch_fn) -> None:
    _compare(fn, torch_fn, [WIDE])


X = np.random.default_rng(12).normal(size=(6, 4)) * 3
TARGET = np.array([0, 3, -100, 2, 1, 1])
WEIGHT = np.array([0.5, 2.0, 1.0, 1.5])
CE_OPTIONS = [(r, s, w) for r in ("mean", "sum", "none") for s in (0.0, 0.3) for w in (None, WEIGHT)]


@pytest.mark.parametrize("reduction,smoothing,weight", CE_OPTIONS)
def test_cross_entropy_options_match_torch(reduction, smoothing, weight) -> None:
    tw = None if weight is None else _t(weight)
    _compare(lambda x: F.cross_entropy(x, TARGET, weight, reduction=reduction,
                                       label_smoothing=smoothing),
             lambda x: TF.cross_entropy(x, _t(TARGET), tw, reduction=reduction,
                                        label_smoothing=smoothing), [X])
    _compare(lambda x: F.nll_loss(x, TARGET, weight, reduction=reduction),
             lambda x: TF.nll_loss(x, _t(TARGET), tw, reduction=reduction), [X])


def test_spatial_cross_entropy_and_custom_ignore_index_match_torch() -> None:
    x = np.random.default_rng(13).normal(size=(2, 3, 4, 5))
    target = np.random.default_rng(14).integers(0, 3, (2, 4, 5))
    _compare(lambda u: F.cross_entropy(u, target, WEIGHT[:3], ignore_index=1, label_smoothing=0.2),
             lambda u: TF.cross_entropy(u, _t(target), _t(WEIGHT[:3]), ignore_index=1,
                                        label_smoothing=0.2), [x])
    _compare(lambda u: F.cross_entropy(u, np.array(2)),
             lambda u: TF.cross_entropy(u, torch.tensor(2)), [X[0]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_and_regression_losses_match_torch(reduction) -> None:
    rng = np.random.default_rng(15)
    p, y, z = rng.uniform(0.02, 0.98, (5, 4)), rng.uniform(0, 1, (5, 4)), rng.normal(size=(5, 4))
    pairs = [
        (F.binary_cross_entropy, TF.binary_cross_entropy, [p, y]),
        (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits, [X[:5] * 5, y]),
        (F.mse_loss, TF.mse_loss, [z, y]),
        (F.l1_loss, TF.l1_loss, [z, y]),
        (F.huber_loss, TF.huber_loss, [z, y]),
        (F.smooth_l1_loss, TF.smooth_l1_loss, [z, y]),
    ]
    for fn, torch_fn, arrays in pairs:
        _compare(lambda *a, f=fn: f(*a, reduction=reduction),
                 lambda *a, f=torch_fn: f(*a, reduction=reduction), arrays)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
def test_kl_div_reductions_match_torch(reduction) -> None:
    rng = np.random.default_rng(16)
    lp = np.log(rng.dirichlet(np.ones(4), 5))
    q = rng.dirichlet(np.ones(4), 5)
    with warnings.catch_warnings():  # PyTorch warns that its 'mean' is not the true KL.
        warnings.simplefilter("ignore", UserWarning)
        _compare(lambda a, b: F.kl_div(a, b, reduction),
                 lambda a, b: TF.kl_div(a, b, reduction=reduction), [lp, q])
