"""GAN losses, DCGAN networks and training, CycleGAN on a toy unpaired task, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn, threads
from nurinet.data import load_digits
from nurinet.models import (
    GAN,
    CycleGAN,
    CycleGANGenerator,
    DCGANDiscriminator,
    DCGANGenerator,
    PatchDiscriminator,
)
from nurinet.models.cyclegan import lsgan_discriminator_loss, lsgan_generator_loss
from nurinet.models.gan import dcgan_stages, discriminator_loss, generator_loss


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """The bundled digits as (1797, 1, 8, 8) images scaled to [-1, 1], as the Tanh output."""
    x, _ = load_digits(flatten=False, normalize=True)
    return x * np.float32(2.0) - np.float32(1.0)


@pytest.fixture
def one_thread():
    with threads.limit_threads(1):  # tiny matrices: one BLAS thread is faster, and others share the machine
        yield


def _small_gan(seed: int, lr: float = 1e-3) -> GAN:
    return GAN(DCGANGenerator(16, 1, 8, 16, generator=nt.Generator(seed)),
               DCGANDiscriminator(1, 8, 16, generator=nt.Generator(seed + 100)),
               lr=lr, generator=nt.Generator(seed + 200))


# ----- losses against their formulas ------------------------------------------------------------------
def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def test_gan_losses_match_their_formulas() -> None:
    real = np.array([[2.0], [-0.5], [0.3]], dtype=np.float64)
    fake = np.array([[-1.5], [0.7], [4.0]], dtype=np.float64)
    expected_d = -np.mean(_log_sigmoid(real)) - np.mean(np.log1p(-1.0 / (1.0 + np.exp(-fake))))
    expected_g = -np.mean(_log_sigmoid(fake))
    assert discriminator_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-10)
    assert generator_loss(fake).item() == pytest.approx(expected_g, rel=1e-10)
    # Non-saturating: where D rejects a sample (very negative logit) the generator's gradient stays ~ -1/N.
    logits = nt.tensor(np.array([-20.0, -20.0]), requires_grad=True)
    generator_loss(logits).backward()
    np.testing.assert_allclose(logits.grad.numpy(), [-0.5, -0.5], rtol=1e-6)


def test_lsgan_losses_match_their_formulas() -> None:
    real = np.array([[[[0.9, 1.2], [0.1, 0.5]]]])
    fake = np.array([[[[-0.2, 0.4], [0.8, 0.0]]]])
    assert lsgan_discriminator_loss(real, fake).item() == pytest.approx(
        0.5 * (np.mean((real - 1) ** 2) + np.mean(fake ** 2)), rel=1e-12)
    assert lsgan_generator_loss(fake).item() == pytest.approx(np.mean((fake - 1) ** 2), rel=1e-12)


# ----- DCGAN networks ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "stages"), [(4, 1), (8, 2), (28, 2), (32, 4), (64, 4), (6, 1)])
def test_dcgan_stages(size: int, stages: int) -> None:
    assert dcgan_stages(size) == stages


@pytest.mark.parametrize("size", [3, 7, 0, 2.0, True])
def test_dcgan_rejects_image_sizes_without_a_stride_2_stage(size) -> None:
    with pytest.raises(ValueError, match="image_size must be an even integer"):
        DCGANGenerator(image_size=size)


@pytest.mark.parametrize(("channels", "size"), [(1, 8), (1, 28), (3, 32)])
def test_dcgan_shapes_and_output_range(channels: int, size: int) -> None:
    g = DCGANGenerator(10, channels, size, 8, generator=nt.Generator(0))
    d = DCGANDiscriminator(channels, size, 8, generator=nt.Generator(1))
    images = g(nt.randn(3, 10) * 50.0)  # large noise drives the Tanh to its limits
    assert images.shape == (3, channels, size, size)
    assert images.dtype == np.float32
    assert np.abs(images.numpy()).max() <= 1.0
    assert d(images).shape == (3, 1)


def test_dcgan_networks_name_bad_inputs() -> None:
    g, d = DCGANGenerator(10, 1, 8, 8), DCGANDiscriminator(1, 8, 8)
    with pytest.raises(ValueError, match=r"expected noise of shape \(N, 10\), got \(4, 12\)"):
        g(nt.randn(4, 12))
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 8, 8\), got \(4, 64\)"):
        d(nt.randn(4, 64))
    with pytest.raises(ValueError, match="width must be a positive integer"):
        DCGANDiscriminator(width=0)


def test_dcgan_initialization_follows_the_paper() -> None:
    g = DCGANGenerator(100, 1, 28, 64, generator=nt.Generator(0))
    d = DCGANDiscriminator(1, 28, 64, generator=nt.Generator(1))
    for net in (g, d):
        for layer in net.modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                w = layer.weight.numpy()
                assert abs(w.mean()) < 0.003 and w.std() == pytest.approx(0.02, rel=0.1), layer
                assert layer.bias is None or not layer.bias.numpy().any()
            if isinstance(layer, nn.BatchNorm2d):
                gamma = layer.weight.numpy()
                assert abs(gamma.mean() - 1.0) < 0.01 and 0.01 < gamma.std() < 0.03
                assert not layer.bias.numpy().any()
    # The paper's scheme, not the layer's own: Conv2d(1, 64, 4)'s default U(-1/4, 1/4) has std ~0.14.
    assert d.net[0].weight.shape == (64, 1, 4, 4) and nn.Conv2d(1, 64, 4).weight.numpy().std() > 0.1


# ----- the GAN trainer --------------------------------------------------------------------------------
def test_gan_defaults_are_dcgans_adam_settings() -> None:
    gan = GAN(DCGANGenerator(8, 1, 8, 4), DCGANDiscriminator(1, 8, 4))
    for opt in (gan.g_optimizer, gan.d_optimizer):
        assert opt.param_groups[0]["lr"] == 2e-4 and tuple(opt.param_groups[0]["betas"]) == (0.5, 0.999)
    assert gan.latent_dim == 8


def test_gan_step_updates_the_discriminator_without_the_generator_then_the_generator(digits) -> None:
    gan = _small_gan(0)
    before_g = [p.numpy().copy() for p in gan.generator_net.parameters()]
    before_d = [p.numpy().copy() for p in gan.discriminator_net.parameters()]
    # Only D's step: the generator's optimizer does nothing, so G must come out untouched.
    gan.g_optimizer.param_groups[0]["lr"] = 0.0
    gan.train_step(digits[:16])
    assert all(np.array_equal(a, p.numpy()) for a, p in zip(before_g, gan.generator_net.parameters(), strict=True))
    assert not all(np.array_equal(a, p.numpy())
                   for a, p in zip(before_d, gan.discriminator_net.parameters(), strict=True))
    gan.g_optimizer.param_groups[0]["lr"] = 1e-3
    logs = gan.train_step(digits[:16])
    assert not all(np.array_equal(a, p.numpy()) for a, p in zip(before_g, gan.generator_net.parameters(), strict=True))
    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake", "d_accuracy"}
    assert all(p.grad is None or not p.grad.numpy().any() for p in gan.discriminator_net.parameters())


def test_gan_is_reproducible_from_its_generators(digits) -> None:
    runs = []
    for _ in range(2):
        gan = _small_gan(3)
        logs = [gan.train_step(digits[i:i + 16]) for i in range(0, 48, 16)]
        runs.append((logs, gan.sample(4).numpy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_gan_names_bad_batches(digits) -> None:
    gan = _small_gan(0)
    with pytest.raises(ValueError, match="at least 2 images"):
        gan.train_step(digits[:1])
    with pytest.raises(ValueError, match=r"makes images of shape \(1, 8, 8\) but the real batch has \(64,\)"):
        gan.train_step(digits[:4].reshape(4, 64))
    with pytest.raises(ValueError, match=r"GAN.fit: expected at least 2 images"):
        gan.fit(digits[:1])
    with pytest.raises(ValueError, match="pass latent_dim="):
        GAN(nn.Linear(4, 64), DCGANDiscriminator(1, 8, 4))


def _pixel_distance(samples: np.ndarray, real: np.ndarray) -> float:
    """Mean gap between the quantiles of the pixel values (the 1-D Wasserstein-1 distance)."""
    q = np.linspace(0.0, 1.0, 201)
    return float(np.abs(np.quantile(samples, q) - np.quantile(real, q)).mean())


def _mean_image_gap(samples: np.ndarray, real: np.ndarray) -> float:
    """Mean squared difference between the average sample and the average real image."""
    return float(np.mean((samples.mean(axis=0) - real.mean(axis=0)) ** 2))


def test_dcgan_training_on_digits_moves_samples_toward_the_data(digits, one_thread) -> None:
    gan = _small_gan(0)
    untrained = gan.sample(500).numpy()
    first = gan.train_step(digits[:32])
    history = gan.fit(digits[:1024], epochs=3, batch_size=32)
    trained = gan.sample(500).numpy()
    # The discriminator starts at chance and learns to separate data from samples.
    assert 0.3 <= first["d_accuracy"] <= 0.7
    assert max(history["d_accuracy"]) > first["d_accuracy"] + 0.2
    assert trained.min() >= -1.0 and trained.max() <= 1.0
    # Untrained samples are ~0 everywhere; trained ones must come close to the data in pixel
    # distribution and in mean image, and not collapse to one image.
    assert _pixel_distance(trained, digits) < 0.5 * _pixel_distance(untrained, digits)
    assert _mean_image_gap(trained, digits) < 0.3 * _mean_image_gap(untrained, digits)
    assert trained.std(axis=0).mean() > 0.3 * digits.std(axis=0).mean()


# ----- CycleGAN ---------------------------------------------------------------------------------------
def test_cyclegan_default_networks_keep_the_image_shape() -> None:
    g = CycleGANGenerator(1, 8, generator=nt.Generator(0))
    d = PatchDiscriminator(1, 8, generator=nt.Generator(1))
    x = nt.randn(3, 1, 8, 8)
    assert g(x).shape == (3, 1, 8, 8)
    assert d(x).shape == (3, 1, 2, 2)
    with pytest.raises(ValueError, match="divisible by 2"):
        g(nt.randn(3, 1, 7, 7))
    with pytest.raises(ValueError, match="must be distinct"):
        CycleGAN(g, g, d, PatchDiscriminator(1, 8))


def test_cyclegan_identity_loss_is_optional(digits) -> None:
    a, b = digits[:4], -digits[4:8]
    plain = CycleGAN.default(width=4, generator=nt.Generator(0))
    with_identity = CycleGAN.default(width=4, identity_weight=5.0, generator=nt.Generator(0))
    assert "identity" not in plain.train_step(a, b)
    losses = with_identity.generator_losses(nt.tensor(a), nt.tensor(b))
    gab, gba = with_identity.generator_ab, with_identity.generator_ba
    expected = np.abs(gab(b).numpy() - b).mean() + np.abs(gba(a).numpy() - a).mean()
    assert losses["identity"].item() == pytest.approx(expected, rel=1e-5)
    total = losses["adversarial"].item() + 10 * losses["cycle"].item() + 5 * expected
    assert losses["g_loss"].item() == pytest.approx(total, rel=1e-5)


def test_cyclegan_learns_an_unpaired_translation(digits, one_thread) -> None:
    # Domain A: digits; domain B: inverted digits (-x in [-1, 1]) of *other* images: no pairs.
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits))
    domain_a, domain_b = digits[order[:600]], -digits[order[600:1200]]
    held_out = digits[order[1200:1400]]
    model = CycleGAN.default(width=8, lr=2e-3, generator=nt.Generator(0))

    def measure() -> tuple[np.ndarray, float]:
        translated = model.translate_ab(held_out).numpy()
        return translated, float(np.abs(model.translate_ba(translated).numpy() - held_out).mean())

    start_translated, start_cycle = measure()
    cycles = [model.train_step(domain_a[rng.integers(0, 600, 16)], domain_b[rng.integers(0, 600, 16)])["cycle"]
              for _ in range(50)]
    translated, cycle = measure()
    # A -> B -> A reconstructs: the cycle loss falls well below its start, in training and on held-out digits.
    assert np.mean(cycles[-5:]) < 0.7 * np.mean(cycles[:3])
    assert cycle < 0.65 * start_cycle
    # A -> B moves to domain B: the mean intensity nears B's (about +0.39, A's is about -0.39)...
    target = domain_b.mean()
    assert abs(translated.mean() - target) < 0.25 * abs(start_translated.mean() - target)
    # ... and the map found is the inversion itself, though no image was ever shown with its inverse.
    assert np.abs(translated + held_out).mean() < 0.5 * np.abs(translated - held_out).mean()


# ----- saving and loading -----------------------------------------------------------------------------
def _round_trip(model: nn.Module, path) -> nn.Module:
    nt.save(model, path)
    loaded = nt.load(path)
    assert type(loaded) is type(model)
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for key in original:
        np.testing.assert_array_equal(np.asarray(original[key]), np.asarray(restored[key]), err_msg=key)
    return loaded


def test_gan_save_load_round_trip(digits, tmp_path) -> None:
    gan = _small_gan(1)
    gan.train_step(digits[:16])
    loaded = _round_trip(gan, tmp_path / "gan.safetensors")
    assert loaded.latent_dim == 16 and isinstance(loaded.generator_net, DCGANGenerator)
    z = gan.noise(5)
    np.testing.assert_array_equal(gan.sample(5, z=z).numpy(), loaded.sample(5, z=z).numpy())
    disc = _round_trip(gan.discriminator_net.eval(), tmp_path / "d.safetensors")
    np.testing.assert_array_equal(gan.discriminator_net(digits[:3]).numpy(), disc(digits[:3]).numpy())


def test_cyclegan_save_load_round_trip(digits, tmp_path) -> None:
    model = CycleGAN.default(width=4, identity_weight=2.0, generator=nt.Generator(0))
    model.train_step(digits[:8], -digits[8:16])
    loaded = _round_trip(model, tmp_path / "cyclegan.safetensors")
    assert loaded.identity_weight == 2.0 and loaded.cycle_weight == 10.0
    np.testing.assert_array_equal(model.translate_ab(digits[:4]).numpy(), loaded.translate_ab(digits[:4]).numpy())
    np.testing.assert_array_equal(model.translate_ba(digits[:4]).numpy(), loaded.translate_ba(digits[:4]).numpy())


# ----- the example's quick mode -----------------------------------------------------------------------
def test_dcgan_example_quick(tmp_path) -> None:
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "dcgan_digits.py"
    spec = importlib.util.spec_from_file_location("_example_dcgan_digits", path)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example
    spec.loader.exec_module(example)
    result = example.main(["--quick", "--out", str(tmp_path / "r.json")])
    assert result["trained"]["pixel_w1"] < result["untrained"]["pixel_w1"]
    assert sum(result["trained"]["class_histogram"]) == 1000
    assert (tmp_path / "r.json").is_file()
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
