"""Anomaly detection by reconstruction error: an autoencoder trained on the digits 0-8 flags the 9s.

Note 004 says networks trained without labels find what does not fit; this measures it. An
autoencoder learns to reconstruct the "normal" data only; an input unlike it is reconstructed
worse, so the reconstruction error is an anomaly score, and the ROC AUC says how well it ranks
anomalies above normal inputs (0.5: chance, 1: every anomaly above every normal input).

Data: the 1,797 bundled UCI 8x8 digits in [0, 1]. Normal: the classes 0-8, split by image (70%
train, 30% held out). Anomalies: every 9, never seen in training.

Model: ``nurinet.models.Autoencoder([64, 32, code])`` (ReLU hidden layer, linear code, sigmoid
reconstruction), trained by ``Model.fit(x, x)`` with the mean squared error and Adam on the normal
training images alone. Score: each held-out image's mean squared reconstruction error. AUC:
``nurinet.training.roc_auc_score`` (anomaly = positive; ties count one half). For comparison the
same score from PCA with as many components as the code (a linear autoencoder's optimum), fitted
on the same images.

Writes ``examples/results/anomaly_detection_digits[_quick].json``.

Usage::

    python examples/anomaly_detection_digits.py           # full run (200 epochs, about 1.5 s)
    python examples/anomaly_detection_digits.py --quick   # smoke test
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
from nurinet.training import Model, roc_auc_score


def split(seed: int, anomaly: int = 9, train_fraction: float = 0.7) -> dict[str, np.ndarray]:
    """Normal training images, and the held-out images with their labels (1: anomaly) and digits."""
    x, y = nt.data.load_digits(normalize=True)
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y)
    normal = np.flatnonzero(y != anomaly)
    order = nt.Generator(seed).np.permutation(len(normal))
    cut = int(train_fraction * len(normal))
    train, held_out = normal[order[:cut]], normal[order[cut:]]
    test = np.concatenate([held_out, np.flatnonzero(y == anomaly)])
    return {"x_train": x[train], "x_test": x[test], "is_anomaly": (y[test] == anomaly).astype(np.int64),
            "digit": y[test]}


def reconstruction_errors(model: Model, x: np.ndarray) -> np.ndarray:
    """Each image's mean squared reconstruction error: the anomaly score."""
    return ((model.predict(x, batch_size=len(x)) - x) ** 2).mean(axis=1)


def pca_errors(x_train: np.ndarray, x: np.ndarray, components: int) -> np.ndarray:
    """The same score from PCA with ``components`` components fitted on ``x_train``."""
    mean, basis = common.pca_basis(x_train, components)
    centered = x - mean
    return ((centered - centered @ basis.T @ basis) ** 2).mean(axis=1)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--code", type=int, default=8, help="code width (and PCA components)")
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    common.add_run_options(parser, seed="the split, initialization and batch order", quick="60 epochs",
                           out="anomaly_detection_digits[_quick].json",
                           threads_help="small matrices: 1 is fastest")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 60
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    data = split(args.seed)
    x_train, x_test, is_anomaly = data["x_train"], data["x_test"], data["is_anomaly"]
    nt.manual_seed(args.seed)
    model = Model(Autoencoder([64, args.hidden, args.code], activation="relu", output_activation="sigmoid",
                              generator=nt.Generator(args.seed)))
    model.compile(optimizer="adam", loss="mse", lr=args.lr)
    start = time.perf_counter()
    with common.blas_threads(args.threads):
        history = model.fit(x_train, x_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
                            generator=nt.Generator(args.seed + 1))
        scores = reconstruction_errors(model, x_test)
    seconds = time.perf_counter() - start
    auc = roc_auc_score(is_anomaly, scores)
    pca_auc = roc_auc_score(is_anomaly, pca_errors(x_train, x_test, args.code))
    per_digit = {str(d): float(scores[data["digit"] == d].mean()) for d in range(10)}
    result = {
        "config": common.config(args),
        "train_images": len(x_train), "test_normal": int((is_anomaly == 0).sum()),
        "test_anomalies": int(is_anomaly.sum()),
        "final_training_loss": history.history["loss"][-1], "seconds": round(seconds, 2),
        "roc_auc": auc, "pca_roc_auc": pca_auc,
        "mean_error_normal": float(scores[is_anomaly == 0].mean()),
        "mean_error_anomaly": float(scores[is_anomaly == 1].mean()),
        "mean_error_by_digit": per_digit,
    }
    print(f"autoencoder ROC AUC {auc:.4f} (PCA with {args.code} components: {pca_auc:.4f}); mean error "
          f"normal {result['mean_error_normal']:.4f}, 9s {result['mean_error_anomaly']:.4f}; "
          f"{seconds:.1f} s", flush=True)
    out = common.write_result(result, args.out, common.result_name("anomaly_detection_digits", args.quick))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
