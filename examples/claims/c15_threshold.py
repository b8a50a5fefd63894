"""Claim F: lowering a logistic-regression classifier's threshold gives more false positives and fewer false negatives.

Iris versicolor (negative) vs virginica (positive), the two species that
overlap: 100 flowers, 4 standardized measurements. For each seed a stratified
half is held out and a logistic regression (``nn.Linear(4, 1)`` with a sigmoid
inside ``binary_cross_entropy_with_logits``) is fitted by Adam (lr 0.05, 300
full-batch steps). The held-out confusion counts are pooled over seeds at the
thresholds 0.9 ... 0.1 and the ROC curve is traced.

Every positive call at a higher threshold is still a positive call at a lower
one, so FP can only rise and FN only fall as the threshold drops: the direction
is guaranteed by construction. What the experiment measures is how large the
trade is for this data.

Criterion: the claim holds when, going from threshold 0.9 to 0.1, pooled FN
strictly fall and pooled FP strictly rise ("strong" when both are monotone over
the whole grid). (The first version compared 0.5 with 0.2 only; the quick run
showed FN already 0 at 0.5, which makes that comparison degenerate, so the
whole grid is used.)

Run: ``python -m examples.claims.c15_threshold [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "Lowering the decision threshold gives more false positives and fewer false negatives."
THRESHOLDS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


def one_seed(seed: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out probabilities and labels for one split."""
    x, y = nt.data.load_iris()
    keep = y > 0
    x, y = x[keep], (y[keep] == 2).astype(np.int64)
    (xtr, ytr), _, (xte, yte) = nt.data.train_val_test_split(
        x, y, val_fraction=0.0, test_fraction=0.5, stratify=True, generator=nt.Generator(seed))
    mean, std = xtr.mean(0), xtr.std(0)
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    nt.manual_seed(seed)
    model = nn.Linear(4, 1)
    opt = nt.optim.Adam(model.parameters(), lr=0.05)
    xt, yt = nt.tensor(xtr), nt.tensor(ytr.astype(np.float32)[:, None])
    for _ in range(steps):
        loss = nt.F.binary_cross_entropy_with_logits(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    prob = 1 / (1 + np.exp(-C.predict(model, xte)[:, 0].astype(np.float64)))
    return prob, yte


def counts(prob: np.ndarray, y: np.ndarray, t: float) -> dict[str, int]:
    pred = prob >= t
    return {"TP": int((pred & (y == 1)).sum()), "FP": int((pred & (y == 0)).sum()),
            "FN": int((~pred & (y == 1)).sum()), "TN": int((~pred & (y == 0)).sum())}


def roc(prob: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float], float]:
    order = np.argsort(-prob, kind="stable")
    tp = np.concatenate([[0], np.cumsum(y[order] == 1)]) / max(1, (y == 1).sum())
    fp = np.concatenate([[0], np.cumsum(y[order] == 0)]) / max(1, (y == 0).sum())
    auc = float(np.sum((fp[1:] - fp[:-1]) * (tp[1:] + tp[:-1]) / 2))
    return fp.tolist(), tp.tolist(), auc


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=10, quick_seeds=2)
    run = C.Run("c15_threshold", args)
    steps = 100 if args.quick else 300
    outs = [one_seed(s, steps) for s in args.seed_list]
    prob, y = np.concatenate([p for p, _ in outs]), np.concatenate([t for _, t in outs])
    table = {f"{t:.1f}": counts(prob, y, t) for t in THRESHOLDS}
    fp_seq = [table[f"{t:.1f}"]["FP"] for t in THRESHOLDS]
    fn_seq = [table[f"{t:.1f}"]["FN"] for t in THRESHOLDS]
    at5, at2 = table["0.5"], table["0.2"]
    held = fn_seq[-1] < fn_seq[0] and fp_seq[-1] > fp_seq[0]
    monotone = all(a <= b for a, b in pairwise(fp_seq)) and all(a >= b for a, b in pairwise(fn_seq))
    grade = ("strong" if monotone else "moderate") if held else "none"
    fpr, tpr, auc = roc(prob, y)
    aucs = [roc(p, t)[2] for p, t in outs]
    evidence = (f"pooled over {len(outs)} held-out halves ({len(y)} flowers): threshold 0.5 gives FP {at5['FP']}, "
                f"FN {at5['FN']}; 0.2 gives FP {at2['FP']}, FN {at2['FN']}; 0.9 -> 0.1: FP {fp_seq[0]} -> "
                f"{fp_seq[-1]}, FN {fn_seq[0]} -> {fn_seq[-1]}; ROC AUC {np.mean(aucs):.3f}. The direction is "
                f"guaranteed by construction; the counts give its size.")
    results = {"counts_by_threshold": table, "roc_auc": C.summary(aucs), "pooled_roc_auc": auc,
               "monotone_over_grid": monotone}
    lines = [f"threshold {k}: " + " ".join(f"{n} {v:3d}" for n, v in c.items()) for k, c in table.items()]

    def plot(fig):
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        ax1.plot(THRESHOLDS, fp_seq, marker="o", label="false positives")
        ax1.plot(THRESHOLDS, fn_seq, marker="s", label="false negatives")
        ax1.invert_xaxis()
        ax1.set_xlabel("decision threshold (lowered to the right)")
        ax1.set_ylabel("count (pooled over seeds)")
        ax1.legend(fontsize=8)
        ax2.plot(fpr, tpr)
        ax2.plot([0, 1], [0, 1], ls=":", c="grey")
        ax2.set_xlabel("false positive rate")
        ax2.set_ylabel("true positive rate")
        ax2.set_title(f"ROC, AUC {auc:.3f}", fontsize=9)

    return run.finish({"task": "iris versicolor (0) vs virginica (1)", "adam_steps": steps, "lr": 0.05,
                       "test_fraction": 0.5, "thresholds": THRESHOLDS},
                      results, C.verdict(CLAIM, held, grade, evidence), plot, lines)


if __name__ == "__main__":
    main()
