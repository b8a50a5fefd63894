"""Claim U: too few epochs underfit; accuracy rises with the epochs until more stop helping.

A 64-64-10 ReLU MLP is trained on the digits (70/30 stratified split) with
plain SGD (lr 0.01, batch 32) for 100 epochs; training and test accuracy are
read after 1, 3, 10, 30 and 100 epochs (one run per seed, so each budget's
model is the same run stopped earlier).

Criterion (fixed in advance): the claim holds when both the training and the
test accuracy after 10 epochs exceed those after 1 epoch by at least 5 points
(graded by ``_common.strength`` over seeds; the weaker of the two grades
counts). The point where more epochs stop helping is reported: the smallest
budget whose mean test accuracy is within 0.5 points of the best budget's
(when that is the last budget, the plateau was not reached).

Run: ``python -m examples.claims.c21_too_few_epochs [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "Training for too few epochs underfits: training and test accuracy are both low and rise with more epochs."
ORDER = ["none", "weak", "moderate", "strong"]


def one_run(seed: int, budgets: list[int], hidden: int) -> dict:
    data = C.digits_split(seed)
    nt.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, hidden, activation="relu"), nn.Linear(hidden, 10))
    opt = nt.optim.SGD(model.parameters(), lr=0.01)
    at = {}

    def record(epoch: int) -> None:
        if epoch + 1 in budgets:
            at[epoch + 1] = (C.accuracy(model, data["x_train"], data["y_train"]),
                             C.accuracy(model, data["x_test"], data["y_test"]))

    C.train_classifier(model, opt, data["x_train"], data["y_train"], max(budgets), 32, seed, on_epoch=record)
    return {"train": [at[b][0] for b in budgets], "test": [at[b][1] for b in budgets]}


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=2)
    run = C.Run("c21_too_few_epochs", args)
    budgets, hidden = ([1, 3, 10], 32) if args.quick else ([1, 3, 10, 30, 100], 64)
    rows = [one_run(s, budgets, hidden) for s in args.seed_list]
    i10 = budgets.index(10)
    stats = {m: {str(b): C.summary([r[m][i] for r in rows]) for i, b in enumerate(budgets)} for m in ("train", "test")}
    effects = {m: C.paired_effect([r[m][i10] for r in rows], [r[m][0] for r in rows]) for m in ("train", "test")}
    grades = {m: C.strength(e, 0.05) for m, e in effects.items()}
    grade = min(grades.values(), key=ORDER.index)
    held = grade in ("strong", "moderate")
    if not held and max(grades.values(), key=ORDER.index) in ("strong", "moderate"):
        grade = "partial"
    test_means = [stats["test"][str(b)]["mean"] for b in budgets]
    best = max(test_means)
    plateau = next(b for b, m in zip(budgets, test_means) if m >= best - 0.005)
    evidence = ("train / test accuracy after " + ", ".join(
        f"{b} ep {stats['train'][str(b)]['mean']:.3f} / {stats['test'][str(b)]['mean']:.3f}" for b in budgets)
        + (f"; more epochs stop helping (test within 0.5 points of the best) at {plateau} epochs."
           if plateau < budgets[-1] else
           f"; test accuracy was still rising at {budgets[-1]} epochs (no plateau within the budgets)."))
    results = {"budgets": budgets, "stats": stats, "effects_10_vs_1": effects, "grades": grades,
               "plateau_epochs": plateau,
               "plateau_reached": plateau < budgets[-1], "per_seed": rows}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        for m in ("train", "test"):
            ax.errorbar(budgets, [stats[m][str(b)]["mean"] for b in budgets],
                        yerr=[stats[m][str(b)]["std"] for b in budgets], marker="o", label=m, capsize=3)
        ax.axvline(plateau, c="0.6", ls=":", label="more epochs stop helping")
        ax.set_xscale("log")
        ax.set_xlabel("epochs")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=7)

    config = {"hidden": hidden, "budgets": budgets, "optimizer": "SGD lr 0.01", "batch_size": 32,
              "criterion": "train and test accuracy at 10 epochs - at 1 epoch >= 0.05, graded, weaker grade counts"}
    return run.finish(config, results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
