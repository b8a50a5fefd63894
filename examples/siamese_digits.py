"""Train a Siamese network on pairs of 8x8 digits: does a learned distance tell same from different?

Data: the 1,797 bundled UCI digits in [0, 1], split by image (70% train, 30% test), so no
test pair shares an image with a training pair. ``make_pairs`` draws half same-digit pairs
(label 1) and half different-digit pairs (label 0).

Model: ``SiameseNetwork`` around one MLP embedding (64 -> 64 -> ReLU -> 16), both images of
a pair through the same weights, trained with ``nn.ContrastiveLoss(margin=1)`` (same-digit
embeddings pulled together, different ones pushed at least 1 apart) and Adam.

Measures on the test pairs, with the distance as the score (small = same digit):

- ROC AUC of the learned distance, of the untrained network's distance, and of the raw pixel
  distance (the baseline a learned metric must beat);
- the accuracy at the threshold that is best on the *training* pairs (which the network fits
  closely, so that threshold comes out small), and at half the margin (the loss's own midpoint
  between "pulled to 0" and "pushed beyond the margin");
- verification of digits never seen in training: with ``--held-out-digits 8 9`` (the default)
  the digits 8 and 9 are removed from training, and test pairs of them alone (8-8 and 9-9
  against 8-9) are scored separately.

Writes ``examples/results/siamese_digits[_quick].json``, and a PNG of the test distances of
same and different pairs when matplotlib is installed.

Usage::

    python examples/siamese_digits.py            # full run (20,000 pairs, 30 epochs)
    python examples/siamese_digits.py --quick    # smoke test (seconds)
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
from nurinet.models import SiameseNetwork, make_pairs
from nurinet.training import roc_auc_score


def distances(model: SiameseNetwork, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    model.eval()
    with nt.no_grad():
        return model.distance(x1, x2).numpy()


def best_threshold(distance: np.ndarray, label: np.ndarray) -> float:
    """The distance below which a pair is called "same" that maximizes accuracy on these pairs."""
    candidates = np.unique(distance)
    accuracy = [np.mean((distance <= t) == (label == 1)) for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def train(model: SiameseNetwork, pairs: tuple[np.ndarray, ...], args: argparse.Namespace,
          verbose: bool = True) -> list[float]:
    """Contrastive training; returns the mean loss of each epoch (printed when ``verbose``)."""
    x1, x2, label = pairs
    loss_fn = nn.ContrastiveLoss(margin=args.margin)
    opt = nt.optim.Adam(model.parameters(), lr=args.lr)
    rng, curve = np.random.default_rng(args.seed), []
    for epoch in range(args.epochs):
        model.train()
        order, total = rng.permutation(len(label)), 0.0
        for start in range(0, len(order), args.batch_size):
            idx = order[start:start + args.batch_size]
            loss = loss_fn(*model(x1[idx], x2[idx]), label[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.item()) * len(idx)
        curve.append(total / len(label))
        if verbose:
            print(f"  epoch {epoch + 1}: contrastive loss {curve[-1]:.4f}", flush=True)
    return curve


def plot_distances(distance: np.ndarray, label: np.ndarray, threshold: float, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, distance.max(), 40)
    ax.hist(distance[label == 1], bins, alpha=0.6, label="same digit")
    ax.hist(distance[label == 0], bins, alpha=0.6, label="different digits")
    ax.axvline(threshold, color="k", linestyle="--", label="threshold (from training pairs)")
    ax.set_xlabel("distance between embeddings")
    ax.set_ylabel("test pairs")
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return True


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=20000, help="training pairs")
    parser.add_argument("--test-pairs", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--embedding-dim", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--margin", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--held-out-digits", type=int, nargs="*", default=[8, 9],
                        help="digits kept out of training entirely, for one-shot verification")
    common.add_run_options(parser, seed="the split, pairs, initialization and shuffling",
                           quick="2,000 pairs, 3 epochs", out="siamese_digits[_quick].json",
                           threads_help="small matrices: 1 is fastest")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.test_pairs, args.epochs = 2000, 1000, 3
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    x, y = nt.data.load_digits(normalize=True)
    g = nt.Generator(args.seed)
    order = g.np.permutation(len(x))
    cut = int(0.7 * len(x))
    train_idx, test_idx = order[:cut], order[cut:]
    unseen = np.isin(y, args.held_out_digits)
    train_idx = train_idx[~unseen[train_idx]]  # held-out digits never reach training
    train_pairs = make_pairs(x[train_idx], y[train_idx], args.pairs, generator=g)
    seen_test = test_idx[~unseen[test_idx]]
    test_pairs = make_pairs(x[seen_test], y[seen_test], args.test_pairs, generator=g)
    embedding = nn.Sequential(nn.Linear(64, args.hidden, generator=g), nn.ReLU(),
                              nn.Linear(args.hidden, args.embedding_dim, generator=g))
    model = SiameseNetwork(embedding)
    print(f"Siamese digits: {len(train_idx)} training images ({args.pairs} pairs, digits "
          f"{sorted(set(range(10)) - set(args.held_out_digits))}), {len(seen_test)} test images", flush=True)
    untrained_auc = roc_auc_score(test_pairs[2], -distances(model, *test_pairs[:2]))
    pixel_auc = roc_auc_score(test_pairs[2], -np.linalg.norm(test_pairs[0] - test_pairs[1], axis=1))
    start = time.perf_counter()
    with common.blas_threads(args.threads):
        curve = train(model, train_pairs, args)
    seconds = time.perf_counter() - start
    threshold = best_threshold(distances(model, *train_pairs[:2]), train_pairs[2])
    test_distance = distances(model, *test_pairs[:2])
    result: dict[str, Any] = {
        "config": common.config(args),
        "seconds": round(seconds, 2),
        "loss_curve": curve,
        "test_seen_digits": {
            "roc_auc": roc_auc_score(test_pairs[2], -test_distance),
            "roc_auc_untrained": untrained_auc,
            "roc_auc_pixels": pixel_auc,
            "accuracy_at_training_threshold": float(np.mean((test_distance <= threshold) == (test_pairs[2] == 1))),
            "accuracy_at_half_margin": float(np.mean((test_distance <= args.margin / 2) == (test_pairs[2] == 1))),
            "mean_distance_same": float(test_distance[test_pairs[2] == 1].mean()),
            "mean_distance_different": float(test_distance[test_pairs[2] == 0].mean()),
        },
        "threshold": threshold,
    }
    if len(set(args.held_out_digits)) >= 2:
        # Pairs of unseen digits only: same digit (8 and 8) or not (8 and 9), none met in training.
        unseen_test = test_idx[unseen[test_idx]]
        x1, x2, label = make_pairs(x[unseen_test], y[unseen_test], args.test_pairs // 2, generator=g)
        d = distances(model, x1, x2)
        result["test_unseen_digits"] = {
            "digits": args.held_out_digits,
            "roc_auc": roc_auc_score(label, -d),
            "roc_auc_pixels": roc_auc_score(label, -np.linalg.norm(x1 - x2, axis=1)),
            "accuracy_at_training_threshold": float(np.mean((d <= threshold) == (label == 1))),
            "accuracy_at_half_margin": float(np.mean((d <= args.margin / 2) == (label == 1))),
        }
    for name in ("test_seen_digits", "test_unseen_digits"):
        if name in result:
            print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in result[name].items()})
    out = common.write_result(result, args.out, common.result_name("siamese_digits", args.quick))
    plotted = plot_distances(test_distance, test_pairs[2], threshold, out.with_suffix(".png"))
    print(f"wrote {out}" + (f" and {out.with_suffix('.png')}" if plotted else ""))
    return result


if __name__ == "__main__":
    main()
