"""Claim D: momentum helps escape plateaus and poor local minima.

Three tests, each with plain SGD and SGD with momentum 0.9 at the same
learning rate, driven by nurinet's ``optim.SGD`` on nurinet tensors:

1. Shallow local minimum: ``f(x) = x^4 - 4x^2 + x`` has a poor local minimum at
   x = 1.35 (f = -2.6) and the global one at x = -1.47 (f = -5.4). Starts are
   drawn uniformly in [1, 3] (right of the poor minimum); lr 0.01, 1000 steps.
   We count the starts that end in the global minimum.
2. Plateau: ``f(x) = 1 - 1 / (1 + x^2)`` is almost flat far from 0. From x0 in
   [4, 6], lr 0.1, we count the steps until |x| < 0.5 (cap 5000).
3. A small network: a 64-32-32-10 sigmoid MLP on the digits (it sits on a
   plateau at first), lr 0.1, batch 32; epochs until 80% test accuracy. (The
   first full run used three hidden layers: no variant left the plateau within
   40 epochs, so that test measured nothing; it now uses two.)

As a control, plain SGD with the learning rate momentum effectively reaches,
lr / (1 - 0.9), is also run: it tells whether "momentum" helped or only a
larger step.

Criterion (fixed in advance): the claim holds when momentum wins all three
tests against plain SGD at the same learning rate: at least 20 points more
starts reach the global minimum, fewer steps across the plateau and fewer
epochs to 80% (graded by seed agreement).

Run: ``python -m examples.claims.c05_momentum [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "Momentum helps escape plateaus and poor local minima."
VARIANTS = {"sgd": (1.0, 0.0), "momentum 0.9": (1.0, 0.9), "sgd, lr x10 (control)": (10.0, 0.0)}


def descend(f, x0: float, lr: float, momentum: float, steps: int, stop=None) -> tuple[float, int]:
    """Minimize a 1-D function of a nurinet tensor with optim.SGD; returns (x, steps used)."""
    # Shape (1,), not 0-d: 0-d gradients come back as NumPy scalars, which the optimizer's
    # in-place momentum buffer cannot hold (reported as a bug).
    x = nt.tensor(np.array([x0], np.float64), requires_grad=True)
    opt = nt.optim.SGD([x], lr=lr, momentum=momentum)
    for step in range(steps):
        if stop is not None and stop(x.item()):
            return x.item(), step
        loss = f(x).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if not np.isfinite(x.item()) or abs(x.item()) > 1e6:
            return float("nan"), steps
    return x.item(), steps


def double_well(x):
    return x ** 4 - 4 * x ** 2 + x


def plateau(x):
    return 1 - 1 / (1 + x ** 2)


def network_epochs(seed: int, lr: float, momentum: float, max_epochs: int) -> int:
    data = C.digits_split(seed)
    nt.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 32, activation="sigmoid"), nn.Linear(32, 32, activation="sigmoid"),
                          nn.Linear(32, 10))
    opt = nt.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    rng = np.random.default_rng(seed)
    xt, yt = nt.tensor(data["x_train"]), nt.tensor(data["y_train"])
    for epoch in range(max_epochs):
        for idx in C.batches(len(xt), 32, rng):
            loss = nt.F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if C.accuracy(model, data["x_test"], data["y_test"]) >= 0.8:
            return epoch + 1
    return max_epochs + 1  # did not reach 80%: counted as one more than the cap


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=2)
    run = C.Run("c05_momentum", args)
    starts, max_epochs = (4, 2) if args.quick else (20, 40)
    plateau_cap, well_steps = (300, 300) if args.quick else (5000, 1000)
    res: dict = {"global_min_fraction": {}, "plateau_steps": {}, "network_epochs_to_80": {}}
    per_seed: dict = {k: {} for k in res}
    for name, (scale, mom) in VARIANTS.items():
        gmin, psteps, nepochs = [], [], []
        for seed in args.seed_list:
            rng = np.random.default_rng(seed)
            ends = [descend(double_well, x0, 0.01 * scale, mom, well_steps)[0] for x0 in rng.uniform(1, 3, starts)]
            gmin.append(float(np.mean([e < 0 for e in ends])))
            psteps.append(descend(plateau, rng.uniform(4, 6), 0.1 * scale, mom, plateau_cap,
                                  stop=lambda v: abs(v) < 0.5)[1])
            nepochs.append(network_epochs(seed, 0.1 * scale, mom, max_epochs))
        for key, vals in zip(res, (gmin, psteps, nepochs)):
            per_seed[key][name] = vals
            res[key][name] = C.summary(vals)
    mom, sgd, ctl = "momentum 0.9", "sgd", "sgd, lr x10 (control)"
    effects = {
        "local_minimum": C.paired_effect(per_seed["global_min_fraction"][mom], per_seed["global_min_fraction"][sgd]),
        "plateau": C.paired_effect(per_seed["plateau_steps"][mom], per_seed["plateau_steps"][sgd], False),
        "network": C.paired_effect(per_seed["network_epochs_to_80"][mom], per_seed["network_epochs_to_80"][sgd],
                                   False),
    }
    grades = {"local_minimum": C.strength(effects["local_minimum"], 0.2),
              "plateau": C.strength(effects["plateau"], 1.0),
              "network": C.strength(effects["network"], 1.0)}
    won = [g in ("strong", "moderate") for g in grades.values()]
    held = all(won)
    grade = min(grades.values(), key=["none", "weak", "moderate", "strong"].index) if held else (
        "partial" if any(won) else "none")
    r = res
    evidence = (f"global minimum reached from {r['global_min_fraction'][sgd]['mean']:.0%} of starts with SGD vs "
                f"{r['global_min_fraction'][mom]['mean']:.0%} with momentum ({r['global_min_fraction'][ctl]['mean']:.0%} "
                f"for the lr x10 control); plateau crossed in {r['plateau_steps'][sgd]['mean']:.0f} vs "
                f"{r['plateau_steps'][mom]['mean']:.0f} steps (control {r['plateau_steps'][ctl]['mean']:.0f}); "
                f"sigmoid MLP reached 80% in {r['network_epochs_to_80'][sgd]['mean']:.1f} vs "
                f"{r['network_epochs_to_80'][mom]['mean']:.1f} epochs (control "
                f"{r['network_epochs_to_80'][ctl]['mean']:.1f}; {max_epochs + 1} = never).")
    results = {**res, "effects": effects, "grades": grades, "per_seed": per_seed}

    def plot(fig):
        axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
        titles = ("starts reaching global min", "steps across plateau", "epochs to 80% (MLP)")
        names = list(VARIANTS)
        for ax, key, title in zip(axes, res, titles):
            ax.bar(range(3), [res[key][n]["mean"] for n in names], yerr=[res[key][n]["std"] for n in names],
                   color=["tab:blue", "tab:orange", "tab:grey"])
            ax.set_xticks(range(3), ["SGD", "mom.", "SGD\nlr x10"], fontsize=8)
            ax.set_title(title, fontsize=9)

    return run.finish({"starts_per_seed": starts, "double_well_steps": well_steps, "double_well_lr": 0.01, "plateau_lr": 0.1,
                       "plateau_cap": plateau_cap, "network_lr": 0.1, "network_max_epochs": max_epochs},
                      results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
