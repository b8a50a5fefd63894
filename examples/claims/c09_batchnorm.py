"""Claim E: batch normalization allows faster training.

A deep MLP on the digits (6 hidden layers of 64 ReLU units) is trained with
plain SGD (lr 0.05, batch 64) for 20 epochs, with and without
``nn.BatchNorm1d`` after every hidden linear layer (same seed, same data).
Speed is measured as epochs until the test accuracy first reaches 90% (21 when
never), and as the test accuracy averaged over the first 5 epochs.

Criterion (fixed in advance): the claim holds when batch normalization reaches
90% at least 1 epoch sooner on average (graded by seed agreement).

Run: ``python -m examples.claims.c09_batchnorm [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "Batch normalization allows faster training."


def build(batchnorm: bool, depth: int = 6, width: int = 64) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(64 if i == 0 else width, width))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers, nn.Linear(width, 10))


def one_run(seed: int, batchnorm: bool, epochs: int) -> list[float]:
    data = C.digits_split(seed)
    nt.manual_seed(seed)
    model = build(batchnorm)
    opt = nt.optim.SGD(model.parameters(), lr=0.05)
    curve: list[float] = []
    C.train_classifier(model, opt, data["x_train"], data["y_train"], epochs, 64, seed,
                       on_epoch=lambda _e: curve.append(C.accuracy(model, data["x_test"], data["y_test"])))
    return curve


def epochs_to(curve: list[float], level: float) -> int:
    hits = [i + 1 for i, a in enumerate(curve) if a >= level]
    return hits[0] if hits else len(curve) + 1


def main(argv: Sequence[str] | None = None) -> dict:
    C.require("nurinet.nn.BatchNorm1d")
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=1)
    run = C.Run("c09_batchnorm", args)
    epochs = 3 if args.quick else 20
    curves = {name: [one_run(s, bn, epochs) for s in args.seed_list]
              for name, bn in (("plain", False), ("batchnorm", True))}
    reach = {k: [epochs_to(c, 0.9) for c in v] for k, v in curves.items()}
    early = {k: [float(np.mean(c[:5])) for c in v] for k, v in curves.items()}
    effect = C.paired_effect(reach["batchnorm"], reach["plain"], higher_is_better=False)
    grade = C.strength(effect, 1.0)
    held = grade in ("strong", "moderate")
    evidence = (f"epochs to 90% test accuracy: {np.mean(reach['plain']):.1f} without, {np.mean(reach['batchnorm']):.1f} "
                f"with batch norm ({epochs + 1} = never); mean accuracy over the first 5 epochs "
                f"{np.mean(early['plain']):.3f} vs {np.mean(early['batchnorm']):.3f}; final "
                f"{np.mean([c[-1] for c in curves['plain']]):.3f} vs {np.mean([c[-1] for c in curves['batchnorm']]):.3f}.")
    results = {"epochs_to_90": {k: C.summary(v) for k, v in reach.items()},
               "early_accuracy": {k: C.summary(v) for k, v in early.items()}, "effect": effect,
               "mean_curves": {k: np.mean(v, axis=0).tolist() for k, v in curves.items()}}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        for k, v in results["mean_curves"].items():
            ax.plot(range(1, epochs + 1), v, marker="o", ms=3, label=k)
        ax.axhline(0.9, ls=":", c="grey")
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (mean over seeds)")
        ax.set_title("6x64 ReLU MLP, SGD lr 0.05", fontsize=9)
        ax.legend(fontsize=8)

    return run.finish({"epochs": epochs, "hidden_layers": 6, "width": 64, "optimizer": "SGD lr 0.05",
                       "batch_size": 64}, results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
