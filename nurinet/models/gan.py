"""Generative adversarial networks (적대적 생성 신경망, GAN) and DCGAN.

A generator ``G`` maps noise ``z ~ N(0, I)`` to images; a discriminator ``D`` gives each image
a logit, "real" when positive. They play a game (Goodfellow et al. 2014): ``D`` learns to
tell data from ``G``'s samples, ``G`` learns to fool ``D``. With ``s = sigmoid``:

    discriminator loss   -log s(D(x)) - log(1 - s(D(G(z))))   (real labelled 1, fake 0)
    generator loss       -log s(D(G(z)))                       (fake labelled 1: non-saturating)

The generator's loss is the "non-saturating" one of the paper: minimizing
``log(1 - s(D(G(z))))`` instead gives vanishing gradients early on, when ``D`` rejects every
sample easily. Both are binary cross-entropies on logits
(``F.binary_cross_entropy_with_logits``), so they stay finite for any logit.

DCGAN (Radford, Metz and Chintala 2016) is the convolutional recipe that made this train
reliably: strided convolutions instead of pooling, transposed convolutions to upsample,
batch normalization in both networks (except the generator's output and the discriminator's
input layers), ReLU in the generator with a Tanh output (images scaled to [-1, 1]), LeakyReLU
(slope 0.2) in the discriminator, weights drawn from N(0, 0.02^2), and Adam with
``lr=2e-4, betas=(0.5, 0.999)``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet import backend, nn, optim
from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.models._arguments import _KeepsArguments
from nurinet.nn.module import module_device
from nurinet.random import Generator, resolve

_MAX_STAGES = 4  # DCGAN's 64x64 generator upsamples 4x4 -> 64x64 in four stride-2 stages


# ----- the losses ---------------------------------------------------------------------------------
def discriminator_loss(real_logits: Any, fake_logits: Any) -> Tensor:
    """The discriminator's GAN loss: ``BCE(D(x), 1) + BCE(D(G(z)), 0)``, each a batch mean.

    Args:
        real_logits: ``D``'s logits on data, any shape.
        fake_logits: ``D``'s logits on generated samples (detach them from ``G`` when only
            ``D`` is to be updated).
    """
    real_logits, fake_logits = as_tensor(real_logits), as_tensor(fake_logits)
    real = F.binary_cross_entropy_with_logits(real_logits, _full_like(real_logits, 1.0))
    fake = F.binary_cross_entropy_with_logits(fake_logits, _full_like(fake_logits, 0.0))
    return real + fake


def generator_loss(fake_logits: Any) -> Tensor:
    """The generator's non-saturating GAN loss: ``BCE(D(G(z)), 1) = mean(-log sigmoid(D(G(z))))``."""
    fake_logits = as_tensor(fake_logits)
    return F.binary_cross_entropy_with_logits(fake_logits, _full_like(fake_logits, 1.0))


def _full_like(x: Tensor, value: float) -> Tensor:
    return Tensor(x.xp.full(x.shape, value, dtype=x.dtype))


# ----- DCGAN networks ----------------------------------------------------------------------------
def dcgan_stages(image_size: int) -> int:
    """The number of stride-2 stages of a DCGAN for square ``image_size`` images.

    The image is halved while its side stays even and at least 2, at most four times:
    8 -> 2 (two stages), 28 -> 7 (two), 32 -> 2 (four), 64 -> 4 (four, as in the paper).

    Raises:
        ValueError: ``image_size`` is odd or smaller than 4 (no stride-2 stage fits).
    """
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 4 \
            or image_size % 2:
        raise ValueError(f"DCGAN: image_size must be an even integer >= 4 (such as 8, 28, 32 or 64), "
                         f"got {image_size!r}")
    stages, side = 0, int(image_size)
    while side % 2 == 0 and side // 2 >= 2 and stages < _MAX_STAGES:
        side //= 2
        stages += 1
    return stages


def dcgan_init_(module: nn.Module, generator: Generator | None = None) -> nn.Module:
    """DCGAN's initialization, in place: every convolution, transposed convolution and linear
    weight ~ N(0, 0.02^2), their biases 0; every batch-norm gamma ~ N(1, 0.02^2), beta 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02, generator=generator)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, 0.02, generator=generator)
            nn.init.zeros_(layer.bias)
    return module


def _check_positive(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


class _Unflatten(nn.Module):
    """``(N, C * H * W) -> (N, C, H, W)``: the "project and reshape" step of DCGAN's generator."""

    def __init__(self, channels: int, height: int, width: int) -> None:
        super().__init__()
        self.shape = (channels, height, width)

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class DCGANGenerator(_KeepsArguments):
    """DCGAN's generator: noise to an image through transposed convolutions.

    ``z`` is projected by a linear layer to ``width * 2^(S-1)`` feature maps of side
    ``image_size / 2^S`` (``S = dcgan_stages(image_size)``: 2 for 8x8 and 28x28 images), then
    each stage doubles the side and halves the channels with ``ConvTranspose2d(kernel 4, stride
    2, padding 1)``, batch norm and ReLU; the last stage outputs ``channels`` maps through Tanh
    (no batch norm), so samples lie in [-1, 1]: scale the data the same way (``2 x - 1`` for
    pixels in [0, 1]). Weights are initialized as the paper says (:func:`dcgan_init_`).

    Args:
        latent_dim: Size of the noise vector ``z``.
        channels: Channels of the images (1 for digits and MNIST, 3 for colour).
        image_size: Side of the square images (even, >= 4; e.g. 8 or 28).
        width: Channels of the last hidden stage; earlier stages have 2x, 4x, ... as many.
        generator: Random source of the initialization.

    Shape:
        - Input: ``(N, latent_dim)``
        - Output: ``(N, channels, image_size, image_size)``, in [-1, 1]
    """

    def __init__(self, latent_dim: int = 32, channels: int = 1, image_size: int = 8, width: int = 32,
                 generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        where = "DCGANGenerator"
        self.latent_dim = _check_positive(latent_dim, "latent_dim", where)
        self.channels = _check_positive(channels, "channels", where)
        self.width = _check_positive(width, "width", where)
        stages = dcgan_stages(image_size)
        self.image_size, side = int(image_size), int(image_size) // 2 ** stages
        maps = [self.width * 2 ** (stages - 1 - i) for i in range(stages)]  # e.g. [64, 32] for width 32
        layers: list[nn.Module] = [
            nn.Linear(self.latent_dim, maps[0] * side * side, bias=False),  # BN follows: a bias would cancel
            _Unflatten(maps[0], side, side),
            nn.BatchNorm2d(maps[0]),
            nn.ReLU(),
        ]
        for c_in, c_out in itertools.pairwise(maps):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU()]
        layers += [nn.ConvTranspose2d(maps[-1], self.channels, 4, stride=2, padding=1), nn.Tanh()]
        self.net = dcgan_init_(nn.Sequential(*layers), generator)

    def forward(self, z: Any) -> Tensor:
        z = as_tensor(z)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"DCGANGenerator(latent_dim={self.latent_dim}): expected noise of shape "
                             f"(N, {self.latent_dim}), got {z.shape}")
        return self.net(z)

    def extra_repr(self) -> str:
        return (f"latent_dim={self.latent_dim}, channels={self.channels}, image_size={self.image_size}, "
                f"width={self.width}")


class DCGANDiscriminator(_KeepsArguments):
    """DCGAN's discriminator: an image to one logit ("real" when positive) through strided convolutions.

    ``S = dcgan_stages(image_size)`` stages of ``Conv2d(kernel 4, stride 2, padding 1)`` and
    LeakyReLU(0.2) halve the side and double the channels (``width``, ``2 width``, ...); every
    stage but the first (which sees the raw image) has batch norm. A linear layer on the last
    feature maps gives the logit. No sigmoid: the losses take logits.

    Args:
        channels: Channels of the images.
        image_size: Side of the square images (even, >= 4; e.g. 8 or 28).
        width: Channels of the first stage.
        generator: Random source of the initialization.

    Shape:
        - Input: ``(N, channels, image_size, image_size)``
        - Output: ``(N, 1)``, logits
    """

    def __init__(self, channels: int = 1, image_size: int = 8, width: int = 32,
                 generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        where = "DCGANDiscriminator"
        self.channels = _check_positive(channels, "channels", where)
        self.width = _check_positive(width, "width", where)
        stages = dcgan_stages(image_size)
        self.image_size, side = int(image_size), int(image_size) // 2 ** stages
        maps = [self.channels] + [self.width * 2 ** i for i in range(stages)]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(itertools.pairwise(maps)):
            layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2))
        layers += [nn.Flatten(), nn.Linear(maps[-1] * side * side, 1)]
        self.net = dcgan_init_(nn.Sequential(*layers), generator)

    def forward(self, x: Any) -> Tensor:
        x = as_tensor(x)
        expected = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"DCGANDiscriminator: expected images of shape (N, {', '.join(map(str, expected))}), "
                             f"got {x.shape} (flat rows? reshape them to NCHW)")
        return self.net(x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, image_size={self.image_size}, width={self.width}"


# ----- the trainer -------------------------------------------------------------------------------
class GAN(_KeepsArguments):
    """A generator and a discriminator trained against each other with the standard GAN losses.

    Each :meth:`train_step` on a batch of real images draws as many noise vectors, then

    1. updates ``D`` on :func:`discriminator_loss` (``G``'s samples detached, so ``G`` is left alone);
    2. updates ``G`` on :func:`generator_loss`, through the just-updated ``D``.

    The two networks have their own Adam optimizers (``g_optimizer``, ``d_optimizer``). The
    networks' weights are saved by ``nurinet.save``; the optimizers' moments are not (use a
    checkpoint of each optimizer's ``state_dict`` to resume exactly).

    Args:
        generator_net: Maps ``(N, latent_dim)`` noise to images, e.g. :class:`DCGANGenerator`.
        discriminator_net: Maps images to ``(N, 1)`` logits, e.g. :class:`DCGANDiscriminator`.
        latent_dim: Size of the noise; by default ``generator_net.latent_dim``.
        lr: Adam's learning rate for both networks (DCGAN: 2e-4).
        betas: Adam's betas (DCGAN: ``(0.5, 0.999)``; the lower beta1 steadies the game).
        generator: Random source of the noise and of the shuffling in :meth:`fit` (not of the
            networks' initialization: give those their own).

    Shape:
        - ``train_step`` input: real images, the shape ``generator_net`` outputs with any ``N``
        - ``sample(n)`` and ``forward(z)`` output: ``(n, *image shape)``
    """

    def __init__(self, generator_net: nn.Module, discriminator_net: nn.Module, latent_dim: int | None = None,
                 lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999),
                 generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        for name, net in (("generator_net", generator_net), ("discriminator_net", discriminator_net)):
            if not isinstance(net, nn.Module):
                raise TypeError(f"GAN: {name} must be a nurinet.nn.Module, got {type(net).__name__}")
        latent_dim = getattr(generator_net, "latent_dim", None) if latent_dim is None else latent_dim
        if latent_dim is None:
            raise ValueError("GAN: generator_net has no latent_dim attribute; pass latent_dim= (the noise size)")
        self.latent_dim = _check_positive(latent_dim, "latent_dim", "GAN")
        self.generator_net, self.discriminator_net, self.generator = generator_net, discriminator_net, generator
        self.g_optimizer = optim.Adam(generator_net.parameters(), lr=lr, betas=tuple(betas))
        self.d_optimizer = optim.Adam(discriminator_net.parameters(), lr=lr, betas=tuple(betas))

    def noise(self, n: int) -> Tensor:
        """``n`` latent vectors ``z ~ N(0, I)`` from the GAN's random source, ``(n, latent_dim)``."""
        dtype = next((p.dtype for p in self.generator_net.parameters()), np.dtype(np.float32))
        z = resolve(self.generator).standard_normal((n, self.latent_dim)).astype(dtype)
        return Tensor(backend.to_device(z, module_device(self.generator_net)))

    def forward(self, z: Any) -> Tensor:
        """The generator's images for the noise ``z``."""
        return self.generator_net(z)

    def train_step(self, real_batch: Any) -> dict[str, float]:
        """One update of the discriminator, then one of the generator, on a batch of real images.

        Returns:
            ``d_loss`` and ``g_loss`` (the two losses of this step), ``d_real`` and ``d_fake``
            (the mean probability ``D`` gave the real and the generated images, before its
            update) and ``d_accuracy`` (the fraction of both it classified right, logit > 0
            meaning real).
        """
        real = as_tensor(real_batch).to(module_device(self.discriminator_net))  # fit's batches come from the host
        if real.ndim < 2 or len(real) < 2:
            raise ValueError(f"GAN.train_step: expected a batch of at least 2 images (N, C, H, W), got shape "
                             f"{real.shape} (batch norm needs 2 samples)")
        self.train()
        fake = self.generator_net(self.noise(len(real)))
        if tuple(fake.shape[1:]) != tuple(real.shape[1:]):
            raise ValueError(f"GAN.train_step: the generator makes images of shape {tuple(fake.shape[1:])} but the "
                             f"real batch has {tuple(real.shape[1:])}")
        real_logits = self.discriminator_net(real)
        fake_logits = self.discriminator_net(fake.detach())  # D's step must not reach G
        d_loss = discriminator_loss(real_logits, fake_logits)
        self.d_optimizer.zero_grad()
        d_loss.backward()
        self.d_optimizer.step()

        g_loss = generator_loss(self.discriminator_net(fake))
        self.g_optimizer.zero_grad()
        g_loss.backward()
        self.g_optimizer.step()
        self.d_optimizer.zero_grad()  # g_loss also reached D's parameters; drop those gradients

        real_out, fake_out = real_logits.numpy(), fake_logits.numpy()
        correct = np.count_nonzero(real_out > 0) + np.count_nonzero(fake_out <= 0)
        return {
            "d_loss": float(d_loss.item()),
            "g_loss": float(g_loss.item()),
            "d_real": float(np.mean(_sigmoid(real_out))),
            "d_fake": float(np.mean(_sigmoid(fake_out))),
            "d_accuracy": correct / (real_out.size + fake_out.size),
        }

    def fit(self, x: Any, epochs: int = 1, batch_size: int = 64, verbose: bool = False) -> dict[str, list[float]]:
        """Train on the images ``x`` (shuffled each epoch with the GAN's random source).

        A last batch of fewer than 2 images is skipped (batch norm needs two).

        Returns:
            Each :meth:`train_step` log averaged over each epoch: ``{"d_loss": [...], ...}``.
        """
        data = as_tensor(x).numpy()
        if data.ndim < 2 or len(data) < 2:
            raise ValueError(f"GAN.fit: expected at least 2 images (N, C, H, W), got shape {data.shape}")
        _check_positive(epochs, "epochs", "GAN.fit")
        _check_positive(batch_size, "batch_size", "GAN.fit")
        rng, history = resolve(self.generator), {}
        for epoch in range(epochs):
            order, logs = rng.permutation(len(data)), []
            for start in range(0, len(data), batch_size):
                batch = order[start:start + batch_size]
                if len(batch) >= 2:
                    logs.append(self.train_step(data[batch]))
            for key in logs[0]:
                history.setdefault(key, []).append(float(np.mean([log[key] for log in logs])))
            if verbose:
                print(f"GAN epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in history.items()))
        return history

    def sample(self, n: int, z: Any = None) -> Tensor:
        """``n`` generated images (the generator in evaluation mode, without a graph).

        Args:
            n: Number of images.
            z: Noise to use instead of fresh draws, ``(n, latent_dim)`` (to compare a fixed set over training).
        """
        n = _check_positive(n, "n", "GAN.sample")
        z = self.noise(n) if z is None else as_tensor(z)
        was_training = self.generator_net.training
        self.generator_net.eval()
        try:
            with no_grad():
                return self.generator_net(z)
        finally:
            self.generator_net.train(was_training)

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free for any logit
