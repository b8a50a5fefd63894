"""Claim H: a bidirectional RNN fills in a blank from both sides.

Task: sequences of T = 12 random symbols out of 4 (one-hot). At every inner
position t the label is ``max(x[t-1], x[t+1])``: the symbol "in the blank" is
fixed by the neighbours on both sides. A GRU reading left to right cannot know
x[t+1] when it emits step t (it can still guess from x[t-1], so it beats
chance); a bidirectional GRU can see both. (The first full run used
``(x[t-1] + x[t+1]) mod 4``: neither model learned it within the budget, so the
run measured nothing; the label was changed to the maximum.) Both (32 hidden
units per direction, a one-hidden-layer head at every step) are trained with Adam (lr
0.01, batch 64, fresh sequences each batch) and tested on 1,000 fresh ones.

Criterion (fixed in advance): the claim holds when the bidirectional GRU's
per-position test accuracy beats the one-directional GRU's by at least 30
points (graded by seed agreement). Chance is 25%; knowing x[t-1] alone gives
about 60%.

Run: ``python -m examples.claims.c12_bidirectional [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "A bidirectional RNN fills in a blank from both sides."
K, T = 4, 12


def sequences(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    sym = rng.integers(0, K, (n, T))
    x = np.zeros((n, T, K), np.float32)
    x[np.arange(n)[:, None], np.arange(T)[None], sym] = 1.0
    return x, np.maximum(sym[:, :-2], sym[:, 2:]).astype(np.int64)  # labels for positions 1..T-2


class Tagger(nn.Module):
    def __init__(self, bidirectional: bool, hidden: int = 32) -> None:
        super().__init__()
        self.rnn = nn.GRU(K, hidden, bidirectional=bidirectional)
        # The maximum of two symbols held in separate halves is not linear in them: the head
        # needs a hidden layer.
        self.head = nn.Sequential(nn.Linear(hidden * (2 if bidirectional else 1), 64, activation="tanh"),
                                  nn.Linear(64, K))

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, 1:-1])  # (N, T-2, K): the inner positions


def one_run(bidirectional: bool, seed: int, batches: int) -> float:
    nt.manual_seed(seed)
    model = Tagger(bidirectional)
    opt = nt.optim.Adam(model.parameters(), lr=0.01)
    rng = np.random.default_rng(seed)
    for _ in range(batches):
        x, y = sequences(rng, 64)
        logits = model(nt.tensor(x))
        loss = nt.F.cross_entropy(logits.reshape(-1, K), nt.tensor(y.reshape(-1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = sequences(np.random.default_rng(10_000 + seed), 1000)
    return float((C.predict(model, x).argmax(-1) == y).mean())


def main(argv: Sequence[str] | None = None) -> dict:
    C.require("nurinet.nn.GRU")
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=3, quick_seeds=1)
    run = C.Run("c12_bidirectional", args)
    batches = 40 if args.quick else 400
    uni = [one_run(False, s, batches) for s in args.seed_list]
    bi = [one_run(True, s, batches) for s in args.seed_list]
    effect = C.paired_effect(bi, uni)
    grade = C.strength(effect, 0.3)
    held = grade in ("strong", "moderate")
    evidence = (f"per-position test accuracy: bidirectional GRU {np.mean(bi):.3f}, left-to-right GRU "
                f"{np.mean(uni):.3f} (chance 0.25; {batches} batches of 64).")
    results = {"bidirectional": C.summary(bi), "unidirectional": C.summary(uni), "effect": effect}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        ax.bar([0, 1], [np.mean(uni), np.mean(bi)], yerr=[results["unidirectional"]["std"],
                                                          results["bidirectional"]["std"]])
        ax.axhline(0.25, ls=":", c="grey")
        ax.set_xticks([0, 1], ["GRU (left to right)", "bidirectional GRU"])
        ax.set_ylabel("test accuracy: max(x[t-1], x[t+1])")
        ax.set_ylim(0, 1.05)

    return run.finish({"symbols": K, "length": T, "batches": batches, "hidden": 32, "optimizer": "Adam lr 0.01"},
                      results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
