"""The main job: ``python -m nurinet.demo`` (or ``nurinet demo``).

Trains a multi-layer perceptron on the handwritten digits bundled with nurinet
(1,797 images of 8x8 pixels, 10 classes) with the Keras-like ``Model.fit``,
then prints the test accuracy and the confusion matrix.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import nurinet as nt
from nurinet import nn
from nurinet.data import load_digits, train_val_test_split
from nurinet.training import Model
from nurinet.training.metrics import confusion_matrix, format_confusion_matrix


def build_mlp(hidden: int = 256, dropout: float = 0.1) -> nn.Module:
    """64 inputs -> two ReLU hidden layers (with dropout) -> 10 class scores (logits)."""
    return nn.Sequential(
        nn.Linear(64, hidden, activation="relu"),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden, activation="relu"),
        nn.Dropout(dropout),
        nn.Linear(hidden, 10),
    )


def run(epochs: int = 40, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
        verbose: int = 1) -> dict:
    """Train and evaluate; returns the test accuracy, the confusion matrix and the timing."""
    nt.manual_seed(seed)
    x, y = load_digits(normalize=True)  # Pixel intensities 0..16 scaled to [0, 1].
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = train_val_test_split(
        x, y, val_fraction=0.1, test_fraction=0.2, stratify=True, generator=nt.Generator(seed)
    )
    model = Model(build_mlp())
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"], lr=lr)
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=verbose,
              validation_data=(x_val, y_val), generator=nt.Generator(seed))
    seconds = time.perf_counter() - start
    scores = model.predict(x_test, batch_size=256)
    matrix = confusion_matrix(y_test, scores.argmax(axis=1), num_classes=10)
    accuracy = float(np.trace(matrix) / matrix.sum())
    return {"accuracy": accuracy, "confusion_matrix": matrix, "seconds": seconds,
            "train_size": len(x_train), "test_size": len(x_test)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train an MLP on the bundled 8x8 digits.")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print("nurinet demo: a 64-256-256-10 MLP on the bundled 8x8 handwritten digits")
    result = run(args.epochs, args.batch_size, args.lr, args.seed)
    print(f"trained on {result['train_size']} images in {result['seconds']:.1f} s")
    print(f"test accuracy on {result['test_size']} held-out images: {result['accuracy']:.4f}")
    print("confusion matrix (rows: true digit, columns: predicted digit):")
    print(format_confusion_matrix(result["confusion_matrix"]))


if __name__ == "__main__":
    main()
