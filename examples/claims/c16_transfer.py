"""Claim L: transfer learning (reuse a trained body, freeze it, train a new head) helps when the new task has little data.

Source task: digits 0-4 (all their training images). A 64-128-64-5 ReLU MLP is
trained on it (Adam lr 0.002, 30 epochs). Target task: digits 5-9 with only
10 training images per class; the test set is the held-out 5-9 images.

Three models are trained on the target with the same budget (Adam lr 0.002,
100 epochs, batch 16): from scratch (same architecture, fresh weights); the
source body frozen with ``nurinet.training.transfer.freeze`` and a new head
(``replace_head``); and the source body fine-tuned together with a new head.

Criterion (fixed in advance): the claim holds when the frozen-body transfer
beats training from scratch by at least 3 points of test accuracy (graded by
seed agreement).

Run: ``python -m examples.claims.c16_transfer [--quick] [--seeds N]``
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "Transfer learning (reuse a trained body, freeze it, train a new head) helps a task with little data."


def network() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 128, activation="relu"), nn.Linear(128, 64, activation="relu"),
                         nn.Linear(64, 5))


def target_subset(x: np.ndarray, y: np.ndarray, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in range(5, 10)])
    return x[keep], y[keep] - 5


def one_seed(seed: int, source_epochs: int, target_epochs: int, per_class: int) -> dict:
    from nurinet.training.transfer import freeze, replace_head

    data = C.digits_split(seed)
    src = data["y_train"] < 5
    nt.manual_seed(seed)
    source = network()
    opt = nt.optim.Adam(source.parameters(), lr=2e-3)
    C.train_classifier(source, opt, data["x_train"][src], data["y_train"][src], source_epochs, 32, seed)
    xtr, ytr = target_subset(data["x_train"], data["y_train"], per_class)
    test = data["y_test"] >= 5
    xte, yte = data["x_test"][test], data["y_test"][test] - 5
    out = {"source_accuracy": C.accuracy(source, data["x_test"][~test], data["y_test"][~test])}
    for kind in ("scratch", "frozen body", "fine-tuned"):
        nt.manual_seed(seed + 1)
        if kind == "scratch":
            model = network()
        else:
            model = copy.deepcopy(source)
            replace_head(model, nn.Linear(64, 5))
            if kind == "frozen body":
                freeze(model[:-1])
        opt = nt.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
        C.train_classifier(model, opt, xtr, ytr, target_epochs, 16, seed)
        out[kind] = C.accuracy(model, xte, yte)
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    C.require("nurinet.training.transfer.freeze", "nurinet.training.transfer.replace_head")
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=1)
    run = C.Run("c16_transfer", args)
    source_epochs, target_epochs, per_class = (3, 10, 10) if args.quick else (30, 100, 10)
    rows = [one_seed(s, source_epochs, target_epochs, per_class) for s in args.seed_list]
    kinds = ("scratch", "frozen body", "fine-tuned")
    stats = {k: C.summary([r[k] for r in rows]) for k in (*kinds, "source_accuracy")}
    effect = C.paired_effect([r["frozen body"] for r in rows], [r["scratch"] for r in rows])
    grade = C.strength(effect, 0.03)
    held = grade in ("strong", "moderate")
    evidence = (f"digits 5-9 from {per_class} images per class: from scratch {stats['scratch']['mean']:.3f}, frozen "
                f"0-4 body + new head {stats['frozen body']['mean']:.3f}, fine-tuned {stats['fine-tuned']['mean']:.3f} "
                f"test accuracy (source model: {stats['source_accuracy']['mean']:.3f} on digits 0-4).")
    results = {"test_accuracy": stats, "frozen_vs_scratch": effect, "per_seed": rows}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        ax.bar(range(3), [stats[k]["mean"] for k in kinds], yerr=[stats[k]["std"] for k in kinds])
        ax.set_xticks(range(3), ["from scratch", "frozen body\n+ new head", "fine-tuned\n+ new head"])
        ax.set_ylabel(f"test accuracy, digits 5-9 ({per_class}/class)")
        ax.set_ylim(0.5, 1.0)

    return run.finish({"source_epochs": source_epochs, "target_epochs": target_epochs, "per_class": per_class,
                       "optimizer": "Adam lr 2e-3"}, results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
