"""Losses: definitions, options, the fused cross-entropy against its composite twin,
stability, the loss registry, the loss layers and every error.

Gradients of every loss are checked by the generic registry tests (tests/op_db.py).
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
from nurinet.functional import loss_registry
from nurinet.functional.loss_classification import cross_entropy_composite


def t64(values, grad: bool = False) -> Tensor:
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=grad)


RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 4))
Y = RNG.normal(size=(6, 4))


# ----- regression losses --------------------------------------------------------------------


def test_regression_losses_match_their_formulas() -> None:
    d = X - Y
    assert F.mse_loss(t64(X), t64(Y)).item() == pytest.approx((d**2).mean(), rel=1e-14)
    assert F.l1_loss(t64(X), t64(Y), "sum").item() == pytest.approx(np.abs(d).sum(), rel=1e-14)
    huber = np.where(np.abs(d) < 0.5, 0.5 * d**2, 0.5 * (np.abs(d) - 0.25))
    np.testing.assert_allclose(F.huber_loss(t64(X), t64(Y), "none", 0.5).array, huber, rtol=1e-14)


def test_smooth_l1_is_huber_over_beta_and_l1_at_zero_beta() -> None:
    huber = F.huber_loss(t64(X), t64(Y), delta=0.7).item()
    assert F.smooth_l1_loss(t64(X), t64(Y), beta=0.7).item() == pytest.approx(huber / 0.7)
    assert F.smooth_l1_loss(t64(X), t64(Y), beta=0.0).item() == pytest.approx(
        F.l1_loss(t64(X), t64(Y)).item())


def test_losses_keep_float32() -> None:
    x = Tensor(X.astype(np.float32), requires_grad=True)
    for loss in (F.mse_loss(x, Y), F.l1_loss(x, Y), F.huber_loss(x, Y)):
        assert loss.dtype == np.float32
    F.cross_entropy(x, np.array([0, 1, 2, 3, 0, 1])).backward()
    assert x.grad.dtype == np.float32
    x.grad = None
    smoothed = F.cross_entropy(x, np.array([0, 1, -100, 3, 0, 1]), weight=np.ones(4),
                               label_smoothing=0.1, reduction="none")
    smoothed.sum().backward()
    assert smoothed.dtype == np.float32 and x.grad.dtype == np.float32


# ----- cross-entropy ------------------------------------------------------------------------------

CE_CASES = [
    {"reduction": r, "label_smoothing": s, "weight": w, "ignore": i}
    for r in ("mean", "sum", "none") for s in (0.0, 0.15)
    for w in (None, np.array([0.5, 2.0, 1.0, 1.5])) for i in (False, True)
]


@pytest.mark.parametrize("case", CE_CASES)
def test_fused_cross_entropy_agrees_with_composite_twin(case) -> None:
    target = np.array([0, 3, 1, 2, 2, 1])
    if case["ignore"]:
        target[[1, 4]] = -100
    kwargs = {"weight": case["weight"], "reduction": case["reduction"],
              "label_smoothing": case["label_smoothing"]}
    x1, x2 = t64(X, grad=True), t64(X, grad=True)
    fused = F.cross_entropy(x1, target, **kwargs)
    slow = cross_entropy_composite(x2, target, **kwargs)
    np.testing.assert_allclose(fused.array, slow.array, rtol=1e-12)
    upstream = np.random.default_rng(1).normal(size=fused.shape)
    fused.backward(Tensor(upstream))
    slow.backward(Tensor(upstream))
    np.testing.assert_allclose(x1.grad.array, x2.grad.array, rtol=1e-11, atol=1e-14)


def test_fused_cross_entropy_second_order_agrees_with_composite() -> None:
    target = np.array([[1, 0], [2, -100], [0, 2]])
    x = np.random.default_rng(2).normal(size=(3, 3, 2))
    v = Tensor(np.random.default_rng(3).normal(size=x.shape))
    hvps = []
    for fn in (F.cross_entropy, cross_entropy_composite):
        xt = t64(x, grad=True)
        (g,) = nurinet.grad(fn(xt, target, label_smoothing=0.1), [xt], create_graph=True)
        (hv,) = nurinet.grad((g * v).sum(), [xt])
        hvps.append(hv.array)
    np.testing.assert_allclose(hvps[0], hvps[1], rtol=1e-10, atol=1e-14)


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n() -> None:
    target = np.array([0, 3, 1, 2, 2, 1])
    x = t64(X, grad=True)
    F.cross_entropy(x, target).backward()
    p = np.exp(X) / np.exp(X).sum(1, keepdims=True)
    np.testing.assert_allclose(x.grad.array, (p - np.eye(4)[target]) / 6, rtol=1e-12)


def test_cross_entropy_onehot_targets_equal_class_indices() -> None:
    target = np.array([0, 3, 1, 2, 2, 1])
    onehot = np.eye(4)[target]
    sparse = F.cross_entropy(t64(X), target, label_smoothing=0.1).item()
    dense = F.cross_entropy(t64(X), onehot, label_smoothing=0.1).item()
    assert dense == pytest.approx(sparse, rel=1e-13)
    by_name = F.get_loss("categorical_crossentropy")(t64(X), onehot).item()
    assert by_name == pytest.approx(F.get_loss("sparse_categorical_crossentropy")(t64(X), target).item())


def test_cross_entropy_spatial_and_single_sample() -> None:
    x = np.random.default_rng(4).normal(size=(2, 3, 4, 5))
    target = np.random.default_rng(5).integers(0, 3, (2, 4, 5))
    per_pixel = F.cross_entropy(t64(x), target, reduction="none").array
    assert per_pixel.shape == (2, 4, 5)
    flat = F.cross_entropy(t64(np.moveaxis(x, 1, -1).reshape(-1, 3)), target.reshape(-1)).item()
    assert per_pixel.mean() == pytest.approx(flat, rel=1e-13)
    single = F.cross_entropy(t64(X[0]), np.array(2)).item()
    assert single == pytest.approx(-(X[0, 2] - np.log(np.exp(X[0]).sum())), rel=1e-13)


def test_cross_entropy_is_stable_for_huge_logits() -> None:
    x = t64([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]], grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.cross_entropy(x, np.array([0, 0]))
        loss.backward()
    assert loss.item() == pytest.approx(1e4, rel=1e-12)
    assert np.isfinite(x.grad.array).all()


def test_cross_entropy_ignore_index_and_all_ignored() -> None:
    target = np.array([0, -100, 1, 2, 3, -100])
    kept = F.cross_entropy(t64(X[[0, 2, 3, 4]]), target[[0, 2, 3, 4]]).item()
    assert F.cross_entropy(t64(X), target).item() == pytest.approx(kept, rel=1e-13)
    assert F.cross_entropy(t64(X), np.array([1, 2, 0, 3, 1, 1]), ignore_index=1).item() == \
        pytest.approx(F.cross_entropy(t64(X[[1, 2, 3]]), np.array([2, 0, 3])).item())
    assert math.isnan(F.cross_entropy(t64(X), np.full(6, -100)).item())  # 0/0, as PyTorch.


def test_class_index_errors_name_the_value_and_the_class_count() -> None:
    for fn, x in ((F.cross_entropy, X), (F.nll_loss, X), (cross_entropy_composite, X)):
        with pytest.raises(ValueError, match="target contains class index 4, but the input has 4 "
                                             "classes"):
            fn(t64(x), np.array([0, 1, 4, 2, 0, 1]))
        with pytest.raises(ValueError, match="class index -3"):
            fn(t64(x), np.array([0, 1, -3, 2, 0, 1]))


def test_cross_entropy_target_errors() -> None:
    with pytest.raises(ValueError, match=r"needs a target of shape \(6,\), got target shape \(5,\)"):
        F.cross_entropy(t64(X), np.zeros(5, int))
    with pytest.raises(TypeError, match="integer class indices, got dtype float64"):
        F.cross_entropy(t64(X), np.zeros(6))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        F.cross_entropy(t64(X), np.zeros(6, int), weight=np.ones(3))
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        F.cross_entropy(t64(X), np.zeros(6, int), label_smoothing=1.5)
    with pytest.raises(ValueError, match="must have a class axis"):
        F.nll_loss(t64(1.0), np.array(0))


def test_nll_loss_of_log_softmax_is_cross_entropy() -> None:
    target = np.array([3, 1, 0, 0, 2, 1])
    w = np.array([1.0, 2.0, 0.5, 1.0])
    nll = F.nll_loss(F.log_softmax(t64(X), axis=1), target, w).item()
    assert nll == pytest.approx(F.cross_entropy(t64(X), target, w).item(), rel=1e-13)
    picked = -(X[np.arange(6), target] * w[target])
    np.testing.assert_allclose(F.nll_loss(t64(X), target, w, reduction="none").array, picked)
    assert F.nll_loss(t64(X), target, w).item() == pytest.approx(picked.sum() / w[target].sum())


# ----- binary cross-entropy ---------------------------------------------------------------------


def test_binary_cross_entropy_clamps_log_at_minus_100() -> None:
    p = t64([0.0, 1.0, 1.0, 0.0], grad=True)
    y = t64([1.0, 1.0, 0.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.binary_cross_entropy(p, y, reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.array, [100.0, 0.0, 100.0, 0.0])
    assert np.isfinite(p.grad.array).all()


def test_binary_cross_entropy_rejects_non_probabilities() -> None:
    with pytest.raises(ValueError, match=r"input should be between 0 and 1, found values in \[-0.5, 2.0\]"):
        F.binary_cross_entropy(t64([-0.5, 2.0]), t64([0.0, 1.0]))
    for bad in ([2.0, 0.0], [-1.0, 0.0], [np.nan, 0.0]):  # PyTorch refuses such targets too
        with pytest.raises(ValueError, match="elements of target should be between 0 and 1"):
            F.binary_cross_entropy(t64([0.3, 0.6]), t64(bad))
    with pytest.raises(ValueError, match="elements of input should be between 0 and 1"):
        F.binary_cross_entropy(t64([np.nan]), t64([1.0]))
    with pytest.raises(ValueError, match=r"kl_div: the target must hold probabilities \(>= 0\)"):
        F.kl_div(t64([-1.0, -0.5]), t64([-0.5, 1.5]))


def test_bce_with_logits_matches_bce_of_sigmoid_and_is_stable() -> None:
    x, y = X, (Y > 0).astype(float)
    direct = F.binary_cross_entropy_with_logits(t64(x), t64(y)).item()
    assert direct == pytest.approx(F.binary_cross_entropy(F.sigmoid(t64(x)), t64(y)).item())
    big = t64([1000.0, -1000.0, 1000.0, -1000.0], grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = F.binary_cross_entropy_with_logits(big, t64([1.0, 0.0, 0.0, 1.0]), reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.array, [0.0, 0.0, 1000.0, 1000.0])
    np.testing.assert_allclose(big.grad.array, [0.0, 0.0, 1.0, -1.0])


def test_bce_with_logits_pos_weight_scales_the_positive_term() -> None:
    x, y = t64([0.3, -1.2]), t64([1.0, 1.0])
    plain = F.binary_cross_entropy_with_logits(x, y, reduction="none").array
    weighted = F.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=[3.0]).array
    np.testing.assert_allclose(weighted, 3 * plain)


# ----- other losses ---------------------------------------------------------------------------


def test_kl_div_reductions_and_zero_targets() -> None:
    logq = F.log_softmax(t64(X), axis=1)
    p = np.exp(Y) / np.exp(Y).sum(1, keepdims=True)
    p[0] = [0.0, 0.5, 0.5, 0.0]
    pointwise = np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0) - p * logq.array
    assert F.kl_div(logq, t64(p), "batchmean").item() == pytest.approx(pointwise.sum() / 6)
    assert F.kl_div(logq, t64(p), "mean").item() == pytest.approx(pointwise.mean())
    lp = t64(logq.array, grad=True)
    target = t64(p, grad=True)
    F.kl_div(lp, target, "sum").backward()
    assert np.isfinite(target.grad.array).all()
    assert F.kl_div(logq[1:], t64(np.log(p[1:])), "sum", log_target=True).item() == \
        pytest.approx(pointwise[1:].sum())


def test_hinge_losses_follow_keras() -> None:
    s = t64([[0.3, -2.0, 1.5], [-0.4, 0.9, 2.0]])
    y = np.array([[1.0, -1.0, -1.0], [1.0, 1.0, -1.0]])
    margin = np.maximum(0, 1 - y * s.array)
    assert F.hinge_loss(s, y).item() == pytest.approx(margin.mean())
    assert F.squared_hinge_loss(s, y).item() == pytest.approx((margin**2).mean())
    assert F.hinge_loss(s, (y > 0).astype(int)).item() == pytest.approx(margin.mean())  # 0/1 labels
    with pytest.raises(ValueError, match=r"targets must be -1 or 1 \(or 0 and 1\), found \[-2.0, 2.0\]"):
        F.hinge_loss(s, y * 2)


def test_cosine_embedding_loss() -> None:
    a, b = X[:3], Y[:3]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    y = np.array([1, -1, -1])
    want = np.where(y == 1, 1 - cos, np.maximum(cos - 0.1, 0))
    got = F.cosine_embedding_loss(t64(a), t64(b), y, 0.1, "none").array
    np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError, match="targets must be 1 or -1"):
        F.cosine_embedding_loss(t64(a), t64(b), np.array([1, 0, 1]))
    with pytest.raises(ValueError, match=r"need a target of shape \(3,\), got \(2,\)"):
        F.cosine_embedding_loss(t64(a), t64(b), np.array([1, 1]))


def test_contrastive_loss_convention_label_one_is_similar() -> None:
    d = t64([0.5, 0.5, 2.0])
    got = F.contrastive_loss(d, np.array([1, 0, 0]), margin=1.0, reduction="none").array
    np.testing.assert_allclose(got, [0.25, 0.25, 0.0])
    with pytest.raises(ValueError, match=r"labels must be 1 \(similar\) or 0 \(dissimilar\)"):
        F.contrastive_loss(d, np.array([1, -1, 0]))


def test_contrastive_layer_takes_embeddings() -> None:
    a, b = t64(X, grad=True), t64(Y)
    label = np.array([1, 0, 1, 1, 0, 0])
    layer = nn.ContrastiveLoss(margin=2.0)
    want = F.contrastive_loss(F.pairwise_distance(a, b), label, 2.0).item()
    assert layer(a, b, label).item() == pytest.approx(want)
    assert gradcheck(lambda u: layer(u, b, label), [a])
    dist = np.sqrt(((X - Y + 1e-6) ** 2).sum(1))
    np.testing.assert_allclose(F.pairwise_distance(a, b).array, dist)


def test_custom_loss_is_a_plain_function() -> None:
    def log_cosh(pred, target):
        d = pred - target
        return F.mean(F.log((F.exp(d) + F.exp(-d)) * 0.5))

    x = t64(X, grad=True)
    assert gradcheck(lambda u: log_cosh(u, t64(Y)), [x])
    assert gradgradcheck(lambda u: log_cosh(u, t64(Y)), [x], mode="fast")


# ----- errors shared by every loss -----------------------------------------------------------

PAIRED = [F.mse_loss, F.l1_loss, F.huber_loss, F.smooth_l1_loss, F.binary_cross_entropy,
          F.binary_cross_entropy_with_logits, F.kl_div, F.hinge_loss, F.squared_hinge_loss]


@pytest.mark.parametrize("fn", PAIRED, ids=[f.__name__ for f in PAIRED])
def test_shape_mismatch_names_both_shapes(fn) -> None:
    with pytest.raises(ValueError, match=rf"{fn.__name__}: input shape \(3, 2\) and target shape "
                                         r"\(3,\) differ"):
        fn(t64(np.full((3, 2), 0.5)), t64(np.ones(3)))


ALL_LOSSES = PAIRED + [F.cross_entropy, F.nll_loss]


@pytest.mark.parametrize("fn", ALL_LOSSES, ids=[f.__name__ for f in ALL_LOSSES])
def test_bad_reduction_is_rejected(fn) -> None:
    with pytest.raises(ValueError, match=rf"{fn.__name__}: reduction must be one of 'mean', "
                                         r"'sum', 'none'.*got 'avg'"):
        fn(t64(np.full((3, 2), 0.5)), t64(np.ones((3, 2))), reduction="avg")


def test_other_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'batchmean'"):
        F.kl_div(t64([0.1]), t64([0.2]), reduction="batch")
    with pytest.raises(ValueError, match="delta must be positive"):
        F.huber_loss(t64([0.1]), t64([0.2]), delta=0.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cosine_embedding_loss(t64(X), t64(Y), np.ones(6), reduction="batchmean")
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.contrastive_loss(t64([1.0]), np.array([1]), reduction="max")


# ----- registry --------------------------------------------------------------------------------


@pytest.mark.parametrize("name,fn", [
    ("mse", F.mse_loss), ("MSELoss", F.mse_loss), ("mean_squared_error", F.mse_loss),
    ("mae", F.l1_loss), ("L1Loss", F.l1_loss), ("mean_absolute_error", F.l1_loss),
    ("huber", F.huber_loss), ("smooth_l1", F.smooth_l1_loss), ("hinge", F.hinge_loss),
    ("squared_hinge", F.squared_hinge_loss), ("CosineEmbeddingLoss", F.cosine_embedding_loss),
    ("contrastive", F.contrastive_loss),
])
def test_get_loss_knows_keras_and_pytorch_names(name, fn) -> None:
    assert F.get_loss(name) is fn


def test_get_loss_unknown_and_custom() -> None:
    with pytest.raises(ValueError, match=r"unknown loss 'mean_cubed_error'; known loss names: .*mse"):
        F.get_loss("mean_cubed_error")
    with pytest.raises(TypeError, match="a name or a callable"):
        F.get_loss(None)
    assert F.get_loss(F.mse_loss) is F.mse_loss
    try:
        @F.register_loss("mean_cubed_error")
        def mce(pred, target):
            return F.mean(F.abs(pred - target) ** 3)

        assert F.get_loss("MeanCubedError") is mce
        assert nn.loss.get_loss("mean-cubed-error") is mce
        with pytest.raises(ValueError, match="exists already"):
            F.register_loss("mean_cubed_error", F.mse_loss)
    finally:
        loss_registry.LOSSES._entries.pop("meancubederror", None)
    with pytest.raises(TypeError, match="must map to a callable"):
        F.register_loss("x", 1)


# ----- layers --------------------------------------------------------------------------------------

TARGET = np.array([0, 3, 1, 2, 2, 1])
P = 1 / (1 + np.exp(-X))
B = (Y > 0).astype(float)
LOG_P = X - np.log(np.exp(X).sum(1, keepdims=True))
Q = np.exp(Y) / np.exp(Y).sum(1, keepdims=True)
LAYER_CASES = [
    (nn.MSELoss(), F.mse_loss, (X, Y)),
    (nn.L1Loss("sum"), lambda a, b: F.l1_loss(a, b, "sum"), (X, Y)),
    (nn.HuberLoss(delta=0.5), lambda a, b: F.huber_loss(a, b, delta=0.5), (X, Y)),
    (nn.SmoothL1Loss(beta=0.5), lambda a, b: F.smooth_l1_loss(a, b, beta=0.5), (X, Y)),
    (nn.BCELoss(weight=[1.0, 2.0, 1.0, 0.5]),
     lambda a, b: F.binary_cross_entropy(a, b, np.array([1.0, 2.0, 1.0, 0.5])), (P, B)),
    (nn.BCEWithLogitsLoss(pos_weight=[2.0, 1.0, 1.0, 1.0]),
     lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=np.array([2.0, 1, 1, 1])),
     (X, B)),
    (nn.CrossEntropyLoss(weight=[1.0, 2.0, 1.0, 0.5], label_smoothing=0.1),
     lambda a, t: F.cross_entropy(a, t, np.array([1.0, 2.0, 1.0, 0.5]), label_smoothing=0.1),
     (X, TARGET)),
    (nn.NLLLoss(ignore_index=2), lambda a, t: F.nll_loss(a, t, ignore_index=2), (LOG_P, TARGET)),
    (nn.KLDivLoss("batchmean"), lambda a, b: F.kl_div(a, b, "batchmean"), (LOG_P, Q)),
    (nn.HingeLoss(), F.hinge_loss, (X, B)),
    (nn.SquaredHingeLoss("none"), lambda a, b: F.squared_hinge_loss(a, b, "none"), (X, B)),
    (nn.CosineEmbeddingLoss(0.2), lambda a, b, t: F.cosine_embedding_loss(a, b, t, 0.2),
     (X, Y, np.array([1, -1, 1, 1, -1, -1]))),
]


@pytest.mark.parametrize("layer,fn,args", LAYER_CASES, ids=[type(c[0]).__name__ for c in LAYER_CASES])
def test_loss_layers_match_functions(layer, fn, args) -> None:
    tensors = [t64(a) if a.dtype.kind == "f" else a for a in args]
    np.testing.assert_allclose(layer(*tensors).array, fn(*tensors).array, rtol=1e-13)
    first = Tensor(args[0].astype(np.float32))
    rest = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in args[1:]]
    assert layer(first, *rest).dtype == np.float32


def test_loss_layers_validate_reduction_when_built() -> None:
    with pytest.raises(ValueError, match="MSELoss: reduction must be one of 'mean', 'sum', 'none'"):
        nn.MSELoss("avg")
    with pytest.raises(ValueError, match="CrossEntropyLoss: reduction must be one of"):
        nn.CrossEntropyLoss(reduction="batchmean")
    assert nn.KLDivLoss("batchmean").reduction == "batchmean"
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        nn.CrossEntropyLoss(label_smoothing=-0.1)
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean')"


def test_weighted_loss_keeps_weight_as_buffer() -> None:
    layer = nn.CrossEntropyLoss(weight=[1.0, 2.0, 3.0])
    assert [name for name, _ in layer.named_buffers()] == ["weight"]
    layer.double()
    assert layer.weight.dtype == np.float64
