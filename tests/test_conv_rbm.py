"""ConvRBM (probabilistic max-pooling, CD-k against the exact likelihood gradient) and the CDBN."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import nurinet as nt
from nurinet.models import CDBN, ConvRBM
from nurinet.models.conv_rbm import block_probabilities


def _random_conv_rbm(seed: int = 0, pool: int = 2, visible: str = "bernoulli", scale: float = 0.7) -> ConvRBM:
    """1 channel, 2 filters of 2x2, pooling 2x2: a 3x3 image has 2 hidden maps of 2x2, one block each."""
    rbm = ConvRBM(1, 2, 2, pool_size=pool, visible=visible, dtype=np.float64, generator=nt.Generator(seed))
    rng = np.random.default_rng(seed)
    for p in rbm.parameters():
        p.array[...] = rng.standard_normal(p.shape) * scale
    return rbm


def _all_images(shape: tuple[int, ...]) -> np.ndarray:
    return np.array(list(itertools.product((0.0, 1.0), repeat=int(np.prod(shape))))).reshape(-1, *shape)


def _hidden_states(pool: int) -> np.ndarray:
    """Every allowed state of one pooling block: all off, or exactly one unit on."""
    return np.vstack([np.zeros(pool * pool), np.eye(pool * pool)])


def _energy(rbm: ConvRBM, v: np.ndarray, h: np.ndarray) -> float:
    """E(v, h) of one image and one hidden configuration, straight from the definition (loops)."""
    w, b, a = rbm.weight.array, rbm.hidden_bias.array, rbm.visible_bias.array
    r = rbm.kernel_size
    energy = -(a[:, None, None] * v).sum()
    for k, i, j in itertools.product(range(h.shape[0]), range(h.shape[1]), range(h.shape[2])):
        energy -= h[k, i, j] * ((w[k] * v[:, i:i + r, j:j + r]).sum() + b[k])
    return float(energy)


# ----- probabilistic max-pooling -------------------------------------------------------------


def test_block_probabilities_match_their_closed_form() -> None:
    pre = np.random.default_rng(0).standard_normal((2, 3, 4, 6)) * 3
    probs, off = block_probabilities(pre, 2)
    for n, k, bi, bj in itertools.product(range(2), range(3), range(2), range(3)):
        block = pre[n, k, 2 * bi:2 * bi + 2, 2 * bj:2 * bj + 2]
        denominator = 1 + np.exp(block).sum()
        np.testing.assert_allclose(probs[n, k, 2 * bi:2 * bi + 2, 2 * bj:2 * bj + 2], np.exp(block) / denominator)
        assert off[n, k, bi, bj] == pytest.approx(1 / denominator)
    # Each block's states (one unit on, or none) have probabilities summing to one.
    np.testing.assert_allclose(probs.reshape(2, 3, 2, 2, 3, 2).sum(axis=(3, 5)) + off, 1.0)


def test_block_probabilities_do_not_overflow_and_pool_one_is_a_sigmoid() -> None:
    probs, off = block_probabilities(np.array([[[[800.0, -900.0], [0.0, 1.0]]]]), 2)
    assert np.isfinite(probs).all() and probs[0, 0, 0, 0] == pytest.approx(1.0) and off.item() == pytest.approx(0.0)
    pre = np.linspace(-5, 5, 12).reshape(1, 1, 3, 4)
    np.testing.assert_allclose(block_probabilities(pre, 1)[0], 1 / (1 + np.exp(-pre)))


def test_block_probabilities_are_the_conditional_of_the_energy() -> None:
    """P(h | v) from enumerating one block's states under the energy, against the closed form."""
    rbm = _random_conv_rbm(1)
    v = np.random.default_rng(2).integers(0, 2, (1, 3, 3)).astype(np.float64)
    states = _hidden_states(2)
    # The two groups' blocks are independent given v: enumerate the pairs of block states.
    weights, marginal = [], np.zeros((2, 4))
    for s0, s1 in itertools.product(states, states):
        h = np.stack([s0.reshape(2, 2), s1.reshape(2, 2)])
        weights.append(np.exp(-_energy(rbm, v, h)))
        marginal += weights[-1] * np.stack([s0, s1])
    marginal /= sum(weights)
    probs = rbm.hidden_probs(v[None])[0].reshape(2, 4)
    np.testing.assert_allclose(probs, marginal, rtol=1e-10)


def test_hidden_samples_have_at_most_one_unit_on_per_block_with_the_right_frequencies() -> None:
    rbm = _random_conv_rbm(3, scale=1.0)
    v = np.repeat(np.random.default_rng(4).integers(0, 2, (1, 1, 3, 3)).astype(np.float64), 20000, axis=0)
    probs, sample = rbm.sample_hidden(v)
    assert set(np.unique(sample)) <= {0.0, 1.0}
    assert sample.reshape(20000, 2, 4).sum(axis=-1).max() <= 1
    np.testing.assert_allclose(sample.mean(axis=0), probs[0], atol=0.015)


# ----- free energy and the exact gradient ----------------------------------------------------


def test_free_energy_sums_out_the_hidden_states() -> None:
    rbm = _random_conv_rbm(5)
    images = _all_images((1, 3, 3))[::37]
    states = _hidden_states(2)
    for v, free in zip(images, rbm.free_energy(images).numpy()):
        total = sum(np.exp(-_energy(rbm, v, np.stack([s0.reshape(2, 2), s1.reshape(2, 2)])))
                    for s0, s1 in itertools.product(states, states))
        assert free == pytest.approx(-np.log(total), rel=1e-10)


def test_gaussian_free_energy_is_that_of_the_energy() -> None:
    rbm = _random_conv_rbm(6, visible="gaussian")
    v = np.random.default_rng(7).standard_normal((2, 1, 3, 3))
    a = rbm.visible_bias.array[0]
    pre = rbm.hidden_input(v)
    expected = 0.5 * ((v - a) ** 2).sum(axis=(1, 2, 3)) - np.log1p(np.exp(pre).sum(axis=(2, 3))).sum(axis=1)
    np.testing.assert_allclose(rbm.free_energy(v).numpy(), expected)


def _exact_gradient(rbm: ConvRBM, data: np.ndarray) -> dict[str, np.ndarray]:
    """The gradient of the mean negative log-likelihood: <stats>_model - <stats>_data, enumerated."""
    images = _all_images(data.shape[1:])
    p_v = np.exp(-rbm.free_energy(images).numpy() - rbm.log_partition(data.shape[2:]))

    def statistics(v: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
        h = rbm.hidden_probs(v)
        return {"weight": np.einsum("n,nkij,ncijab->kcab", weights, h,
                                    np.lib.stride_tricks.sliding_window_view(v, (2, 2), axis=(2, 3))),
                "hidden_bias": np.einsum("n,nkij->k", weights, h),
                "visible_bias": np.einsum("n,ncij->c", weights, v)}

    model, observed = statistics(images, p_v), statistics(data, np.full(len(data), 1 / len(data)))
    return {name: model[name] - observed[name] for name in model}


def test_exact_gradient_is_the_derivative_of_the_exact_log_likelihood() -> None:
    rbm = _random_conv_rbm(8)
    data = _all_images((1, 3, 3))[[5, 99, 200, 411]]
    exact = _exact_gradient(rbm, data)
    for name, param in (("weight", rbm.weight), ("hidden_bias", rbm.hidden_bias), ("visible_bias", rbm.visible_bias)):
        numeric = np.zeros(param.shape)
        for index in np.ndindex(param.shape):
            saved = param.array[index]
            param.array[index] = saved + 1e-6
            up = rbm.log_likelihood(data)
            param.array[index] = saved - 1e-6
            down = rbm.log_likelihood(data)
            param.array[index] = saved
            numeric[index] = -(up - down) / 2e-6
        np.testing.assert_allclose(exact[name], numeric, atol=1e-6, err_msg=name)


def test_long_chain_cd_estimates_the_exact_likelihood_gradient() -> None:
    rbm = _random_conv_rbm(3, scale=2.5)  # strong filters: one Gibbs step stays near the data
    rbm.visible_bias.array[...] = -0.5
    data = _all_images((1, 3, 3))[[5, 99, 200, 411]]
    exact = _exact_gradient(rbm, data)
    batch = np.repeat(data, 3000, axis=0)
    # CD-1 is biased: its chain has hardly left the data (off by ~0.17 on a gradient of ~0.5).
    # CD's gradients are averaged over positions: 2x2 hidden maps, 3x3 images.
    positions = {"weight": 4, "hidden_bias": 4, "visible_bias": 9}
    rbm.contrastive_divergence(batch, k=1)
    assert np.abs(rbm.weight.grad.numpy() * 4 - exact["weight"]).max() > 0.1
    # With a long chain on many copies of the data, CD-k tends to the exact gradient (~0.005 here).
    rbm.contrastive_divergence(batch, k=60)
    for name, param in (("weight", rbm.weight), ("hidden_bias", rbm.hidden_bias), ("visible_bias", rbm.visible_bias)):
        np.testing.assert_allclose(param.grad.numpy() * positions[name], exact[name], atol=0.03, err_msg=name)


# ----- training ------------------------------------------------------------------------------


def test_cd_training_raises_the_exact_log_likelihood() -> None:
    rng = np.random.default_rng(0)
    bars = np.zeros((2, 1, 3, 3))
    bars[0, 0, 1, :] = 1  # a horizontal bar
    bars[1, 0, :, 1] = 1  # a vertical bar
    data = bars[rng.integers(0, 2, 200)]
    rbm = ConvRBM(1, 4, 2, pool_size=2, generator=nt.Generator(0))
    before = rbm.log_likelihood(data)
    errors = rbm.fit(data, epochs=40, batch_size=20, lr=0.05)
    assert rbm.log_likelihood(data) > before + 1.0
    assert errors[-1] < errors[0]
    assert rbm.reconstruction_error(data) < errors[0]


def test_sparsity_target_lowers_the_mean_activation() -> None:
    x, _ = nt.data.load_digits(normalize=True)
    images = x[:300].reshape(-1, 1, 8, 8)
    means = {}
    for cost in (0.0, 5.0):
        rbm = ConvRBM(1, 6, 3, pool_size=2, sparsity_target=0.02, sparsity_cost=cost, generator=nt.Generator(1))
        rbm.fit(images, epochs=5, batch_size=30, lr=0.3)
        means[cost] = float(rbm.hidden_probs(rbm._visible_array(images)).mean())
    assert means[5.0] < means[0.0]


def test_gaussian_conv_rbm_learns_to_reconstruct() -> None:
    x, _ = nt.data.load_digits(normalize=True)
    images = x[:300].reshape(-1, 1, 8, 8)
    images = ((images - images.mean()) / images.std()).astype(np.float32)
    rbm = ConvRBM(1, 8, 3, pool_size=2, visible="gaussian", generator=nt.Generator(2))
    errors = rbm.fit(images, epochs=8, batch_size=30, lr=0.03)
    assert errors[-1] < 0.8 * errors[0]


def test_conv_rbm_checks_its_arguments_and_inputs() -> None:
    with pytest.raises(ValueError, match="visible must be one of"):
        ConvRBM(1, 2, 3, visible="poisson")
    with pytest.raises(ValueError, match="sparsity_target must lie in"):
        ConvRBM(1, 2, 3, sparsity_target=1.5)
    rbm = ConvRBM(1, 2, 3, pool_size=2)
    with pytest.raises(ValueError, match="multiples of pool_size=2"):
        rbm.fit(np.zeros((4, 1, 7, 7), np.float32))
    with pytest.raises(ValueError, match=r"expected visible images of shape \(N, 1, H, W\)"):
        rbm(np.zeros((4, 64), np.float32))
    with pytest.raises(ValueError, match="limited to 16"):
        rbm.log_partition((5, 5))


# ----- CDBN ------------------------------------------------------------------------------------


def _small_cdbn(seed: int = 0) -> CDBN:
    g = nt.Generator(seed)
    return CDBN([ConvRBM(1, 4, 3, pool_size=2, generator=g), ConvRBM(4, 6, 2, pool_size=1, generator=g)])


def test_cdbn_pretrains_layer_by_layer_and_transforms() -> None:
    x, _ = nt.data.load_digits(normalize=True)
    images = x[:200].reshape(-1, 1, 8, 8)
    cdbn = _small_cdbn()
    histories = cdbn.pretrain(images, epochs=2, batch_size=50, lr=[0.3, 0.03])
    assert len(histories) == 2 and all(len(h) == 2 for h in histories)
    top = cdbn.transform(images)
    assert top.shape == (200, 6 * 2 * 2)
    both = cdbn.transform(images, layers="all")
    assert both.shape == (200, 4 * 3 * 3 + 6 * 2 * 2)
    assert cdbn(images).shape == (200, 6, 2, 2)


def test_cdbn_classifier_starts_from_the_stack_and_fine_tunes() -> None:
    x, y = nt.data.load_digits(normalize=True)
    images = x[:300].reshape(-1, 1, 8, 8).astype(np.float32)
    cdbn = _small_cdbn(1)
    cdbn.pretrain(images, epochs=2, batch_size=50, lr=[0.3, 0.03])
    classifier = cdbn.to_classifier(10, image_size=(8, 8), generator=nt.Generator(3))
    # Its feature part computes exactly the CDBN's bottom-up pooled probabilities.
    features = classifier[:-1](images).numpy()
    np.testing.assert_allclose(features, cdbn.transform(images), rtol=1e-4, atol=1e-6)
    before = cdbn.rbms[0].weight.array.copy()
    opt = nt.optim.Adam(classifier.parameters(), lr=0.05)
    losses = []
    for _ in range(40):
        loss = nt.functional.cross_entropy(classifier(images), y[:300])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0]
    assert not np.allclose(classifier[0].weight.array, before)  # back-propagation reached the filters
    np.testing.assert_array_equal(cdbn.rbms[0].weight.array, before)  # the classifier holds copies


def test_cdbn_checks_that_layers_fit_together() -> None:
    with pytest.raises(ValueError, match="layer 1 expects 3 input channels but layer 0 has 4 filters"):
        CDBN([ConvRBM(1, 4, 3), ConvRBM(3, 2, 2)])
    with pytest.raises(ValueError, match="at least one ConvRBM"):
        CDBN([])
    with pytest.raises(ValueError, match="2 learning rates for 3 layers"):
        CDBN([ConvRBM(1, 4, 3), ConvRBM(4, 2, 1, pool_size=1), ConvRBM(2, 2, 1, pool_size=1)]).pretrain(
            np.zeros((2, 1, 8, 8), np.float32), lr=[0.1, 0.1])
    with pytest.raises(ValueError, match="layers must be 'top' or 'all'"):
        _small_cdbn().transform(np.zeros((1, 1, 8, 8), np.float32), layers="middle")


def test_conv_rbm_and_cdbn_save_and_load(tmp_path) -> None:
    cdbn = _small_cdbn(2)
    cdbn.rbms[0].sparsity_target = 0.1
    nt.save(cdbn, tmp_path / "cdbn.nuri")
    loaded = nt.load(tmp_path / "cdbn.nuri")
    assert isinstance(loaded, CDBN) and isinstance(loaded.rbms[1], ConvRBM)
    images = np.random.default_rng(0).random((3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(loaded.transform(images, layers="all"), cdbn.transform(images, layers="all"))


def test_cdbn_example_quick(tmp_path) -> None:
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "cdbn_digits.py"
    spec = importlib.util.spec_from_file_location("_example_cdbn_digits", path)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example
    spec.loader.exec_module(example)
    result = example.main(["--quick", "--filters1", "6", "--filters2", "8", "--out", str(tmp_path / "r.json")])
    accuracy = result["test_accuracy"]
    assert set(accuracy) >= {"raw_pixels", "cdbn_both_layers", "cdbn_top_layer", "untrained_both_layers"}
    assert all(0.1 < value <= 1.0 for value in accuracy.values())
    assert (tmp_path / "r.json").is_file()


def test_cdbn_trains_and_transforms_on_the_gpu_double(fake_cupy) -> None:
    images = (np.random.default_rng(0).random((8, 1, 8, 8)) > 0.5).astype(np.float32)
    cdbn = _small_cdbn(4).to("cuda")
    data = nt.tensor(images, device="cuda")
    cdbn.pretrain(data, epochs=1, batch_size=4, lr=[0.3, 0.03])
    assert cdbn(data).device == "cuda:0" and cdbn.rbms[0].weight.device == "cuda:0"
    assert cdbn.transform(data, layers="all").shape == (8, 4 * 3 * 3 + 6 * 2 * 2)
    classifier = cdbn.to_classifier(10, image_size=(8, 8))
    assert classifier(data).device == "cuda:0"
    small = _random_conv_rbm(0).to("cuda")
    assert np.isfinite(small.log_likelihood(images[:2, :, :3, :3].astype(np.float64)))
    assert np.isfinite(small.reconstruction_error(images[:2, :, :3, :3].astype(np.float64)))
