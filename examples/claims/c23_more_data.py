"""Claim W: more data beats a better algorithm.

Two models on the digits (70/30 stratified split): a *simple* one, multinomial
logistic regression (``nn.Linear(64, 10)``), and a *better* one, a
64-256-256-10 ReLU MLP. Both are trained with Adam (lr 0.003, batch 32) on all
1,257 training images and on the first 10% of them (126, stratified order);
every run gets the same number of updates (100 epochs on all the data, 1,000
on 10%). The same seed gives all four runs the same split.

Criterion (fixed in advance): the claim holds when the simple model on all the
data beats the better model on 10% of it by at least 2 points of test accuracy
(graded by ``_common.strength`` over seeds). The other two cells (simple on
10%, better on all) are reported to show each factor's size.

Run: ``python -m examples.claims.c23_more_data [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "More data beats a better algorithm: a simple model on all the data beats a better model on a tenth of it."


def build(kind: str, hidden: int) -> nn.Sequential:
    if kind == "simple":
        return nn.Sequential(nn.Linear(64, 10))
    return nn.Sequential(nn.Linear(64, hidden, activation="relu"), nn.Linear(hidden, hidden, activation="relu"),
                         nn.Linear(hidden, 10))


def one_run(seed: int, kind: str, fraction: float, epochs_full: int, hidden: int) -> float:
    data = C.digits_split(seed)
    n = round(fraction * len(data["x_train"]))
    nt.manual_seed(seed)
    model = build(kind, hidden)
    opt = nt.optim.Adam(model.parameters(), lr=3e-3)
    C.train_classifier(model, opt, data["x_train"][:n], data["y_train"][:n], round(epochs_full / fraction),
                       32, seed)
    return C.accuracy(model, data["x_test"], data["y_test"])


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=2)
    run = C.Run("c23_more_data", args)
    epochs, hidden = (3, 64) if args.quick else (100, 256)
    cells = {f"{kind} on {label}": (kind, frac) for kind in ("simple", "better")
             for label, frac in (("100%", 1.0), ("10%", 0.1))}
    rows = {name: [one_run(s, kind, frac, epochs, hidden) for s in args.seed_list]
            for name, (kind, frac) in cells.items()}
    stats = {name: C.summary(v) for name, v in rows.items()}
    effect = C.paired_effect(rows["simple on 100%"], rows["better on 10%"])
    evidence = (f"test accuracy: logistic regression on all {epochs}-epoch data "
                f"{stats['simple on 100%']['mean']:.3f} vs 64-{hidden}-{hidden}-10 MLP on 10% "
                f"{stats['better on 10%']['mean']:.3f} (simple ahead in "
                f"{effect['seeds_agreeing'] * effect['n']:.0f}/{effect['n']} seeds); logistic on 10% "
                f"{stats['simple on 10%']['mean']:.3f}, MLP on all {stats['better on 100%']['mean']:.3f}.")
    evidence = evidence.replace(f"all {epochs}-epoch data", "all the data")
    results = {"stats": stats, "effect_simple_all_vs_better_10pct": effect,
               "data_gain": {k: C.paired_effect(rows[f"{k} on 100%"], rows[f"{k} on 10%"]) for k in ("simple", "better")},
               "model_gain": {p: C.paired_effect(rows[f"better on {p}"], rows[f"simple on {p}"]) for p in ("100%", "10%")},
               "per_seed": rows}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        names = list(cells)
        ax.bar(range(4), [stats[k]["mean"] for k in names], yerr=[stats[k]["std"] for k in names],
               color=["tab:blue", "tab:cyan", "tab:red", "tab:pink"])
        for i, k in enumerate(names):
            ax.scatter([i] * len(rows[k]), rows[k], c="k", s=8, zorder=3)
        ax.set_xticks(range(4), names, fontsize=8)
        ax.set_ylabel("test accuracy")
        ax.set_ylim(min(stats[k]["min"] for k in names) - 0.05, 1.0)

    config = {"simple": "logistic regression", "better": f"MLP 64-{hidden}-{hidden}-10 ReLU",
              "optimizer": "Adam lr 3e-3", "batch_size": 32, "epochs_on_all": epochs,
              "epochs_on_10pct": epochs * 10, "criterion": "simple on 100% - better on 10% >= 0.02, graded"}
    return run.finish(config, results, C.effect_verdict(CLAIM, effect, 0.02, evidence), plot)


if __name__ == "__main__":
    main()
