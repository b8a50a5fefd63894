"""Claim C: with a sigmoid output, cross-entropy learns faster than MSE.

Part A (one neuron): a sigmoid neuron with input 1 and target 0 starts
saturated and wrong (w, b near 2, output about 0.98). Plain gradient descent
(lr 0.15) runs on the binary cross-entropy and on the squared error; we count
the steps until the output falls below 0.2. The neuron's start is jittered per
seed.

Part B (a network): a 64-30-1 network with sigmoid hidden units and a sigmoid
output learns "even vs odd digit" on the 8x8 digits with the same SGD (lr 0.5,
batch 32) under each loss. Learning speed is the test accuracy averaged over
the first epochs (area under the accuracy curve), paired by seed.

Criterion (fixed in advance): the claim holds when cross-entropy needs fewer
steps in part A for every seed and its mean early accuracy in part B is higher
by at least 2 points (graded by seed agreement).

Run: ``python -m examples.claims.c04_ce_vs_mse [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "With a sigmoid output, cross-entropy learns faster than MSE."
F = nt.F


def neuron_steps(loss_name: str, seed: int, max_steps: int) -> tuple[int, list[float]]:
    rng = np.random.default_rng(seed)
    w = nt.tensor(2.0 + rng.uniform(-0.2, 0.2), requires_grad=True)
    b = nt.tensor(2.0 + rng.uniform(-0.2, 0.2), requires_grad=True)
    opt = nt.optim.SGD([w, b], lr=0.15)
    target = nt.tensor(0.0)
    outputs = []
    for step in range(max_steps):
        a = F.sigmoid(w * 1.0 + b)
        outputs.append(a.item())
        if a.item() < 0.2:
            return step, outputs
        loss = F.binary_cross_entropy(a, target) if loss_name == "cross-entropy" else 0.5 * (a - target) ** 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    return max_steps, outputs


def network_curve(loss_name: str, seed: int, epochs: int) -> list[float]:
    data = C.digits_split(seed)
    ytr = (data["y_train"] % 2).astype(np.float32)[:, None]
    yte = data["y_test"] % 2
    nt.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 30, activation="sigmoid"), nn.Linear(30, 1))
    opt = nt.optim.SGD(model.parameters(), lr=0.5)

    def loss_fn(logits, y):
        if loss_name == "cross-entropy":
            return F.binary_cross_entropy_with_logits(logits, y)
        return F.mse_loss(F.sigmoid(logits), y)

    curve = []

    def record(_epoch):
        curve.append(float(((C.predict(model, data["x_test"])[:, 0] > 0) == yte).mean()))

    C.train_classifier(model, opt, data["x_train"], ytr, epochs, 32, seed, loss_fn=loss_fn, on_epoch=record)
    return curve


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=2)
    run = C.Run("c04_ce_vs_mse", args)
    losses = ("cross-entropy", "mse")
    max_steps, epochs = (400, 4) if args.quick else (2000, 30)
    neuron = {k: [neuron_steps(k, s, max_steps) for s in args.seed_list] for k in losses}
    steps = {k: [r[0] for r in neuron[k]] for k in losses}
    curves = {k: [network_curve(k, s, epochs) for s in args.seed_list] for k in losses}
    early = max(1, epochs // 3)
    auc = {k: [float(np.mean(c[:early])) for c in curves[k]] for k in losses}
    final = {k: C.summary([c[-1] for c in curves[k]]) for k in losses}
    neuron_held = all(a < b for a, b in zip(steps["cross-entropy"], steps["mse"]))
    effect = C.paired_effect(auc["cross-entropy"], auc["mse"])
    grade = C.strength(effect, 0.02)
    held = neuron_held and grade in ("strong", "moderate")
    if not held and (neuron_held or grade in ("strong", "moderate")):
        grade = "partial"
    evidence = (f"saturated neuron: cross-entropy needed {np.mean(steps['cross-entropy']):.0f} steps to bring the "
                f"output below 0.2, MSE {np.mean(steps['mse']):.0f} (cap {max_steps}); digits even/odd network: "
                f"mean test accuracy over the first {early} epochs {np.mean(auc['cross-entropy']):.3f} (CE) vs "
                f"{np.mean(auc['mse']):.3f} (MSE), CE ahead in {effect['seeds_agreeing']:.0%} of seeds; after "
                f"{epochs} epochs {final['cross-entropy']['mean']:.3f} vs {final['mse']['mean']:.3f}.")
    results = {"neuron_steps": {k: C.summary(steps[k]) for k in losses},
               "network_early_accuracy": {k: C.summary(auc[k]) for k in losses},
               "network_final_accuracy": final, "network_effect": effect,
               "network_mean_curve": {k: np.mean(curves[k], axis=0).tolist() for k in losses}}

    def plot(fig):
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        for k in losses:
            ax1.plot(neuron[k][0][1], label=k)
            ax2.plot(range(1, epochs + 1), results["network_mean_curve"][k], marker="o", ms=3, label=k)
        ax1.set_xlabel("gradient step")
        ax1.set_ylabel("neuron output (target 0)")
        ax1.set_title("saturated sigmoid neuron")
        ax1.legend(fontsize=8)
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("test accuracy (even/odd)")
        ax2.set_title("64-30-1 sigmoid network, SGD")
        ax2.legend(fontsize=8)

    return run.finish({"neuron_lr": 0.15, "neuron_max_steps": max_steps, "network_lr": 0.5,
                       "network_epochs": epochs, "early_epochs": early, "batch_size": 32},
                      results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
