"""Train the classic small MNIST CNN with nurinet (and, with --torch, the same network with PyTorch).

Data: the MNIST IDX files in a directory (default: ``../shared/datasets/mnist`` next to the
repository root). Only the 10,000 test images ("t10k") are needed: they are split once, with
``nurinet.data.train_val_test_split(..., test_fraction=0.2, generator=nurinet.Generator(seed))``,
into 8,000 training and 2,000 held-out test images (seed 0 by default), so every run and both
frameworks see the same split.

Training: ``MnistCNN`` (conv 32 - conv 64 - max-pool - dropout - fc 128 - dropout - fc 10,
1,199,882 parameters), Adam (lr 1e-3), batch 64, cross-entropy, up to 10 epochs; the test
accuracy is reported after every epoch and everything is written to a JSON file.

Usage::

    python examples/mnist_cnn.py                       # full run (10 epochs on 8,000 images)
    python examples/mnist_cnn.py --quick               # smoke test: 1 epoch on 1,000 images
    python examples/mnist_cnn.py --torch --epochs 5    # also train the PyTorch twin
    python examples/mnist_cnn.py --augment             # random rotations and shifts while training
    python examples/mnist_cnn.py /path/to/mnist --out results.json
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that the example runs from a checkout without installing nurinet

import nurinet
from examples import _common as common
from nurinet.data import DataLoader, TensorDataset
from nurinet.data.transforms import RandomAffine, TransformLoader
from nurinet.models import MnistCNN
from nurinet.training import Model
from nurinet.training.callbacks import Callback


class EpochReport(Callback):
    """Prints one line per epoch and keeps the epoch times."""

    def __init__(self, on_row: Any = None) -> None:
        super().__init__()
        self.rows: list[dict[str, float]] = []
        self.on_row = on_row

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        row = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - self.start, 2),
               "train_loss": logs.get("loss"), "train_accuracy": logs.get("accuracy"),
               "test_loss": logs.get("val_loss"), "test_accuracy": logs.get("val_accuracy")}
        self.rows.append(row)
        print(f"  [nurinet] epoch {row['epoch']}: loss {row['train_loss']:.4f}, "
              f"test accuracy {row['test_accuracy']:.4f} ({row['seconds']:.1f} s)", flush=True)
        if self.on_row is not None:
            self.on_row(self.rows)


def _summary(rows: list[dict[str, Any]], seconds: float, done: bool) -> dict[str, Any]:
    return {"epochs": rows, "total_seconds": round(seconds, 2), "complete": done,
            "final_test_accuracy": rows[-1]["test_accuracy"] if rows else None,
            "best_test_accuracy": max(r["test_accuracy"] for r in rows) if rows else None}


def train_nurinet(data: tuple, args: argparse.Namespace, progress: Any = None) -> dict[str, Any]:
    """Train with ``nurinet.training.Model``; ``progress(summary)`` is called after every epoch."""
    x_train, y_train, x_test, y_test = data
    nurinet.manual_seed(args.seed)
    model = Model(MnistCNN())
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"], lr=args.lr)
    start = time.perf_counter()
    report = EpochReport(lambda rows: progress and progress(_summary(rows, time.perf_counter() - start, False)))
    train: Any = x_train
    if args.augment:  # training batches only: the test images are never augmented
        loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True,
                            generator=nurinet.Generator(args.seed))
        train = TransformLoader(loader, RandomAffine(10, (0.1, 0.1), generator=nurinet.Generator(args.seed)))
    start = time.perf_counter()
    model.fit(train, None if args.augment else y_train, batch_size=args.batch_size, epochs=args.epochs,
              verbose=0, callbacks=[report], validation_data=(x_test, y_test),
              generator=nurinet.Generator(args.seed))
    return _summary(report.rows, time.perf_counter() - start, True)


def train_torch(data: tuple, args: argparse.Namespace, progress: Any = None) -> dict[str, Any]:
    """The same network, optimizer, batch size, split and budget in PyTorch."""
    import torch
    from torch import nn

    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in data)
    torch.manual_seed(args.seed)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    shuffle = torch.Generator().manual_seed(args.seed)
    rows, start = [], time.perf_counter()
    for epoch in range(args.epochs):
        t0, net = time.perf_counter(), net.train()
        losses = []
        for idx in torch.randperm(len(x_train), generator=shuffle).split(args.batch_size):
            loss = nn.functional.cross_entropy(net(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item() * len(idx))
        net.eval()
        with torch.no_grad():
            logits = torch.cat([net(b) for b in x_test.split(args.batch_size)])
        accuracy = (logits.argmax(1) == y_test).double().mean().item()
        rows.append({"epoch": epoch + 1, "seconds": round(time.perf_counter() - t0, 2),
                     "train_loss": sum(losses) / len(x_train), "test_accuracy": accuracy,
                     "test_loss": nn.functional.cross_entropy(logits, y_test).item()})
        print(f"  [torch]   epoch {epoch + 1}: loss {rows[-1]['train_loss']:.4f}, test accuracy {accuracy:.4f} "
              f"({rows[-1]['seconds']:.1f} s)", flush=True)
        summary = _summary(rows, time.perf_counter() - start, epoch + 1 == args.epochs)
        summary.update(torch_version=torch.__version__, torch_threads=torch.get_num_threads())
        if progress is not None:
            progress(summary)
    return summary


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", default=str(common.DEFAULT_MNIST), help="directory with the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--torch", action="store_true", help="also train the same network with PyTorch")
    parser.add_argument("--augment", action="store_true",
                        help="nurinet only: random rotations (10 degrees) and shifts (10%%) of the training images")
    common.add_run_options(parser, seed="the split, the initialization and shuffling",
                           quick="1 epoch on 1,000 training images", out="mnist_cnn.json, or mnist_cnn_quick.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    x_train, y_train, x_test, y_test = common.load_mnist_split(Path(args.data), args.seed)
    if args.quick:
        args.epochs, x_train, y_train = 1, x_train[:1000], y_train[:1000]
    print(f"MNIST CNN: {len(x_train)} training and {len(x_test)} test images, {args.epochs} epoch(s), "
          f"batch {args.batch_size}, Adam lr {args.lr}, seed {args.seed}", flush=True)
    data = (x_train, y_train, x_test, y_test)
    out = common.result_path(args.out, common.result_name("mnist_cnn", args.quick))
    result: dict[str, Any] = {
        "config": {"train_images": len(x_train), "test_images": len(x_test), "epochs": args.epochs,
                   "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "quick": args.quick,
                   "augment": args.augment, "split": common.MNIST_SPLIT},
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "processor": platform.machine()},
        "runtime": common.runtime(),
    }

    def record(name: str) -> Any:
        def save(summary: dict[str, Any]) -> None:  # after every epoch, so a stopped run keeps its epochs
            result[name] = summary
            common.write_json(result, out)
        return save

    record("nurinet")(train_nurinet(data, args, record("nurinet")))
    print(f"nurinet: test accuracy {result['nurinet']['final_test_accuracy']:.4f}, "
          f"total {result['nurinet']['total_seconds']:.1f} s", flush=True)
    if args.torch:
        try:
            record("torch")(train_torch(data, args, record("torch")))
            print(f"torch:   test accuracy {result['torch']['final_test_accuracy']:.4f}, "
                  f"total {result['torch']['total_seconds']:.1f} s", flush=True)
        except ImportError:
            print("torch is not installed: skipping the PyTorch comparison")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
