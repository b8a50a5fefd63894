"""Sparse autoencoder on the 8x8 digits: how sparse do the codes become with an activity penalty?

Data: the 1,797 bundled UCI digits in [0, 1], split by image (70% train, 30% test).

Model: ``64 -> hidden (sigmoid) -> 64 (sigmoid)``, trained by ``Model.fit`` with the mean squared
reconstruction error and Adam, three times from the same initialization and batch order:

- ``none``: no penalty;
- ``kl``: ``activity_regularizer=KLSparsity(rho, beta)`` on the encoder, the sparse autoencoder's
  ``beta * sum_j KL(rho || rho_hat_j)`` (each hidden unit's mean activation pulled to ``rho``);
- ``l1``: ``activity_regularizer=L1(l1)`` on the encoder (Keras's activity L1, over the batch size).

Measures on the test images, per run: the reconstruction error; the mean hidden activation; the
fraction of activations below 0.1 ("off"); the mean number of units above 0.5 per image; and
Hoyer's sparsity of each code, ``(sqrt(n) - |a|_1 / |a|_2) / (sqrt(n) - 1)`` (0 when every unit
is equally active, 1 when one unit alone is). The penalty's share of the training loss is the
``regularization`` log of ``Model.fit``.

Writes ``examples/results/sparse_autoencoder[_quick].json``.

Usage::

    python examples/sparse_autoencoder.py           # full run (150 epochs, seconds)
    python examples/sparse_autoencoder.py --quick   # smoke test
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
from nurinet.nn.regularizers import L1, KLSparsity, Regularizer
from nurinet.training import Model


def build(hidden: int, regularizer: Regularizer | None, seed: int) -> Model:
    """The autoencoder; the same seed gives every run the same initial weights."""
    g = nt.Generator(seed)
    encoder = nn.Linear(64, hidden, activation="sigmoid", generator=g, activity_regularizer=regularizer)
    model = Model(nn.Sequential(encoder, nn.Linear(hidden, 64, activation="sigmoid", generator=g)))
    return model


def hoyer_sparsity(codes: np.ndarray) -> np.ndarray:
    """Hoyer's measure per row: 0 for a flat code, 1 for a code with one active unit."""
    n = codes.shape[1]
    l1, l2 = np.abs(codes).sum(axis=1), np.sqrt((codes**2).sum(axis=1)) + 1e-12
    return (np.sqrt(n) - l1 / l2) / (np.sqrt(n) - 1)


def measure(model: Model, x: np.ndarray) -> dict[str, float]:
    """Reconstruction error and how sparse the hidden codes are, on ``x``."""
    with nt.no_grad():
        codes = model.network[0](x).numpy()
        recon = model.network[1](codes).numpy()
    nn.regularizers.add_activity_penalties(model)  # drop the penalty this measurement recorded
    return {
        "reconstruction_mse": float(((recon - x) ** 2).mean()),
        "mean_activation": float(codes.mean()),
        "fraction_below_0.1": float((codes < 0.1).mean()),
        "units_above_0.5_per_image": float((codes > 0.5).sum(axis=1).mean()),
        "hoyer_sparsity": float(hoyer_sparsity(codes).mean()),
        "dead_units": int((codes.max(axis=0) < 0.1).sum()),
    }


def run(name: str, regularizer: Regularizer | None, data: tuple[np.ndarray, np.ndarray],
        args: argparse.Namespace) -> dict[str, Any]:
    x_train, x_test = data
    model = build(args.hidden, regularizer, args.seed)
    model.compile(optimizer="adam", loss="mse", lr=args.lr)
    start = time.perf_counter()
    history = model.fit(x_train, x_train, batch_size=args.batch_size, epochs=args.epochs, verbose=0,
                        generator=nt.Generator(args.seed + 1))
    result = {"regularizer": repr(regularizer), "seconds": round(time.perf_counter() - start, 2),
              "final_training_loss": history.history["loss"][-1],
              "final_regularization_log": history.history.get("regularization", [None])[-1],
              "test": measure(model, x_test)}
    print(f"{name:>4}: " + ", ".join(f"{k} {v:.4g}" for k, v in result["test"].items()), flush=True)
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=64, help="hidden units (an overcomplete code by default)")
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--rho", type=float, default=0.05, help="KL target mean activation")
    parser.add_argument("--beta", type=float, default=0.05, help="KL penalty weight")
    parser.add_argument("--l1", type=float, default=1e-3, help="L1 activity coefficient")
    common.add_run_options(parser, seed="the split, initialization and batch order", quick="5 epochs",
                           out="sparse_autoencoder[_quick].json", threads_help="small matrices: 1 is fastest")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 5
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    x, _ = nt.data.load_digits(normalize=True)
    order = nt.Generator(args.seed).np.permutation(len(x))
    cut = int(0.7 * len(x))
    data = (x[order[:cut]].astype(np.float32), x[order[cut:]].astype(np.float32))
    runs = {"none": None, "kl": KLSparsity(args.rho, args.beta), "l1": L1(args.l1)}
    with common.blas_threads(args.threads):
        results = {name: run(name, regularizer, data, args) for name, regularizer in runs.items()}
    result = {"config": common.config(args), "runs": results}
    out = common.write_result(result, args.out, common.result_name("sparse_autoencoder", args.quick))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
