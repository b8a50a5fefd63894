"""Claim X: max-norm constraints regularize more strongly than weight decay, especially with dropout.

A 64-256-256-10 ReLU MLP is trained on only 300 digits (stratified; the test
set is 30% of all the digits) with SGD (lr 0.05, momentum 0.9, batch 32) for
150 epochs. Three arms with dropout 0.5 after each hidden layer, from the same
initial weights (same seed): dropout alone, dropout + weight decay (the SGD
L2 term, ``weight_decay=1e-3``), dropout + max-norm (every hidden unit's
incoming weight vector projected back to norm <= 3 after each step,
``MaxNorm(3.0)`` through ``add_constraint`` / ``apply_constraints``). The same
three without dropout are run as the "especially with dropout" control.

Criterion (fixed in advance): the main part holds when, with dropout, the
max-norm arm's train-test accuracy gap is smaller than the weight-decay arm's
by at least 1 point (graded by ``_common.strength``) and its test accuracy is
no more than 0.5 points lower on average. The claim holds fully when in
addition max-norm's gap advantage over weight decay is larger with dropout than
without; partial when only the main part holds.

Run: ``python -m examples.claims.c24_max_norm [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn
from nurinet.nn.regularizers import MaxNorm, add_constraint, apply_constraints

CLAIM = "Max-norm constraints regularize more strongly than weight decay, especially together with dropout."
ARMS = {"dropout": (0.5, "none"), "dropout + weight decay": (0.5, "decay"), "dropout + max-norm": (0.5, "maxnorm"),
        "no dropout": (0.0, "none"), "weight decay": (0.0, "decay"), "max-norm": (0.0, "maxnorm")}
DECAY, MAX_NORM = 1e-3, 3.0


class ConstrainedStep:
    """An optimizer whose ``step`` also projects the model's constrained parameters."""

    def __init__(self, opt, model: nn.Module) -> None:
        self.opt, self.model = opt, model

    def zero_grad(self) -> None:
        self.opt.zero_grad()

    def step(self) -> None:
        self.opt.step()
        apply_constraints(self.model)


def build(p: float, reg: str, hidden: int) -> nn.Sequential:
    hidden_layers = [nn.Linear(64, hidden, activation="relu"), nn.Linear(hidden, hidden, activation="relu")]
    layers: list[nn.Module] = []
    for lin in hidden_layers:
        if reg == "maxnorm":
            add_constraint(lin, "weight", MaxNorm(MAX_NORM))
        layers.append(lin)
        if p:
            layers.append(nn.Dropout(p))
    return nn.Sequential(*layers, nn.Linear(hidden, 10))


def one_run(seed: int, p: float, reg: str, n_train: int, epochs: int, hidden: int) -> dict:
    data = C.digits_split(seed, n_train=n_train)
    nt.manual_seed(seed)
    model = build(p, reg, hidden)
    opt = nt.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=DECAY if reg == "decay" else 0.0)
    C.train_classifier(model, ConstrainedStep(opt, model), data["x_train"], data["y_train"], epochs, 32, seed)
    train = C.accuracy(model, data["x_train"], data["y_train"])
    test = C.accuracy(model, data["x_test"], data["y_test"])
    norms = [float(np.linalg.norm(nt.backend.to_numpy(model[i].weight.array), axis=1).max())
             for i in range(len(model) - 1) if isinstance(model[i], nn.Linear)]
    return {"train": train, "test": test, "gap": train - test, "max_row_norm": max(norms)}


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=2)
    run = C.Run("c24_max_norm", args)
    n_train, epochs, hidden = (300, 5, 64) if args.quick else (300, 150, 256)
    rows = {k: [one_run(s, p, r, n_train, epochs, hidden) for s in args.seed_list] for k, (p, r) in ARMS.items()}
    stats = {k: {m: C.summary([r[m] for r in rows[k]]) for m in ("train", "test", "gap", "max_row_norm")}
             for k in ARMS}

    def col(k: str, m: str) -> list[float]:
        return [r[m] for r in rows[k]]

    gap_effect = C.paired_effect(col("dropout + max-norm", "gap"), col("dropout + weight decay", "gap"), False)
    gap_effect_plain = C.paired_effect(col("max-norm", "gap"), col("weight decay", "gap"), False)
    test_change = float(np.mean(np.subtract(col("dropout + max-norm", "test"), col("dropout + weight decay", "test"))))
    grade = C.strength(gap_effect, 0.01)
    main_part = grade in ("strong", "moderate") and test_change >= -0.005
    especially = gap_effect["mean_advantage"] > gap_effect_plain["mean_advantage"]
    held = main_part and especially
    if (main_part and not especially) or (not main_part and grade in ("strong", "moderate")):
        grade = "partial"
    evidence = ("train / test / gap: " + "; ".join(
        f"{k} {stats[k]['train']['mean']:.3f} / {stats[k]['test']['mean']:.3f} / {stats[k]['gap']['mean']:.3f}"
        for k in ARMS) + f". With dropout, max-norm narrows the gap by {gap_effect['mean_advantage']:.3f} relative "
        f"to weight decay (without dropout {gap_effect_plain['mean_advantage']:.3f}); largest hidden-unit weight "
        f"norm with dropout alone {stats['dropout']['max_row_norm']['mean']:.2f} (max-norm bound {MAX_NORM}).")
    results = {"stats": stats, "gap_effect_with_dropout": gap_effect, "gap_effect_without_dropout": gap_effect_plain,
               "test_accuracy_change_maxnorm_vs_decay": test_change, "main_part_held": main_part,
               "especially_with_dropout": especially}

    def plot(fig):
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        names = list(ARMS)
        colors = ["tab:gray", "tab:blue", "tab:red"] * 2
        for ax, m, label in ((ax1, "gap", "train - test accuracy"), (ax2, "test", "test accuracy")):
            ax.bar(range(6), [stats[k][m]["mean"] for k in names], yerr=[stats[k][m]["std"] for k in names],
                   color=colors)
            ax.set_xticks(range(6), names, fontsize=6, rotation=30, ha="right")
            ax.set_ylabel(label)
        ax2.set_ylim(min(stats[k]["test"]["min"] for k in names) - 0.03, 1.0)

    config = {"train_samples": n_train, "epochs": epochs, "hidden": hidden, "dropout": 0.5,
              "optimizer": "SGD lr 0.05 momentum 0.9", "batch_size": 32, "weight_decay": DECAY, "max_norm": MAX_NORM,
              "criterion": "with dropout: gap(max-norm) smaller than gap(weight decay) by >= 0.01 (graded), test "
                           "accuracy >= -0.005; fully when the advantage is larger with dropout than without"}
    return run.finish(config, results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
