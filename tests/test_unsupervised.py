"""RBM (CD-k), DBN (greedy pre-training, fine-tuning) and autoencoders (plain, tied, denoising)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet import optim
from nurinet.data import load_digits
from nurinet.models import DBN, RBM, Autoencoder


def _states(n: int) -> np.ndarray:
    return np.array(list(itertools.product((0.0, 1.0), repeat=n)))


def _random_rbm(n_visible: int, n_hidden: int, visible: str = "bernoulli", seed: int = 0) -> RBM:
    rbm = RBM(n_visible, n_hidden, visible, generator=nt.Generator(seed))
    rng = np.random.default_rng(seed)
    for p in rbm.parameters():
        p.array[...] = rng.standard_normal(p.shape).astype(np.float32)
    return rbm


def _energy(rbm: RBM, v: np.ndarray, h: np.ndarray) -> np.ndarray:
    """E(v, h) for every pair of rows, straight from the definition: (len(v), len(h))."""
    w, b, c = (p.array.astype(np.float64) for p in (rbm.weight, rbm.visible_bias, rbm.hidden_bias))
    visible_term = -(v @ b) if rbm.visible == "bernoulli" else 0.5 * ((v - b) ** 2).sum(axis=1)
    return visible_term[:, None] - (h @ c)[None, :] - v @ w.T @ h.T


@pytest.mark.parametrize("visible", ["bernoulli", "gaussian"])
def test_free_energy_sums_out_the_hidden_units(visible: str) -> None:
    rbm = _random_rbm(5, 4, visible)
    v = np.random.default_rng(1).random((7, 5)) if visible == "gaussian" else _states(5)[::3]
    brute = -np.log(np.exp(-_energy(rbm, v, _states(4))).sum(axis=1))
    np.testing.assert_allclose(rbm.free_energy(v.astype(np.float32)).numpy(), brute, rtol=1e-5)


def test_log_partition_and_likelihood_match_full_enumeration() -> None:
    rbm = _random_rbm(4, 3)
    v_all = _states(4)
    log_z = np.log(np.exp(-_energy(rbm, v_all, _states(3))).sum())
    assert rbm.log_partition() == pytest.approx(log_z, rel=1e-5)
    probs = np.exp(-rbm.free_energy(v_all.astype(np.float32)).numpy() - rbm.log_partition())
    assert probs.sum() == pytest.approx(1.0, abs=1e-6)


def test_long_chain_cd_estimates_the_exact_likelihood_gradient() -> None:
    rbm = _random_rbm(4, 3, seed=3)
    data = _states(4)[[1, 6, 9, 14]].astype(np.float32)
    # Exact gradient of the mean negative log-likelihood: <h v>_model - <h v>_data (and the biases').
    v_all, free = _states(4), rbm.free_energy(_states(4).astype(np.float32)).numpy()
    p_v = np.exp(-free - rbm.log_partition())
    h_all, h_data = rbm.hidden_probs(v_all.astype(np.float32)), rbm.hidden_probs(data)
    exact_w = (h_all.T * p_v) @ v_all - h_data.T @ data / len(data)
    exact_c = p_v @ h_all - h_data.mean(axis=0)
    batch = np.repeat(data, 5000, axis=0)
    # CD-1 is biased: its chain has not left the data (here off by ~0.1 on a gradient of ~0.27).
    rbm.contrastive_divergence(batch, k=1)
    assert np.abs(rbm.weight.grad.numpy() - exact_w).max() > 0.05
    # With a long chain on many copies of the data, CD-k tends to the exact gradient.
    rbm.contrastive_divergence(batch, k=100)
    np.testing.assert_allclose(rbm.weight.grad.numpy(), exact_w, atol=0.02)
    np.testing.assert_allclose(rbm.hidden_bias.grad.numpy(), exact_c, atol=0.02)
    np.testing.assert_allclose(rbm.visible_bias.grad.numpy(), p_v @ v_all - data.mean(axis=0), atol=0.02)


@pytest.mark.parametrize("persistent", [False, True])
def test_cd_training_raises_the_exact_log_likelihood(persistent: bool) -> None:
    rng = np.random.default_rng(0)
    patterns = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=np.float32)
    data = patterns[rng.integers(0, 2, 300)]
    flips = rng.random(data.shape) < 0.05
    data = np.where(flips, 1 - data, data).astype(np.float32)
    rbm = RBM(6, 4, generator=nt.Generator(0))
    before = rbm.log_likelihood(data)
    # (PCD oscillates at larger learning rates: its chain lags behind the moving model.)
    errors = rbm.fit(data, epochs=30, batch_size=20, lr=0.05, persistent=persistent)
    after = rbm.log_likelihood(data)
    assert after > before + 1.0, (before, after)
    assert errors[-1] < errors[0]
    # The two clean patterns are now far more probable than a mixture of them.
    mixed = np.array([[1, 0, 1, 0, 1, 0]], dtype=np.float32)
    assert rbm.free_energy(patterns).numpy().max() < rbm.free_energy(mixed).numpy()[0] - 2.0


def test_gaussian_rbm_learns_to_reconstruct() -> None:
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((3, 10))
    data = (rng.standard_normal((400, 3)) @ basis).astype(np.float32)
    data = (data - data.mean(0)) / data.std(0)
    rbm = RBM(10, 16, "gaussian", generator=nt.Generator(0))
    errors = rbm.fit(data, epochs=20, batch_size=20, lr=0.01)
    assert errors[-1] < 0.6 * errors[0]


def test_rbm_validates_its_input() -> None:
    rbm = RBM(6, 3)
    with pytest.raises(ValueError, match=r"RBM\(6, 3\).*\(N, 6\).*\(2, 5\)"):
        rbm.contrastive_divergence(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        rbm.contrastive_divergence(np.zeros((2, 6), np.float32), k=0)
    with pytest.raises(ValueError, match="visible must be one of"):
        RBM(6, 3, visible="binary")
    with pytest.raises(ValueError, match="exact enumeration"):
        RBM(4, 25).log_partition()


def _digits_split() -> tuple[np.ndarray, ...]:
    x, y = load_digits(normalize=True)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return x[:1400], y[:1400], x[1400:], y[1400:]


def test_dbn_pretrains_greedily_then_fine_tunes_to_a_classifier() -> None:
    x_train, y_train, x_test, y_test = _digits_split()
    dbn = DBN([64, 64, 32], generator=nt.Generator(0))
    histories = dbn.pretrain(x_train, epochs=5, batch_size=32, lr=0.05)
    assert len(histories) == 2 and all(h[-1] < h[0] for h in histories)
    assert dbn(x_test).shape == (len(x_test), 32)
    model = dbn.to_classifier(10, generator=nt.Generator(1))
    # The hidden layers start from the RBMs and are copies of them.
    np.testing.assert_array_equal(model[0].weight.numpy(), dbn.rbms[0].weight.numpy())
    opt = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(20):
        for start in range(0, len(x_train), 64):
            loss = F.cross_entropy(model(x_train[start:start + 64]), y_train[start:start + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    accuracy = (model(x_test).numpy().argmax(axis=1) == y_test).mean()
    assert accuracy > 0.9
    assert not np.array_equal(model[0].weight.numpy(), dbn.rbms[0].weight.numpy())


def _train_autoencoder(model: Autoencoder, x: np.ndarray, epochs: int = 30) -> list[float]:
    opt, losses = optim.Adam(model.parameters(), lr=0.01), []
    for _ in range(epochs):
        for start in range(0, len(x), 64):
            batch = x[start:start + 64]
            loss = F.mse_loss(model(batch), nt.tensor(batch))
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        losses.append(float(F.mse_loss(model(x), nt.tensor(x)).item()))
        model.train()
    return losses


@pytest.mark.parametrize("tied", [False, True])
def test_autoencoder_compresses_digits(tied: bool) -> None:
    x_train, _, x_test, _ = _digits_split()
    model = Autoencoder([64, 32, 8], tied_weights=tied, generator=nt.Generator(0))
    baseline = float(((x_test - x_train.mean(axis=0)) ** 2).mean())  # predicting the mean image
    losses = _train_autoencoder(model, x_train)
    model.eval()
    test_loss = float(F.mse_loss(model(x_test), nt.tensor(x_test)).item())
    assert losses[-1] < losses[0] and test_loss < 0.5 * baseline
    assert model.encode(x_test).shape == (len(x_test), 8)
    assert model.decode(model.encode(x_test)).shape == x_test.shape


def test_tied_weights_are_shared_not_copied() -> None:
    untied = Autoencoder([64, 32, 8])
    tied = Autoencoder([64, 32, 8], tied_weights=True)
    count = lambda m: sum(p.numel() for p in m.parameters())
    weights = 64 * 32 + 32 * 8
    assert count(untied) - count(tied) == weights
    x = nt.tensor(np.random.default_rng(0).random((5, 64), dtype=np.float32))
    F.mse_loss(tied(x), x).backward()
    encoder_weight = tied.encoder[0].weight
    # The encoder weight's gradient has both the encoder's and the mirrored decoder's share.
    grad_both = encoder_weight.grad.numpy().copy()
    encoder_weight.grad = None
    with nt.no_grad():
        code = tied.encoder(x)
    F.mse_loss(tied.decoder(code), x).backward()
    decoder_share = encoder_weight.grad.numpy()
    assert np.abs(decoder_share).sum() > 0 and not np.allclose(grad_both, decoder_share)


def test_denoising_noise_only_in_training_mode() -> None:
    model = Autoencoder([16, 4], noise_std=0.5, generator=nt.Generator(0))
    x = np.random.default_rng(0).random((3, 16), dtype=np.float32)
    assert not np.array_equal(model(x).numpy(), model(x).numpy())
    model.eval()
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())
    with pytest.raises(ValueError, match="noise_std"):
        Autoencoder([16, 4], noise_std=-1)


@pytest.mark.parametrize("build", [lambda: Autoencoder([12, 6, 3], tied_weights=True),
                                   lambda: DBN([12, 6, 3]), lambda: RBM(12, 5, "gaussian")])
def test_saved_models_rebuild_from_their_config(tmp_path, build) -> None:
    model = build()
    nt.save(model, tmp_path / "model.safetensors")
    loaded = nt.load(tmp_path / "model.safetensors")
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    x = np.random.default_rng(0).random((4, 12), dtype=np.float32)
    model.eval()
    loaded.eval()
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
