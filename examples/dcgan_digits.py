"""Train a DCGAN on the bundled 8x8 digits and measure how close its samples come to the data.

Data: the 1,797 UCI digits bundled with nurinet, scaled to [-1, 1] (the generator's Tanh range).

Model: ``DCGANGenerator(latent_dim=32, width=32)`` (noise -> 64 maps of 2x2 -> 32 maps of
4x4 -> one 8x8 image) against ``DCGANDiscriminator(width=32)``, trained by ``GAN`` with the
paper's settings: non-saturating losses, Adam(lr 2e-4, betas (0.5, 0.999)), batches of 64.

Measures, on 1,000 samples, for the untrained and the trained generator:

- ``pixel_w1``: the Wasserstein-1 distance between the distributions of pixel values of the
  samples and of the data (0 when they match);
- ``mean_image_mse``: squared difference between the average sample and the average digit;
- a digit classifier (an MLP trained here on the real digits, ~97% test accuracy) reads each
  sample: ``class_histogram`` shows whether all ten digits appear (mode collapse would put
  everything in a few classes), ``mean_confidence`` how digit-like the samples look to it
  (on real held-out digits it is reported too, for reference).

Writes ``examples/results/dcgan_digits[_quick].json`` and a PNG grid of 64 samples next to it
(drawn with matplotlib when it is installed, otherwise written directly as a grayscale PNG).

Usage::

    python examples/dcgan_digits.py            # full run (40 epochs, about a minute on 2 idle cores)
    python examples/dcgan_digits.py --quick    # smoke test (seconds)
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that the example runs from a checkout without installing nurinet

import nurinet as nt
from examples import _common as common
from nurinet import nn
from nurinet.models import GAN, DCGANDiscriminator, DCGANGenerator


def pixel_w1(samples: np.ndarray, real: np.ndarray) -> float:
    """Wasserstein-1 distance between the pixel-value distributions (from 201 quantiles)."""
    q = np.linspace(0.0, 1.0, 201)
    return float(np.abs(np.quantile(samples, q) - np.quantile(real, q)).mean())


def mean_image_mse(samples: np.ndarray, real: np.ndarray) -> float:
    return float(np.mean((samples.mean(axis=0) - real.mean(axis=0)) ** 2))


def train_classifier(x: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> tuple[nn.Module, float]:
    """An MLP digit classifier on images in [-1, 1] (80/20 split); returns it and its test accuracy."""
    g = nt.Generator(seed)
    order = g.np.permutation(len(x))
    cut = int(0.8 * len(x))
    flat = x.reshape(len(x), -1)
    net = nn.Sequential(nn.Linear(64, 64, generator=g), nn.ReLU(), nn.Linear(64, 10, generator=g))
    opt = nt.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(epochs):
        for start in range(0, cut, 64):
            idx = order[start:min(start + 64, cut)]
            loss = nt.F.cross_entropy(net(nt.tensor(flat[idx])), nt.tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    with nt.no_grad():
        predicted = net(nt.tensor(flat[order[cut:]])).numpy().argmax(axis=1)
    return net, float(np.mean(predicted == y[order[cut:]]))


def read_with(classifier: nn.Module, images: np.ndarray) -> dict[str, Any]:
    """The classifier's class histogram and mean top probability on ``images``."""
    with nt.no_grad():
        probs = nt.F.softmax(classifier(nt.tensor(images.reshape(len(images), -1))), axis=1).numpy()
    return {"class_histogram": np.bincount(probs.argmax(axis=1), minlength=10).tolist(),
            "mean_confidence": float(probs.max(axis=1).mean())}


def measure(samples: np.ndarray, real: np.ndarray, classifier: nn.Module) -> dict[str, Any]:
    return {"pixel_w1": pixel_w1(samples, real), "mean_image_mse": mean_image_mse(samples, real),
            "min": float(samples.min()), "max": float(samples.max()), **read_with(classifier, samples)}


def grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """``(N, 1, H, W)`` images in [-1, 1] tiled into one 2-D array in [0, 1], grey 1-pixel gaps."""
    n, _, h, w = images.shape
    rows = -(-n // columns)
    out = np.full((rows * (h + 1) + 1, columns * (w + 1) + 1), 0.5, np.float32)  # grey gaps
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = (image[0] + 1) / 2
    return out


def write_png(array: np.ndarray, path: Path, scale: int = 8) -> None:
    """A grayscale image in [0, 1] (white = 1), enlarged ``scale`` times, as a PNG file."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # no matplotlib: write the PNG chunks by hand (8-bit grayscale)
        pixels = np.kron(np.clip(array, 0, 1), np.ones((scale, scale)))
        data = (255 * (1 - pixels)).astype(np.uint8)  # dark strokes on white, as the plot would be
        raw = b"".join(b"\x00" + row.tobytes() for row in data)

        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

        header = struct.pack(">IIBBBBB", data.shape[1], data.shape[0], 8, 0, 0, 0, 0)
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
                         + chunk(b"IEND", b""))
        return
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(1 - array, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-4)
    common.add_run_options(parser, seed="the initialization, noise and shuffling",
                           quick="3 epochs, width 16, lr 1e-3", out="dcgan_digits[_quick].json",
                           threads_help="tiny matrices: 1 is fastest")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.width, args.latent_dim, args.lr = 3, 16, 16, 1e-3
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    x, y = nt.data.load_digits(flatten=False, normalize=True)
    x = x * np.float32(2.0) - np.float32(1.0)
    with common.blas_threads(args.threads):
        classifier, classifier_accuracy = train_classifier(x, y, args.seed, epochs=3 if args.quick else 20)
        gan = GAN(DCGANGenerator(args.latent_dim, 1, 8, args.width, generator=nt.Generator(args.seed)),
                  DCGANDiscriminator(1, 8, args.width, generator=nt.Generator(args.seed + 1)),
                  lr=args.lr, generator=nt.Generator(args.seed + 2))
        fixed_noise = gan.noise(1000)
        untrained = measure(gan.sample(1000, z=fixed_noise).numpy(), x, classifier)
        print(f"DCGAN on {len(x)} digits: {sum(p.numel() for p in gan.generator_net.parameters())} generator and "
              f"{sum(p.numel() for p in gan.discriminator_net.parameters())} discriminator parameters", flush=True)
        start = time.perf_counter()
        history = gan.fit(x, epochs=args.epochs, batch_size=args.batch_size, verbose=True)
        seconds = time.perf_counter() - start
        samples = gan.sample(1000, z=fixed_noise).numpy()
    result = {
        "config": common.config(args),
        "seconds": round(seconds, 2),
        "history": history,
        "untrained": untrained,
        "trained": measure(samples, x, classifier),
        "data": {"pixel_w1": 0.0, "mean_image_mse": 0.0, **read_with(classifier, x)},
        "classifier_test_accuracy": classifier_accuracy,
    }
    for name in ("untrained", "trained", "data"):
        r = result[name]
        print(f"{name:9s} pixel W1 {r['pixel_w1']:.3f}  mean-image MSE {r['mean_image_mse']:.4f}  "
              f"classifier confidence {r['mean_confidence']:.3f}  classes {r['class_histogram']}")
    out = common.write_result(result, args.out, common.result_name("dcgan_digits", args.quick))
    write_png(grid(samples[:64]), out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()
