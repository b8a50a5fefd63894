"""Similarity search with Siamese embeddings: do a digit's nearest neighbours show the same digit?

Note 004 says networks trained without labels on the test data find what is alike; here a Siamese
network learns a distance from same/different pairs of training digits, and the held-out digits are
searched by it. Each held-out image is a query; the other held-out images are ranked by their
Euclidean distance to it (the query itself left out), and the ranking is scored by:

- recall@k (the "hit rate" definition used in image retrieval): the fraction of queries whose k
  nearest neighbours include at least one image of the query's digit;
- precision@k: the mean, over queries, of the fraction of the k nearest neighbours that show the
  query's digit.

Ties in distance are broken by the image's position (a stable sort), so the scores are reproducible.

Data: the 1,797 bundled UCI 8x8 digits in [0, 1], split by image (70% train, 30% held out).
``make_pairs`` draws half same-digit, half different-digit pairs of training images.

Model: ``SiameseNetwork`` around one MLP embedding (64 -> 64 -> ReLU -> 16), trained with
``nn.ContrastiveLoss(margin=1)`` and Adam, as in ``examples/siamese_digits.py``. Baselines: the same
search on the raw pixels, and on PCA with 16 components (as many as the embedding) fitted on the
training images.

Writes ``examples/results/similarity_search_digits[_quick].json``.

Usage::

    python examples/similarity_search_digits.py           # full run (10,000 pairs, 20 epochs)
    python examples/similarity_search_digits.py --quick   # smoke test
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
from examples.siamese_digits import train
from nurinet import nn
from nurinet.models import SiameseNetwork, make_pairs

KS = (1, 5, 10)


def neighbours(features: np.ndarray, k: int) -> np.ndarray:
    """The indices of each row's ``k`` nearest other rows by Euclidean distance, ``(N, k)``, nearest first
    (the row itself excluded; ties broken by index)."""
    f = np.asarray(features, dtype=np.float64)
    squared = (f * f).sum(axis=1)
    d2 = np.maximum(squared[:, None] + squared[None, :] - 2.0 * f @ f.T, 0.0)
    np.fill_diagonal(d2, np.inf)
    return np.argsort(d2, axis=1, kind="stable")[:, :k]


def retrieval_scores(features: np.ndarray, labels: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """recall@k (fraction of queries with at least one same-label item among their k nearest) and
    precision@k (mean fraction of the k nearest with the query's label) for each k, every row a query."""
    labels = np.asarray(labels)
    if len(labels) != len(features):
        raise ValueError(f"retrieval_scores: {len(features)} feature rows but {len(labels)} labels")
    if max(ks) >= len(labels):
        raise ValueError(f"retrieval_scores: k = {max(ks)} needs more than {len(labels)} items")
    same = labels[neighbours(features, max(ks))] == labels[:, None]
    scores = {}
    for k in ks:
        scores[f"recall@{k}"] = float(same[:, :k].any(axis=1).mean())
        scores[f"precision@{k}"] = float(same[:, :k].mean())
    return scores


def embed(model: SiameseNetwork, x: np.ndarray) -> np.ndarray:
    model.eval()
    with nt.no_grad():
        return model.embed(x).numpy()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=10000, help="training pairs")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--embedding-dim", type=int, default=16, help="embedding width (and PCA components)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--margin", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    common.add_run_options(parser, seed="the split, pairs, initialization and shuffling",
                           quick="3,000 pairs, 5 epochs", out="similarity_search_digits[_quick].json",
                           threads_help="small matrices: 1 is fastest")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.epochs = 3000, 5
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    data = common.digits_split(args.seed)
    x_train, y_train, x_test, y_test = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    g = nt.Generator(args.seed)
    pairs = make_pairs(x_train, y_train, args.pairs, generator=g)
    embedding = nn.Sequential(nn.Linear(64, args.hidden, generator=g), nn.ReLU(),
                              nn.Linear(args.hidden, args.embedding_dim, generator=g))
    model = SiameseNetwork(embedding)
    untrained = retrieval_scores(embed(model, x_test), y_test)
    start = time.perf_counter()
    with common.blas_threads(args.threads):
        curve = train(model, pairs, args, verbose=False)
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {
        "config": common.config(args),
        "train_images": len(x_train), "test_images": len(x_test),
        "recall_definition": "fraction of queries with at least one same-digit image among the k nearest",
        "precision_definition": "mean fraction of the k nearest images that show the query's digit",
        "seconds": round(seconds, 2), "final_contrastive_loss": curve[-1],
        "siamese": retrieval_scores(embed(model, x_test), y_test),
        "pixels": retrieval_scores(x_test, y_test),
        "pca": retrieval_scores(common.pca_codes(x_train, x_test, args.embedding_dim), y_test),
        "untrained_siamese": untrained,
    }
    for name in ("siamese", "pixels", "pca", "untrained_siamese"):
        s = result[name]
        print(f"{name:>17}: " + ", ".join(f"R@{k} {s[f'recall@{k}']:.4f} P@{k} {s[f'precision@{k}']:.4f}"
                                           for k in KS), flush=True)
    print(f"training {seconds:.1f} s")
    out = common.write_result(result, args.out, common.result_name("similarity_search_digits", args.quick))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
