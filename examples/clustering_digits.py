"""Clustering autoencoder codes: does k-means on the codes find the ten digits without labels?

Note 004 says networks trained without labels group what is alike; here an autoencoder compresses
the digits, k-means with k = 10 groups the held-out codes, and the digit labels, never used for
training or clustering, only score the groups:

- purity: each cluster counts as its most frequent digit; purity is the fraction of images whose
  digit is their cluster's (sum over clusters of the largest digit count, over N; 1: every cluster
  holds one digit);
- adjusted Rand index (ARI; Hubert and Arabie 1985): agreement of the two partitions over all pairs
  of images, corrected for chance (0: random clusters, 1: the digits exactly), computed here from
  the contingency table (and equal to scikit-learn's ``adjusted_rand_score``).

k-means: scikit-learn's ``KMeans(n_clusters=10, n_init=10, random_state=seed)`` when scikit-learn is
installed, else ``kmeans`` below (Lloyd's iterations from k-means++ seeds, best of ``n_init`` runs by
inertia). The JSON says which ran.

Data: the 1,797 bundled UCI 8x8 digits in [0, 1], split by image (70% train, 30% held out).

Model: ``nurinet.models.Autoencoder([64, 32, 10])`` (ReLU hidden layer, linear code, sigmoid
reconstruction), trained by ``Model.fit(x, x)`` with the mean squared error and Adam on the training
images; the held-out images are encoded and clustered. Baselines: k-means on the raw pixels, and on
PCA codes of the same width (10 components fitted on the training images).

Writes ``examples/results/clustering_digits[_quick].json``.

Usage::

    python examples/clustering_digits.py           # full run (200 epochs)
    python examples/clustering_digits.py --quick   # smoke test
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
from nurinet.models import Autoencoder
from nurinet.training import Model

try:
    from sklearn.cluster import KMeans
except ImportError:  # the example falls back on kmeans() below
    KMeans = None


def contingency(clusters: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Counts of (cluster, label) pairs, ``(n_clusters, n_labels)`` over the values that occur."""
    _, c = np.unique(np.asarray(clusters), return_inverse=True)
    _, y = np.unique(np.asarray(labels), return_inverse=True)
    table = np.zeros((c.max() + 1, y.max() + 1), dtype=np.int64)
    np.add.at(table, (c, y), 1)
    return table


def purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Sum over clusters of the largest label count, over the number of items."""
    table = contingency(clusters, labels)
    return float(table.max(axis=1).sum() / table.sum())


def adjusted_rand_index(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Hubert and Arabie's adjusted Rand index of two partitions (1.0 when both are one cluster)."""
    table = contingency(clusters, labels)

    def pairs(n: np.ndarray) -> float:
        return float((n * (n - 1) // 2).sum())

    index, rows, cols = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = rows * cols / pairs(np.array([table.sum()]))
    maximum = (rows + cols) / 2
    if maximum == expected:  # both partitions trivial: identical
        return 1.0
    return (index - expected) / (maximum - expected)


def kmeans(x: np.ndarray, k: int, seed: int, n_init: int = 10, max_iter: int = 300,
           tol: float = 1e-6) -> tuple[np.ndarray, float]:
    """Lloyd's k-means from k-means++ seeds (Arthur and Vassilvitskii 2007), best of ``n_init`` runs.

    Returns ``(assignment, inertia)``: each row's cluster and the sum of squared distances to the centres.
    """
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    best: tuple[np.ndarray, float] | None = None
    for _ in range(n_init):
        centres = [x[rng.integers(len(x))]]
        d2 = ((x - centres[0]) ** 2).sum(axis=1)
        for _ in range(1, k):  # each next seed drawn with probability proportional to D(x)^2
            total = d2.sum()
            pick = rng.choice(len(x), p=d2 / total) if total > 0 else rng.integers(len(x))
            centres.append(x[pick])
            d2 = np.minimum(d2, ((x - x[pick]) ** 2).sum(axis=1))
        c = np.array(centres)
        for _ in range(max_iter):
            dist = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None, :]
            assign = dist.argmin(axis=1)
            new = np.array([x[assign == j].mean(axis=0) if np.any(assign == j) else c[j] for j in range(k)])
            shift = ((new - c) ** 2).sum()
            c = new
            if shift <= tol:
                break
        dist = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None, :]
        assign = dist.argmin(axis=1)
        inertia = float(np.maximum(dist[np.arange(len(x)), assign], 0).sum())
        if best is None or inertia < best[1]:
            best = (assign, inertia)
    assert best is not None
    return best


def cluster(x: np.ndarray, k: int, seed: int, use_sklearn: bool = True) -> np.ndarray:
    """k-means assignments of the rows of ``x``: scikit-learn's KMeans when installed (and asked for)."""
    if use_sklearn and KMeans is not None:
        return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(np.asarray(x, dtype=np.float64))
    return kmeans(x, k, seed)[0]


def scores(x: np.ndarray, labels: np.ndarray, k: int, seed: int, use_sklearn: bool) -> dict[str, float]:
    assign = cluster(x, k, seed, use_sklearn)
    return {"purity": purity(assign, labels), "adjusted_rand_index": adjusted_rand_index(assign, labels)}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", type=int, default=10, help="code width (and PCA components)")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--no-sklearn", action="store_true", help="use the script's own k-means")
    common.add_run_options(parser, seed="the split, initialization, batch order and k-means",
                           quick="60 epochs", out="clustering_digits[_quick].json",
                           threads_help="small matrices: 1 is fastest")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 60
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    data = common.digits_split(args.seed)
    x_train, x_test, y_test = data["x_train"], data["x_test"], data["y_test"]
    nt.manual_seed(args.seed)
    autoencoder = Autoencoder([64, args.hidden, args.code], activation="relu", output_activation="sigmoid",
                              generator=nt.Generator(args.seed))
    model = Model(autoencoder)
    model.compile(optimizer="adam", loss="mse", lr=args.lr)
    start = time.perf_counter()
    with common.blas_threads(args.threads):
        history = model.fit(x_train, x_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
                            generator=nt.Generator(args.seed + 1))
    seconds = time.perf_counter() - start
    autoencoder.eval()
    with nt.no_grad():
        codes = autoencoder.encode(x_test).numpy()
    use_sklearn = not args.no_sklearn
    k, seed = args.clusters, args.seed
    result: dict[str, Any] = {
        "config": common.config(args),
        "kmeans": "sklearn.cluster.KMeans(n_init=10)" if use_sklearn and KMeans is not None
        else "the script's kmeans (k-means++, best of 10)",
        "train_images": len(x_train), "test_images": len(x_test),
        "final_training_loss": history.history["loss"][-1], "seconds": round(seconds, 2),
        "autoencoder": scores(codes, y_test, k, seed, use_sklearn),
        "pixels": scores(x_test, y_test, k, seed, use_sklearn),
        "pca": scores(common.pca_codes(x_train, x_test, args.code), y_test, k, seed, use_sklearn),
    }
    for name in ("autoencoder", "pixels", "pca"):
        s = result[name]
        print(f"{name:>11}: purity {s['purity']:.4f}, ARI {s['adjusted_rand_index']:.4f}", flush=True)
    print(f"training {seconds:.1f} s ({result['kmeans']})")
    out = common.write_result(result, args.out, common.result_name("clustering_digits", args.quick))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
