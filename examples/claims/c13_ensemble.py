"""Claim K: an ensemble of independently trained networks is 2-5% better than one.

For each seed (one data split), 5 MLPs (64-64-10, ReLU, dropout 0.2) are
trained on 300 digits with Adam (lr 0.002, 60 epochs, batch 32); they differ
only in initial weights and shuffling order. The ensemble averages the
members' softmax probabilities; majority voting is reported as well. When
``nurinet.training`` gains an ensemble class this script keeps its own
averaging so the measurement stays the same.

Criterion (fixed in advance): the claim holds when the averaged ensemble's test
accuracy beats the mean member's by at least 2 points (graded by seed
agreement); the result notes whether the gain lies inside 2-5 points.

Run: ``python -m examples.claims.c13_ensemble [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "An ensemble of independently trained networks is 2-5% better than one network."


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def one_seed(seed: int, members: int, n_train: int, epochs: int) -> dict:
    data = C.digits_split(seed, n_train=n_train)
    probs = []
    for m in range(members):
        member_seed = 1000 * seed + m
        nt.manual_seed(member_seed)
        model = nn.Sequential(nn.Linear(64, 64, activation="relu"), nn.Dropout(0.2), nn.Linear(64, 10))
        opt = nt.optim.Adam(model.parameters(), lr=2e-3)
        C.train_classifier(model, opt, data["x_train"], data["y_train"], epochs, 32, member_seed)
        probs.append(softmax(C.predict(model, data["x_test"])))
    y = data["y_test"]
    member_acc = [float((p.argmax(1) == y).mean()) for p in probs]
    average = float((np.mean(probs, axis=0).argmax(1) == y).mean())
    votes = np.stack([p.argmax(1) for p in probs])
    majority = np.array([np.bincount(col, minlength=10).argmax() for col in votes.T])
    return {"members": member_acc, "mean_member": float(np.mean(member_acc)), "best_member": max(member_acc),
            "ensemble_average": average, "ensemble_vote": float((majority == y).mean()),
            "growth": [float((np.mean(probs[:k], axis=0).argmax(1) == y).mean()) for k in range(1, members + 1)]}


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=2)
    run = C.Run("c13_ensemble", args)
    members, n_train, epochs = (3, 300, 8) if args.quick else (5, 300, 60)
    rows = [one_seed(s, members, n_train, epochs) for s in args.seed_list]
    keys = ("mean_member", "best_member", "ensemble_average", "ensemble_vote")
    stats = {k: C.summary([r[k] for r in rows]) for k in keys}
    effect = C.paired_effect([r["ensemble_average"] for r in rows], [r["mean_member"] for r in rows])
    grade = C.strength(effect, 0.02)
    held = grade in ("strong", "moderate")
    gain = effect["mean_advantage"]
    err_cut = 1 - (1 - stats["ensemble_average"]["mean"]) / (1 - stats["mean_member"]["mean"])
    where = "inside" if 0.02 <= gain <= 0.05 else ("above" if gain > 0.05 else "below")
    evidence = (f"{members}-member ensemble (averaged probabilities) {stats['ensemble_average']['mean']:.3f} vs mean "
                f"member {stats['mean_member']['mean']:.3f} (best member {stats['best_member']['mean']:.3f}, vote "
                f"{stats['ensemble_vote']['mean']:.3f}): +{gain * 100:.1f} points, {where} the claimed 2-5, a "
                f"{err_cut:.0%} cut in test error; ensemble ahead of the mean member in "
                f"{effect['seeds_agreeing']:.0%} of seeds.")
    results = {"stats": stats, "effect": effect, "relative_error_reduction": err_cut,
               "mean_accuracy_by_ensemble_size": np.mean([r["growth"] for r in rows], axis=0).tolist(),
               "per_seed": rows}

    def plot(fig):
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        sizes = range(1, members + 1)
        ax1.plot(sizes, results["mean_accuracy_by_ensemble_size"], marker="o")
        ax1.set_xlabel("members averaged")
        ax1.set_ylabel("test accuracy (mean over seeds)")
        ax1.set_xticks(list(sizes))
        ax2.bar(range(4), [stats[k]["mean"] for k in keys], yerr=[stats[k]["std"] for k in keys])
        ax2.set_xticks(range(4), ["mean\nmember", "best\nmember", "average", "vote"], fontsize=8)
        lo = min(stats[k]["mean"] for k in keys)
        ax2.set_ylim(lo - 0.05, min(1.0, max(stats[k]["mean"] for k in keys) + 0.03))

    return run.finish({"members": members, "train_samples": n_train, "epochs": epochs,
                       "optimizer": "Adam lr 2e-3"}, results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
