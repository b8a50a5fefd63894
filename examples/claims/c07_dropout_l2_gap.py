"""Claim E: dropout and L2 narrow the gap between training and test accuracy.

A 64-256-256-10 ReLU MLP is trained on only 150 digits (stratified; the test
set is 30% of the rest) with Adam (lr 0.001, batch 32) for 150 epochs, long
enough to fit the training data perfectly. Four variants share the seed (same
data, same initial weights): no regularization, dropout 0.5 after each hidden
layer, L2 through the optimizer's ``weight_decay`` (1e-2), and both. Training
accuracy is measured in eval mode (dropout off).

Criterion (fixed in advance): the claim holds for a regularizer when it
narrows the train-test gap by at least 2 points on average (graded by seed
agreement); overall when it holds for both dropout and L2.

Run: ``python -m examples.claims.c07_dropout_l2_gap [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "Dropout and L2 narrow the gap between training and test accuracy."
VARIANTS = {"none": (0.0, 0.0), "dropout 0.5": (0.5, 0.0), "L2 1e-2": (0.0, 1e-2), "dropout + L2": (0.5, 1e-2)}


def build(p: float, hidden: int) -> nn.Sequential:
    layers = [nn.Linear(64, hidden, activation="relu")]
    if p:
        layers.append(nn.Dropout(p))
    layers.append(nn.Linear(hidden, hidden, activation="relu"))
    if p:
        layers.append(nn.Dropout(p))
    return nn.Sequential(*layers, nn.Linear(hidden, 10))


def one_run(seed: int, p: float, decay: float, n_train: int, epochs: int, hidden: int) -> dict:
    data = C.digits_split(seed, n_train=n_train)
    nt.manual_seed(seed)
    model = build(p, hidden)
    opt = nt.optim.Adam(model.parameters(), lr=1e-3, weight_decay=decay)
    curve = []

    def record(_epoch):
        curve.append((C.accuracy(model, data["x_train"], data["y_train"]),
                      C.accuracy(model, data["x_test"], data["y_test"])))

    C.train_classifier(model, opt, data["x_train"], data["y_train"], epochs, 32, seed, on_epoch=record)
    train, test = curve[-1]
    return {"train": train, "test": test, "gap": train - test, "curve": curve}


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=2)
    run = C.Run("c07_dropout_l2_gap", args)
    n_train, epochs, hidden = (150, 20, 128) if args.quick else (150, 150, 256)
    rows = {k: [one_run(s, p, d, n_train, epochs, hidden) for s in args.seed_list] for k, (p, d) in VARIANTS.items()}
    stats = {k: {m: C.summary([r[m] for r in rows[k]]) for m in ("train", "test", "gap")} for k in VARIANTS}
    effects = {k: C.paired_effect([r["gap"] for r in rows[k]], [r["gap"] for r in rows["none"]], False)
               for k in VARIANTS if k != "none"}
    test_effects = {k: C.paired_effect([r["test"] for r in rows[k]], [r["test"] for r in rows["none"]])
                    for k in VARIANTS if k != "none"}
    grades = {k: C.strength(e, 0.02) for k, e in effects.items()}
    ok = {k: grades[k] in ("strong", "moderate") for k in ("dropout 0.5", "L2 1e-2")}
    held = all(ok.values())
    grade = min((grades[k] for k in ok), key=["none", "weak", "moderate", "strong"].index) if held else (
        "partial" if any(ok.values()) else "none")
    evidence = "; ".join(
        f"{k}: train {stats[k]['train']['mean']:.3f}, test {stats[k]['test']['mean']:.3f}, gap "
        f"{stats[k]['gap']['mean']:.3f}" for k in VARIANTS) + f" ({n_train} training digits, {epochs} epochs)."
    results = {"stats": stats, "gap_effects": effects, "test_accuracy_effects": test_effects, "grades": grades,
               "mean_curves": {k: np.mean([r["curve"] for r in rows[k]], axis=0).tolist() for k in VARIANTS}}

    def plot(fig):
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        for k in VARIANTS:
            curve = np.asarray(results["mean_curves"][k])
            line, = ax1.plot(curve[:, 1], label=f"{k} (test)")
            ax1.plot(curve[:, 0], ls="--", c=line.get_color(), lw=0.8)
        ax1.set_xlabel("epoch")
        ax1.set_ylabel("accuracy (dashed: train)")
        ax1.legend(fontsize=7)
        ax1.set_ylim(0.5, 1.01)
        names = list(VARIANTS)
        ax2.bar(range(4), [stats[k]["gap"]["mean"] for k in names], yerr=[stats[k]["gap"]["std"] for k in names])
        ax2.set_xticks(range(4), names, fontsize=7)
        ax2.set_ylabel("train - test accuracy")

    return run.finish({"train_samples": n_train, "epochs": epochs, "hidden": hidden, "optimizer": "Adam lr 1e-3",
                       "batch_size": 32}, results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
