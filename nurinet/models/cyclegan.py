"""CycleGAN (Zhu, Park, Isola and Efros 2017): image-to-image translation without paired examples.

Two generators translate between domains A and B (``G_ab: A -> B``, ``G_ba: B -> A``) and two
discriminators judge each domain (``D_a``, ``D_b``). Nothing pairs an image of A with its
counterpart in B; what ties a translation to its input is the cycle-consistency loss: going
there and back must give the input again, ``G_ba(G_ab(a)) ~ a`` and ``G_ab(G_ba(b)) ~ b``.
The generators minimize

    L_G = L_adv(G_ab, D_b) + L_adv(G_ba, D_a) + cycle_weight * L_cyc + identity_weight * L_id

with, as in the paper, least-squares adversarial losses (LSGAN, Mao et al. 2017; steadier than
the log loss): ``L_adv = mean((D(G(x)) - 1)^2)`` for a generator and
``(mean((D(y) - 1)^2) + mean(D(G(x))^2)) / 2`` for a discriminator; the L1 cycle loss
``L_cyc = mean|G_ba(G_ab(a)) - a| + mean|G_ab(G_ba(b)) - b|``; and the optional identity loss
``L_id = mean|G_ab(b) - b| + mean|G_ba(a) - a|``, which asks a generator fed an image of its
target domain to leave it alone (the paper uses ``identity_weight = cycle_weight / 2`` for
photo <-> painting, to keep the colours).

Not implemented: the paper's history buffer of 50 generated images for the discriminators'
updates (they see the current generators' images).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet import nn, optim
from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.models._arguments import _KeepsArguments
from nurinet.models.gan import _check_positive, _full_like, dcgan_init_
from nurinet.random import Generator


# ----- the losses ---------------------------------------------------------------------------------
def lsgan_discriminator_loss(real_scores: Any, fake_scores: Any) -> Tensor:
    """Least-squares discriminator loss: ``(mean((D(y) - 1)^2) + mean(D(G(x))^2)) / 2``."""
    real_scores, fake_scores = as_tensor(real_scores), as_tensor(fake_scores)
    return (F.mse_loss(real_scores, _full_like(real_scores, 1.0))
            + F.mse_loss(fake_scores, _full_like(fake_scores, 0.0))) * 0.5


def lsgan_generator_loss(fake_scores: Any) -> Tensor:
    """Least-squares generator loss: ``mean((D(G(x)) - 1)^2)``."""
    fake_scores = as_tensor(fake_scores)
    return F.mse_loss(fake_scores, _full_like(fake_scores, 1.0))


# ----- small default networks -----------------------------------------------------------------------
def _instance_norm(channels: int) -> nn.GroupNorm:
    """Instance normalization (the paper's choice) is group normalization with one channel per group."""
    return nn.GroupNorm(channels, channels)


class _ResidualBlock(nn.Module):
    """``x + conv-norm-relu-conv-norm(x)`` at constant shape (3x3 convolutions)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1), _instance_norm(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), _instance_norm(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class CycleGANGenerator(_KeepsArguments):
    """The CycleGAN generator, scaled down for small images: encode, transform, decode.

    A 3x3 convolution to ``width`` maps, ``downsamples`` stride-2 convolutions (each doubling
    the maps), ``residual_blocks`` residual blocks, as many transposed convolutions back up, and
    a 3x3 convolution to ``channels`` maps with Tanh, so outputs lie in [-1, 1]. Instance
    normalization and ReLU after every hidden convolution, as in the paper (which uses 7x7
    outer convolutions, reflection padding and 9 blocks for 256x256 images). Weights ~ N(0, 0.02^2).

    Args:
        channels: Channels of the images (the same in both domains).
        width: Maps of the first convolution.
        downsamples: Stride-2 stages; the image side must be divisible by ``2 ** downsamples``.
        residual_blocks: Residual blocks at the lowest resolution.
        generator: Random source of the initialization.

    Shape:
        - Input: ``(N, channels, H, W)``, ``H`` and ``W`` divisible by ``2 ** downsamples``
        - Output: ``(N, channels, H, W)``, in [-1, 1]
    """

    def __init__(self, channels: int = 1, width: int = 16, downsamples: int = 1, residual_blocks: int = 2,
                 generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        where = "CycleGANGenerator"
        self.channels = _check_positive(channels, "channels", where)
        self.width = _check_positive(width, "width", where)
        self.downsamples = _check_nonnegative(downsamples, "downsamples", where)
        self.residual_blocks = _check_nonnegative(residual_blocks, "residual_blocks", where)
        layers: list[nn.Module] = [nn.Conv2d(self.channels, self.width, 3, padding=1), _instance_norm(self.width),
                                   nn.ReLU()]
        maps = self.width
        for _ in range(self.downsamples):
            layers += [nn.Conv2d(maps, 2 * maps, 4, stride=2, padding=1), _instance_norm(2 * maps), nn.ReLU()]
            maps *= 2
        layers += [_ResidualBlock(maps) for _ in range(self.residual_blocks)]
        for _ in range(self.downsamples):
            layers += [nn.ConvTranspose2d(maps, maps // 2, 4, stride=2, padding=1), _instance_norm(maps // 2),
                       nn.ReLU()]
            maps //= 2
        layers += [nn.Conv2d(maps, self.channels, 3, padding=1), nn.Tanh()]
        self.net = dcgan_init_(nn.Sequential(*layers), generator)

    def forward(self, x: Any) -> Tensor:
        return self.net(_images(x, self.channels, self.downsamples, "CycleGANGenerator"))

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, width={self.width}, downsamples={self.downsamples}, "
                f"residual_blocks={self.residual_blocks}")


class PatchDiscriminator(_KeepsArguments):
    """A PatchGAN discriminator: a score for each overlapping patch of the image, not one per image.

    ``downsamples`` stride-2 convolutions (kernel 4; ``width``, ``2 width``, ... maps; LeakyReLU
    0.2; instance norm on all but the first), then a 3x3 convolution to one map of scores. Each
    score judges the patch of the input it sees, so the discriminator asks for realistic local
    texture and leaves the global layout to the cycle loss. Scores are raw (least-squares loss).

    Args:
        channels: Channels of the images.
        width: Maps of the first convolution.
        downsamples: Stride-2 stages; the image side must be divisible by ``2 ** downsamples``.
        generator: Random source of the initialization.

    Shape:
        - Input: ``(N, channels, H, W)``
        - Output: ``(N, 1, H / 2^downsamples, W / 2^downsamples)``, one score per patch
    """

    def __init__(self, channels: int = 1, width: int = 16, downsamples: int = 2,
                 generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        where = "PatchDiscriminator"
        self.channels = _check_positive(channels, "channels", where)
        self.width = _check_positive(width, "width", where)
        self.downsamples = _check_positive(downsamples, "downsamples", where)
        maps = [self.channels] + [self.width * 2 ** i for i in range(self.downsamples)]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(itertools.pairwise(maps)):
            layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
            if i > 0:
                layers.append(_instance_norm(c_out))
            layers.append(nn.LeakyReLU(0.2))
        layers.append(nn.Conv2d(maps[-1], 1, 3, padding=1))
        self.net = dcgan_init_(nn.Sequential(*layers), generator)

    def forward(self, x: Any) -> Tensor:
        return self.net(_images(x, self.channels, self.downsamples, "PatchDiscriminator"))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, width={self.width}, downsamples={self.downsamples}"


def _images(x: Any, channels: int, downsamples: int, where: str) -> Tensor:
    """``x`` as a Tensor, checked to be images ``(N, channels, H, W)`` with H and W divisible by
    ``2 ** downsamples`` (the stride-2 stages of ``where``)."""
    x = as_tensor(x)
    step = 2 ** downsamples
    if x.ndim != 4 or x.shape[1] != channels or x.shape[2] % step or x.shape[3] % step:
        raise ValueError(f"{where}(channels={channels}, downsamples={downsamples}): expected "
                         f"images (N, {channels}, H, W) with H and W divisible by {step}, got {x.shape}")
    return x


def _check_nonnegative(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{where}: {name} must be a non-negative integer, got {value!r}")
    return int(value)


# ----- the trainer -------------------------------------------------------------------------------
class CycleGAN(_KeepsArguments):
    """Two generators and two discriminators trained for unpaired translation between domains A and B.

    Each :meth:`train_step` takes a batch of each domain (unrelated images, any sizes), then

    1. updates both generators on ``L_G`` (the module docstring gives it);
    2. updates both discriminators on their least-squares losses, the generated images detached.

    Use :meth:`default` for small networks suited to 8x8 images.

    Args:
        generator_ab: Translates A to B (images to images of the same shape).
        generator_ba: Translates B to A.
        discriminator_a: Scores images of A (any score shape: one per image or one per patch).
        discriminator_b: Scores images of B.
        cycle_weight: ``lambda`` of the cycle loss (paper: 10).
        identity_weight: Weight of the identity loss (0: off; paper: 5 on photo <-> painting).
        lr: Adam's learning rate for all four networks (paper: 2e-4).
        betas: Adam's betas (paper: ``(0.5, 0.999)``).

    Shape:
        - ``train_step`` inputs: ``(N_a, C, H, W)`` and ``(N_b, C, H, W)``
        - ``translate_ab`` / ``translate_ba``: ``(N, C, H, W)`` to the same shape
    """

    def __init__(self, generator_ab: nn.Module, generator_ba: nn.Module, discriminator_a: nn.Module,
                 discriminator_b: nn.Module, cycle_weight: float = 10.0, identity_weight: float = 0.0,
                 lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999)) -> None:
        super().__init__()
        self._keep_arguments(locals())
        nets = {"generator_ab": generator_ab, "generator_ba": generator_ba, "discriminator_a": discriminator_a,
                "discriminator_b": discriminator_b}
        for name, net in nets.items():
            if not isinstance(net, nn.Module):
                raise TypeError(f"CycleGAN: {name} must be a nurinet.nn.Module, got {type(net).__name__}")
        if generator_ab is generator_ba or discriminator_a is discriminator_b:
            raise ValueError("CycleGAN: the two generators (and the two discriminators) must be distinct modules")
        for name, value in (("cycle_weight", cycle_weight), ("identity_weight", identity_weight)):
            if not value >= 0:
                raise ValueError(f"CycleGAN: {name} must be >= 0, got {value!r}")
        self.generator_ab, self.generator_ba = generator_ab, generator_ba
        self.discriminator_a, self.discriminator_b = discriminator_a, discriminator_b
        self.cycle_weight, self.identity_weight = float(cycle_weight), float(identity_weight)
        generators = [*generator_ab.parameters(), *generator_ba.parameters()]
        discriminators = [*discriminator_a.parameters(), *discriminator_b.parameters()]
        self.g_optimizer = optim.Adam(generators, lr=lr, betas=tuple(betas))
        self.d_optimizer = optim.Adam(discriminators, lr=lr, betas=tuple(betas))

    @classmethod
    def default(cls, channels: int = 1, width: int = 16, cycle_weight: float = 10.0, identity_weight: float = 0.0,
                lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999),
                generator: Generator | None = None) -> CycleGAN:
        """A CycleGAN of small networks for 8x8 images (any side divisible by 4 works):
        :class:`CycleGANGenerator` (one downsampling, two residual blocks) and
        :class:`PatchDiscriminator` (two downsamplings: 2x2 patch scores on 8x8 images)."""
        return cls(CycleGANGenerator(channels, width, generator=generator),
                   CycleGANGenerator(channels, width, generator=generator),
                   PatchDiscriminator(channels, width, generator=generator),
                   PatchDiscriminator(channels, width, generator=generator),
                   cycle_weight=cycle_weight, identity_weight=identity_weight, lr=lr, betas=betas)

    def forward(self, a: Any) -> Tensor:
        """``generator_ab(a)``: A translated to B."""
        return self.generator_ab(a)

    def generator_losses(self, a: Tensor, b: Tensor) -> dict[str, Tensor]:
        """The generators' objective and its parts on one pair of batches (with graphs)."""
        fake_b, fake_a = self.generator_ab(a), self.generator_ba(b)
        adversarial = lsgan_generator_loss(self.discriminator_b(fake_b)) \
            + lsgan_generator_loss(self.discriminator_a(fake_a))
        cycle = F.l1_loss(self.generator_ba(fake_b), a) + F.l1_loss(self.generator_ab(fake_a), b)
        total = adversarial + cycle * self.cycle_weight
        losses = {"fake_a": fake_a, "fake_b": fake_b, "adversarial": adversarial, "cycle": cycle}
        if self.identity_weight > 0:
            identity = F.l1_loss(self.generator_ab(b), b) + F.l1_loss(self.generator_ba(a), a)
            total = total + identity * self.identity_weight
            losses["identity"] = identity
        losses["g_loss"] = total
        return losses

    def train_step(self, batch_a: Any, batch_b: Any) -> dict[str, float]:
        """One update of the generators, then one of the discriminators, on unpaired batches.

        Returns:
            ``g_loss`` (the generators' total), its parts ``adversarial``, ``cycle`` (the
            unweighted L1 cycle loss, both directions summed) and ``identity`` (when used),
            and ``d_a_loss``, ``d_b_loss``.
        """
        a, b = as_tensor(batch_a), as_tensor(batch_b)
        if a.ndim != 4 or b.ndim != 4 or a.shape[1:] != b.shape[1:]:
            raise ValueError(f"CycleGAN.train_step: expected two batches of images (N, C, H, W) with the same "
                             f"(C, H, W), got {a.shape} and {b.shape}")
        self.train()
        losses = self.generator_losses(a, b)
        self.g_optimizer.zero_grad()
        losses["g_loss"].backward()
        self.g_optimizer.step()

        d_a_loss = lsgan_discriminator_loss(self.discriminator_a(a), self.discriminator_a(losses["fake_a"].detach()))
        d_b_loss = lsgan_discriminator_loss(self.discriminator_b(b), self.discriminator_b(losses["fake_b"].detach()))
        self.d_optimizer.zero_grad()  # also clears what the generators' loss left on the discriminators
        (d_a_loss + d_b_loss).backward()
        self.d_optimizer.step()
        logs = {k: float(v.item()) for k, v in losses.items() if k not in ("fake_a", "fake_b")}
        logs.update(d_a_loss=float(d_a_loss.item()), d_b_loss=float(d_b_loss.item()))
        return logs

    def _translate(self, net: nn.Module, x: Any) -> Tensor:
        was_training = net.training
        net.eval()
        try:
            with no_grad():
                return net(as_tensor(x))
        finally:
            net.train(was_training)

    def translate_ab(self, a: Any) -> Tensor:
        """Images of A translated to B (evaluation mode, no graph)."""
        return self._translate(self.generator_ab, a)

    def translate_ba(self, b: Any) -> Tensor:
        """Images of B translated to A (evaluation mode, no graph)."""
        return self._translate(self.generator_ba, b)

    def extra_repr(self) -> str:
        return f"cycle_weight={self.cycle_weight}, identity_weight={self.identity_weight}"
