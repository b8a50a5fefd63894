"""The feature hierarchy: what units in successive layers of a small CNN respond to (issue 19).

A two-layer CNN is trained on the bundled 8x8 digits for a few seconds, then three views say what its
units respond to:

(a) the first layer's filters as images;
(b) for a few units of layer 1 and layer 2, the 9 image patches (receptive-field crops, zero padded
    at the border) of held-out digits that activate the unit most;
(c) activation maximization: starting from a small random image, gradient ascent on the input
    (nurinet's autograd: the input Tensor with ``requires_grad``, ``backward`` on the unit's
    pre-activation at the centre position, or the class logit, minus an L2 penalty; Adam, pixels kept
    in [0, 1]) for units of layer 1, layer 2 and the 10 output classes (each shown on its own scale).

Layer 1 sees 3x3 pixels (edges and stroke pieces), layer 2 8x8 (after the 2x2 max pool: larger parts
of strokes), the class units the whole image (digit-like shapes).

Model: conv 8@3x3 (padding 1) - ReLU - max pool 2 - conv 16@3x3 (padding 1) - ReLU - flatten -
linear 10, trained with cross entropy and Adam on 70% of the digits (split by image), tested on 30%.

The JSON holds the test accuracy and, per layer, the receptive field (nominal and the mean clipped
size over positions) and the mean activation (post-ReLU for the conv layers, the logit for the
classes) of the maximizing images against uniform random images and against the test digits.

Writes ``examples/results/feature_hierarchy_digits[_quick].json`` and, when matplotlib is installed,
the figure beside it (``.png``).

Usage::

    python examples/feature_hierarchy_digits.py           # full run (a few seconds)
    python examples/feature_hierarchy_digits.py --quick   # smoke test
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that the example runs from a checkout without installing nurinet

import nurinet as nt
from examples import _common as common
from nurinet import nn
from nurinet.functional import cross_entropy, max_pool2d

LAYERS = ("layer1", "layer2", "output")
PAD = 3  # zero padding around an image so that every receptive-field crop has the nominal size


class DigitCNN(nn.Module):
    """conv 8@3x3 - ReLU - max pool 2 - conv 16@3x3 - ReLU - flatten - linear 10."""

    def __init__(self, generator: nt.Generator, channels: tuple[int, int] = (8, 16)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels[0], 3, padding=1, generator=generator)
        self.conv2 = nn.Conv2d(channels[0], channels[1], 3, padding=1, generator=generator)
        self.fc = nn.Linear(channels[1] * 16, 10, generator=generator)

    def features(self, x: Any) -> dict[str, Any]:
        """Pre-activations of every layer: conv1 (N, 8, 8, 8), conv2 (N, 16, 4, 4), logits (N, 10)."""
        pre1 = self.conv1(x)
        pre2 = self.conv2(max_pool2d(pre1.relu(), 2))
        logits = self.fc(pre2.relu().reshape(pre2.shape[0], -1))
        return {"layer1": pre1, "layer2": pre2, "output": logits}

    def forward(self, x: Any) -> Any:
        return self.features(x)["output"]


def split(seed: int, train_fraction: float = 0.7) -> tuple[np.ndarray, ...]:
    """``common.digits_split``'s images as (N, 1, 8, 8): ``x_train, y_train, x_test, y_test``."""
    data = common.digits_split(seed, train_fraction)
    return (data["x_train"].reshape(-1, 1, 8, 8), data["y_train"], data["x_test"].reshape(-1, 1, 8, 8),
            data["y_test"])


def train(model: DigitCNN, x: np.ndarray, y: np.ndarray, epochs: int, lr: float, batch_size: int,
          seed: int) -> float:
    opt = nt.optim.Adam(model.parameters(), lr=lr)
    rng = nt.Generator(seed).np
    loss = float("nan")
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            opt.zero_grad()
            out = cross_entropy(model(nt.tensor(x[batch])), nt.tensor(y[batch]))
            out.backward()
            opt.step()
            loss = float(out.item())
    return loss


def activations(model: DigitCNN, x: np.ndarray) -> dict[str, np.ndarray]:
    """Post-ReLU maps of the conv layers and the logits, as arrays."""
    with nt.no_grad():
        feats = model.features(nt.tensor(x))
    return {name: (np.maximum(t.numpy(), 0) if name != "output" else t.numpy()) for name, t in feats.items()}


def unit_means(acts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each image's activation of each unit: the mean over positions, (N, units)."""
    return {name: a.reshape(a.shape[0], a.shape[1], -1).mean(axis=2) for name, a in acts.items()}


def centre(a: Any) -> Any:
    """A conv map's value at its centre position (N, C, H, W) -> (N, C); logits as they are."""
    return a[:, :, a.shape[2] // 2, a.shape[3] // 2] if a.ndim == 4 else a


def unit_values(acts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each image's activation of each unit at the centre position (the logits for the classes)."""
    return {name: centre(a) for name, a in acts.items()}


def receptive_box(layer: str, i: int, j: int) -> tuple[int, int, int, int]:
    """Input rows/columns (unclipped, end exclusive) seen by position (i, j) of ``layer``."""
    if layer == "layer1":
        return i - 1, i + 2, j - 1, j + 2
    # conv2 position p sees pooled p-1..p+1, pooled k sees conv1 2k..2k+1, conv1 r sees input r-1..r+1
    return 2 * i - 3, 2 * i + 5, 2 * j - 3, 2 * j + 5


def mean_receptive_field(layer: str, size: int = 8) -> float:
    """The receptive field in pixels, clipped to the image, averaged over the layer's positions."""
    if layer == "output":
        return float(size * size)
    positions = size if layer == "layer1" else size // 2
    areas = []
    for i in range(positions):
        for j in range(positions):
            r0, r1, c0, c1 = receptive_box(layer, i, j)
            areas.append((min(r1, size) - max(r0, 0)) * (min(c1, size) - max(c0, 0)))
    return float(np.mean(areas))


def top_patches(acts: np.ndarray, images: np.ndarray, layer: str, unit: int, k: int = 9) -> np.ndarray:
    """The ``k`` receptive-field crops (distinct images) that activate ``unit`` most."""
    maps = acts[:, unit]  # (N, H, W)
    flat = maps.reshape(len(maps), -1)
    best_position = flat.argmax(axis=1)
    best_images = np.argsort(-flat.max(axis=1), kind="stable")[:k]
    padded = np.pad(images[:, 0], ((0, 0), (PAD, PAD), (PAD, PAD)))
    crops = []
    for n in best_images:
        i, j = divmod(int(best_position[n]), maps.shape[2])
        r0, r1, c0, c1 = receptive_box(layer, i, j)
        crops.append(padded[n, r0 + PAD:r1 + PAD, c0 + PAD:c1 + PAD])
    return np.stack(crops)


def maximize(model: DigitCNN, layer: str, units: Sequence[int], steps: int, lr: float, l2: float,
             seed: int) -> np.ndarray:
    """One image per unit by gradient ascent on the input, all units in one batch; pixels in [0, 1]."""
    start = 0.1 + 0.05 * nt.Generator(seed).np.standard_normal((len(units), 1, 8, 8))
    x = nt.tensor(np.clip(start, 0, 1).astype(np.float32), requires_grad=True)
    opt = nt.optim.Adam([x], lr=lr)
    index = np.asarray(units)
    for _ in range(steps):
        opt.zero_grad()
        pre = centre(model.features(x)[layer])
        own = (pre * nt.tensor(np.eye(pre.shape[1], dtype=np.float32)[index])).sum()  # unit u of image u
        (-(own - l2 * (x * x).sum())).backward()
        opt.step()
        with nt.no_grad():
            x.array[...] = np.clip(x.numpy(), 0, 1)
    return x.numpy().copy()


def chosen_units(means: np.ndarray, count: int) -> list[int]:
    """The ``count`` units most active on the test digits (in unit order)."""
    return sorted(int(u) for u in np.argsort(-means.mean(axis=0), kind="stable")[:count])


def plot(path: Path, filters: np.ndarray, patches: dict[str, dict[int, np.ndarray]],
         maximizing: dict[str, dict[int, np.ndarray]], accuracy: float) -> bool:
    """The figure; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [("(a) layer-1 filters", [(f"f{u}", w) for u, w in enumerate(filters)])]
    for layer in ("layer1", "layer2"):
        for unit, crops in patches[layer].items():
            rows.append((f"(b) {layer} unit {unit}: top 9 patches", [("", c) for c in crops]))
    titles = {"layer1": "(c) layer 1 maximizing", "layer2": "(c) layer 2 maximizing", "output": "(c) classes"}
    for layer in LAYERS:
        rows.append((titles[layer], [(f"{'class ' if layer == 'output' else 'u'}{u}", im[0])
                                     for u, im in maximizing[layer].items()]))
    columns = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(columns * 0.8, len(rows) * 0.95), squeeze=False)
    for r, (label, cells) in enumerate(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(cells):
                ax.axis("off")
                continue
            name, image = cells[c]
            cmap = "bwr" if r == 0 else "gray"
            limit = float(np.abs(image).max()) or 1.0
            ax.imshow(image, cmap=cmap, interpolation="nearest",
                      **({"vmin": -limit, "vmax": limit} if r == 0 else {"vmin": 0, "vmax": limit}))
            if name:
                ax.set_title(name, fontsize=6, pad=1)
        axes[r, 0].set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle(f"What units respond to, layer by layer (digits CNN, test accuracy {accuracy:.3f})", fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--units", type=int, default=4, help="units per conv layer in the top-9 rows")
    parser.add_argument("--max-units", type=int, default=8, help="units per conv layer maximized")
    parser.add_argument("--steps", type=int, default=300, help="gradient-ascent steps")
    parser.add_argument("--ascent-lr", type=float, default=0.05)
    parser.add_argument("--l2", type=float, default=0.3, help="L2 penalty on the maximizing image (conv units)")
    parser.add_argument("--l2-output", type=float, default=3.0,
                        help="L2 penalty for the class units (their logits are larger)")
    common.add_run_options(parser, seed="the split, initialization, batch order and start images",
                           quick="3 epochs, 60 ascent steps", out="feature_hierarchy_digits[_quick].json",
                           threads_help="small matrices: 1 is fastest")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.steps = 3, 60
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    x_train, y_train, x_test, y_test = split(args.seed)
    nt.manual_seed(args.seed)
    model = DigitCNN(nt.Generator(args.seed))
    start = time.perf_counter()
    with common.blas_threads(args.threads):
        loss = train(model, x_train, y_train, args.epochs, args.lr, args.batch_size, args.seed + 1)
        acts = activations(model, x_test)
        accuracy = float((acts["output"].argmax(axis=1) == y_test).mean())
        data_means = unit_means(acts)
        random_images = nt.Generator(args.seed + 2).np.random((64, 1, 8, 8)).astype(np.float32)
        random_values = unit_values(activations(model, random_images))
        data_values = unit_values(acts)
        units = {"layer1": chosen_units(data_means["layer1"], args.max_units),
                 "layer2": chosen_units(data_means["layer2"], args.max_units), "output": list(range(10))}
        patches = {layer: {u: top_patches(acts[layer], x_test, layer, u) for u in units[layer][:args.units]}
                   for layer in ("layer1", "layer2")}
        maximizing, layers = {}, {}
        for depth, layer in enumerate(LAYERS):
            images = maximize(model, layer, units[layer], args.steps, args.ascent_lr,
                              args.l2_output if layer == "output" else args.l2,
                              args.seed + 3 + depth)
            own = unit_values(activations(model, images))[layer][np.arange(len(units[layer])), units[layer]]
            maximizing[layer] = dict(zip(units[layer], images))
            chosen_random = random_values[layer][:, units[layer]].mean(axis=0)
            chosen_data = data_values[layer][:, units[layer]]
            layers[layer] = {
                "receptive_field": {"layer1": 3, "layer2": 8, "output": 8}[layer],
                "mean_receptive_field_pixels": mean_receptive_field(layer),
                "units": units[layer],
                "mean_activation_maximizing": float(own.mean()),
                "mean_activation_random": float(chosen_random.mean()),
                "mean_activation_data": float(chosen_data.mean()),
                "unit_activation_maximizing": [float(v) for v in own],
                "unit_activation_random": [float(v) for v in chosen_random],
                "unit_activation_data_std": [float(v) for v in chosen_data.std(axis=0)],
            }
    seconds = time.perf_counter() - start
    result = {"config": common.config(args), "train_images": len(x_train), "test_images": len(x_test),
              "final_training_loss": loss, "test_accuracy": accuracy, "seconds": round(seconds, 2),
              "layers": layers}
    for layer, info in layers.items():
        print(f"{layer}: receptive field {info['mean_receptive_field_pixels']:.1f} px; mean activation "
              f"maximizing {info['mean_activation_maximizing']:.3f}, random {info['mean_activation_random']:.3f}, "
              f"digits {info['mean_activation_data']:.3f}")
    print(f"test accuracy {accuracy:.4f}; {seconds:.1f} s", flush=True)
    out = common.write_result(result, args.out, common.result_name("feature_hierarchy_digits", args.quick))
    figure = out.with_suffix(".png")
    plotted = plot(figure, model.conv1.weight.numpy()[:, 0], patches, maximizing, accuracy)
    result["figure"] = str(figure) if plotted else None
    print(f"wrote {out}" + (f" and {figure}" if plotted else " (no figure: matplotlib is not installed)"))
    return result


if __name__ == "__main__":
    main()
