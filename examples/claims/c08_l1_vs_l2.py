"""Claim E: an L1 penalty drives many weights to zero while L2 only shrinks them.

A 64-64-10 ReLU MLP on the digits is trained with SGD (lr 0.05, momentum 0.9,
batch 64, 40 epochs) and a penalty on its weight matrices added to the loss:
``lam * sum|w|`` (L1) or ``lam * sum w^2`` (L2), for lam in {1e-4, 1e-3, 1e-2},
plus an unpenalized run. The penalties come from ``nurinet.nn.regularizers``
when that module is there, otherwise they are written as explicit terms.

A weight counts as zero when ``|w| < 1e-3`` (the initial weights are of order
0.1). SGD on the L1 subgradient makes weights hover around zero rather than
land on it, so the threshold matters; it was fixed before running.

Criterion (fixed in advance): among the runs whose test accuracy is within 3
points of the unpenalized run, the largest fraction of zero weights reached
with L1 exceeds the largest reached with L2 by at least 20 points, in the mean
over seeds (graded by seed agreement).

Run: ``python -m examples.claims.c08_l1_vs_l2 [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "L1 drives many weights to zero while L2 only shrinks them."
LAMBDAS = (1e-4, 1e-3, 1e-2)
ZERO = 1e-3


def penalty_fn(model: nn.Sequential, kind: str, lam: float):
    """A function returning the penalty (None for no penalty), and where it came from."""
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    if kind == "none":
        return None, "none"
    try:
        from nurinet.nn import regularizers as R

        for layer in (m for m in model if isinstance(m, nn.Linear)):
            R.add_regularizer(layer, "weight", R.L1(lam) if kind == "L1" else R.L2(lam))
        return (lambda: R.regularization_loss(model)), "nurinet.nn.regularizers"
    except (ImportError, AttributeError):
        if kind == "L1":
            return (lambda: lam * sum(nt.F.abs(w).sum() for w in weights)), "explicit term"
        return (lambda: lam * sum((w * w).sum() for w in weights)), "explicit term"


def one_run(seed: int, kind: str, lam: float, epochs: int) -> dict:
    data = C.digits_split(seed)
    nt.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 64, activation="relu"), nn.Linear(64, 10))
    penalty, source = penalty_fn(model, kind, lam)
    opt = nt.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    C.train_classifier(model, opt, data["x_train"], data["y_train"], epochs, 64, seed, penalty=penalty)
    w = np.concatenate([np.abs(m.weight.array).ravel() for m in model if isinstance(m, nn.Linear)])
    return {"test": C.accuracy(model, data["x_test"], data["y_test"]), "zero_fraction": float((w < ZERO).mean()),
            "mean_abs_weight": float(w.mean()), "source": source, "abs_weights": w}


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=2)
    run = C.Run("c08_l1_vs_l2", args)
    epochs = 4 if args.quick else 40
    configs = [("none", 0.0)] + [(k, lam) for k in ("L1", "L2") for lam in LAMBDAS]
    rows = {f"{k} {lam:g}" if lam else k: [one_run(s, k, lam, epochs) for s in args.seed_list]
            for k, lam in configs}
    stats = {name: {m: C.summary([r[m] for r in rs]) for m in ("test", "zero_fraction", "mean_abs_weight")}
             for name, rs in rows.items()}

    def best_zero(kind: str) -> list[float]:
        """Per seed: the largest zero fraction among this penalty's runs that keep accuracy."""
        out = []
        for i in range(len(args.seed_list)):
            base = rows["none"][i]["test"]
            ok = [rows[f"{kind} {lam:g}"][i] for lam in LAMBDAS]
            ok = [r["zero_fraction"] for r in ok if r["test"] >= base - 0.03]
            out.append(max(ok, default=0.0))
        return out

    l1, l2 = best_zero("L1"), best_zero("L2")
    effect = C.paired_effect(l1, l2)
    grade = C.strength(effect, 0.2)
    held = grade in ("strong", "moderate")
    evidence = (f"with test accuracy kept within 3 points of the unpenalized "
                f"{stats['none']['test']['mean']:.3f}, L1 set up to {np.mean(l1):.0%} of the weights below {ZERO:g} "
                f"and L2 {np.mean(l2):.0%} (unpenalized {stats['none']['zero_fraction']['mean']:.0%}); per lam: "
                + ", ".join(f"{n} {s['zero_fraction']['mean']:.0%} zeros/acc {s['test']['mean']:.3f}"
                            for n, s in stats.items() if n != "none") + ".")
    results = {"stats": stats, "best_zero_fraction_L1": C.summary(l1), "best_zero_fraction_L2": C.summary(l2),
               "effect": effect, "penalty_source": rows["L1 0.001"][0]["source"]}

    def plot(fig):
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        bins = np.logspace(-7, 0, 50)
        for name in ("none", "L1 0.001", "L2 0.001"):
            ax1.hist(np.clip(rows[name][0]["abs_weights"], 1e-7, None), bins=bins, histtype="step", label=name)
        ax1.axvline(ZERO, c="grey", ls=":")
        ax1.set_xscale("log")
        ax1.set_xlabel("|w| (seed 0)")
        ax1.set_ylabel("weights")
        ax1.legend(fontsize=7)
        for kind in ("L1", "L2"):
            ax2.plot([stats[f"{kind} {lam:g}"]["zero_fraction"]["mean"] for lam in LAMBDAS],
                     [stats[f"{kind} {lam:g}"]["test"]["mean"] for lam in LAMBDAS], marker="o", label=kind)
        ax2.set_xlabel(f"fraction of |w| < {ZERO:g}")
        ax2.set_ylabel("test accuracy")
        ax2.legend(fontsize=7)
        ax2.set_title("points: lam = 1e-4, 1e-3, 1e-2", fontsize=8)

    return run.finish({"epochs": epochs, "lambdas": LAMBDAS, "zero_threshold": ZERO,
                       "optimizer": "SGD lr 0.05 momentum 0.9", "batch_size": 64},
                      results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
