"""Classify MNIST digits with a recurrent network that reads each image row by row.

Each 28x28 image is a sequence of 28 steps (the rows, top to bottom) of 28 features (the
pixels of a row); ``SequenceClassifier`` (an LSTM or GRU of 128 units, a linear head on the
last step) must carry what it has seen across the rows to name the digit.

Data: the MNIST IDX files in a directory (default: ``../shared/datasets/mnist`` next to the
repository root). Only the 10,000 test images ("t10k") are needed: as in
``examples/mnist_cnn.py`` they are split once, with
``nurinet.data.train_val_test_split(..., test_fraction=0.2, generator=nurinet.Generator(seed))``,
into 8,000 training and 2,000 held-out test images (seed 0 by default).

Training: Adam (lr 2e-3), batch 64, cross-entropy, gradient norm clipped at 1; the test
accuracy is reported after every epoch and everything is written to a JSON file.

Usage::

    python examples/mnist_rows_rnn.py                   # full run: LSTM, 5 epochs on 8,000 images
    python examples/mnist_rows_rnn.py --cell gru
    python examples/mnist_rows_rnn.py --quick           # smoke test: 1 epoch on 1,000 images
    python examples/mnist_rows_rnn.py /path/to/mnist --out results.json
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
from nurinet.models import SequenceClassifier


def load_rows(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 8,000 / 2,000 split of the t10k images, as ``(N, rows, columns)`` float32 sequences."""
    x_train, y_train, x_test, y_test = common.load_mnist_split(path, seed)
    rows = x_train.shape[-2:]  # NCHW with one channel: drop the channel
    return x_train.reshape(len(x_train), *rows), y_train, x_test.reshape(len(x_test), *rows), y_test


def accuracy(model: Any, x: np.ndarray, y: np.ndarray, batch: int = 500) -> float:
    model.eval()
    with nt.no_grad():
        pred = np.concatenate([model(nt.tensor(x[i:i + batch])).numpy().argmax(1) for i in range(0, len(x), batch)])
    model.train()
    return float((pred == y).mean())


def train(data: tuple, args: argparse.Namespace) -> dict[str, Any]:
    x_train, y_train, x_test, y_test = data
    nt.manual_seed(args.seed)
    model = SequenceClassifier(args.cell, num_classes=10, input_size=x_train.shape[-1], hidden_size=args.hidden)
    opt = nt.optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    rows = []
    for epoch in range(args.epochs):
        t0, order, total = time.perf_counter(), rng.permutation(len(x_train)), 0.0
        for start in range(0, len(order), args.batch_size):
            idx = order[start:start + args.batch_size]
            loss = nt.F.cross_entropy(model(nt.tensor(x_train[idx])), nt.tensor(y_train[idx]))
            opt.zero_grad()
            loss.backward()
            nt.nn.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss.item()) * len(idx)
        rows.append({"epoch": epoch + 1, "train_loss": total / len(x_train),
                     "test_accuracy": accuracy(model, x_test, y_test),
                     "seconds": round(time.perf_counter() - t0, 2)})
        print(f"  epoch {epoch + 1}: loss {rows[-1]['train_loss']:.4f}, test accuracy "
              f"{rows[-1]['test_accuracy']:.4f} ({rows[-1]['seconds']:.1f} s)", flush=True)
    return {"epochs": rows, "final_test_accuracy": rows[-1]["test_accuracy"] if rows else None,
            "parameters": sum(p.numel() for p in model.parameters())}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", default=str(common.DEFAULT_MNIST), help="directory with the MNIST IDX files")
    parser.add_argument("--cell", choices=("lstm", "gru", "rnn"), default="lstm")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    common.add_run_options(parser, seed="the split, the initialization and shuffling",
                           quick="1 epoch on 1,000 training images", out="mnist_rows_<cell>[_quick].json")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    x_train, y_train, x_test, y_test = load_rows(Path(args.data), args.seed)
    if args.quick:
        args.epochs, x_train, y_train = 1, x_train[:1000], y_train[:1000]
    print(f"MNIST rows: {args.cell.upper()} {args.hidden} units, {len(x_train)} training and {len(x_test)} test "
          f"images as {x_train.shape[1]} steps of {x_train.shape[2]} features, {args.epochs} epoch(s)", flush=True)
    start = time.perf_counter()
    result = {"config": common.config(args, ("out", "data"))
              | {"train_images": len(x_train), "test_images": len(x_test), "split": common.MNIST_SPLIT}}
    result.update(train((x_train, y_train, x_test, y_test), args))
    result["total_seconds"] = round(time.perf_counter() - start, 2)
    print(f"test accuracy {result['final_test_accuracy']:.4f} ({result['total_seconds']:.1f} s)")
    out = common.write_result(result, args.out, common.result_name(f"mnist_rows_{args.cell}", args.quick))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
