"""A convolutional deep belief network on the 8x8 digits: learned filters, and a linear probe of its features.

Data: the 1,797 bundled UCI digits in [0, 1] as ``(1, 8, 8)`` images, split by image (70% train,
30% test). No label reaches the CDBN.

Model (Lee, Grosse, Ranganath and Ng, 2009): ``CDBN([ConvRBM(1, K1, 3, pool_size=2), ConvRBM(K1, K2,
2, pool_size=1)])`` with binary units, probabilistic max-pooling and a sparsity target, pre-trained
greedily by CD-1: the first layer's 3x3 filters over the 8x8 image give 6x6 detection maps pooled
to 3x3; the second layer's 2x2 filters over those give 2x2 maps.

Measures: the test accuracy of the same linear classifier (softmax regression, ``nn.Linear`` trained
by Adam on the training images' features, ``--probe-epochs`` full-batch steps) on

- the raw pixels (64 features), the baseline;
- the CDBN's features, both layers' pooling probabilities concatenated (as Lee et al. fed their
  classifiers), and the top layer's alone;
- the same network with untrained (random, N(0, 0.01^2)) filters, so that what pre-training adds
  is told apart from what the architecture gives;
- the pixels and the CDBN's features side by side.

With ``--data mnist`` the same measures run on MNIST's 10,000 "t10k" images (the 8,000 / 2,000
split of ``examples/_common.py``) at 28x28, with 5x5 filters and 2x2 pooling in both layers.

Writes ``examples/results/cdbn_digits[_mnist][_quick].json`` and, when matplotlib is installed, a
PNG of the first layer's filters beside it (``..._filters.png``).

Usage::

    python examples/cdbn_digits.py                # full run (under a minute)
    python examples/cdbn_digits.py --quick        # smoke test (seconds)
    python examples/cdbn_digits.py --data mnist --epochs 3 --filters1 16 --filters2 24
                                                  # MNIST from ../shared/datasets/mnist (4 minutes)
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
from nurinet.models import CDBN, ConvRBM

# (kernel, pool) of the two layers: 8x8 -> 6x6 -> 3x3 -> 2x2 for the digits,
# 28x28 -> 24x24 -> 12x12 -> 8x8 -> 4x4 for MNIST.
ARCHITECTURES = {"digits": ((3, 2), (2, 1)), "mnist": ((5, 2), (5, 2))}


def build(args: argparse.Namespace) -> CDBN:
    g = nt.Generator(args.seed)
    (kernel1, pool1), (kernel2, pool2) = ARCHITECTURES[args.data]
    sparsity = {"sparsity_target": args.sparsity, "sparsity_cost": args.sparsity_cost}
    return CDBN([
        ConvRBM(1, args.filters1, kernel1, pool_size=pool1, generator=g, **sparsity),
        ConvRBM(args.filters1, args.filters2, kernel2, pool_size=pool2, generator=g, **sparsity),
    ])


def load(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(images (N, 1, H, W), labels, train rows, test rows)`` of the chosen data."""
    if args.data == "mnist":
        x_train, y_train, x_test, y_test = common.load_mnist_split(Path(args.mnist), args.seed)
        images, labels = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])
        rows = np.arange(len(images))
        return images.astype(np.float32), labels, rows[:len(x_train)], rows[len(x_train):]
    x, y = nt.data.load_digits(normalize=True)
    order = nt.Generator(args.seed).np.permutation(len(x))
    cut = int(0.7 * len(x))
    return x.reshape(-1, 1, 8, 8).astype(np.float32), y, order[:cut], order[cut:]


def linear_probe(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                 args: argparse.Namespace) -> float:
    """Test accuracy of softmax regression trained on the training features (standardized by
    their training statistics, so that one learning rate suits every feature set)."""
    (x_train, y_train), (x_test, y_test) = train, test
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    x_train, x_test = ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)
    probe = nn.Linear(x_train.shape[1], 10, generator=nt.Generator(args.seed + 7))
    opt = nt.optim.Adam(probe.parameters(), lr=args.probe_lr, weight_decay=args.probe_weight_decay)
    for _ in range(args.probe_epochs):
        loss = nt.functional.cross_entropy(probe(x_train), y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with nt.no_grad():
        return float((probe(x_test).numpy().argmax(axis=1) == y_test).mean())


def plot_filters(weight: np.ndarray, path: Path) -> bool:
    """The first layer's filters as a grid of small images; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    columns = 8
    rows = -(-len(weight) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.9, rows * 0.9))
    for ax, index in zip(np.ravel(axes), range(rows * columns)):
        ax.axis("off")
        if index < len(weight):
            ax.imshow(weight[index, 0], cmap="gray", interpolation="nearest")
    fig.suptitle(f"CDBN first-layer filters ({weight.shape[2]}x{weight.shape[3]})")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return True


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=tuple(ARCHITECTURES), default="digits")
    parser.add_argument("--mnist", default=str(common.DEFAULT_MNIST), help="MNIST folder (for --data mnist)")
    parser.add_argument("--filters1", type=int, default=24, help="first-layer filters")
    parser.add_argument("--filters2", type=int, default=40, help="second-layer filters")
    parser.add_argument("--epochs", type=int, default=30, help="pre-training epochs per layer")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, nargs=2, default=[0.3, 0.03], help="CD learning rates of the two layers")
    parser.add_argument("--momentum", type=float, default=0.9, help="CD's SGD momentum")
    parser.add_argument("--sparsity", type=float, default=0.05, help="sparsity target of the hidden units")
    parser.add_argument("--sparsity-cost", type=float, default=1.0)
    parser.add_argument("--probe-epochs", type=int, default=300)
    parser.add_argument("--probe-lr", type=float, default=0.01)
    parser.add_argument("--probe-weight-decay", type=float, default=1e-3)
    common.add_run_options(parser, seed="the split, initialization and Gibbs sampling", quick="1 epoch per layer, 50 probe steps",
                           out="cdbn_digits[_quick].json", threads_help="small matrices: 1 is fastest")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.probe_epochs = 1, 50
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    images, y, train, test = load(args)
    x = images.reshape(len(images), -1)
    cdbn = build(args)
    untrained = {"all": cdbn.transform(images, layers="all"), "top": cdbn.transform(images)}
    start = time.perf_counter()
    with common.blas_threads(args.threads):
        histories = cdbn.pretrain(images[train], epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                  momentum=args.momentum)
    seconds = time.perf_counter() - start
    features = {"all": cdbn.transform(images, layers="all"), "top": cdbn.transform(images)}

    def probe(feature_rows: np.ndarray) -> float:
        return linear_probe((feature_rows[train], y[train]), (feature_rows[test], y[test]), args)

    accuracy = {"raw_pixels": probe(x), "cdbn_both_layers": probe(features["all"]),
                "cdbn_top_layer": probe(features["top"]), "untrained_both_layers": probe(untrained["all"]),
                "untrained_top_layer": probe(untrained["top"]),
                "raw_pixels_and_cdbn_both_layers": probe(np.concatenate([x, features["all"]], axis=1))}
    first = cdbn.rbms[0]
    result = {
        "config": common.config(args),
        "pretraining_seconds": round(seconds, 2),
        "reconstruction_error_per_epoch": histories,
        "feature_sizes": {"raw_pixels": x.shape[1], "cdbn_both_layers": features["all"].shape[1],
                          "cdbn_top_layer": features["top"].shape[1]},
        "mean_hidden_activation_layer1": float(first.hidden_probs(first._visible_array(images[test])).mean()),
        "test_accuracy": accuracy,
    }
    print("test accuracy of a linear classifier:",
          ", ".join(f"{name} {value:.4f}" for name, value in accuracy.items()))
    stem = "cdbn_digits" + ("_mnist" if args.data == "mnist" else "")
    out = common.write_result(result, args.out, common.result_name(stem, args.quick))
    figure = out.with_name(out.stem + "_filters.png")
    plotted = plot_filters(first.weight.numpy(), figure)
    print(f"wrote {out}" + (f" and {figure}" if plotted else " (no figure: matplotlib is not installed)"))
    return result


if __name__ == "__main__":
    main()
