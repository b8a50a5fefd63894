"""Claim S: ReLU in the hidden layers (with a softmax output) trains better than sigmoid hidden layers.

A 64-64-64-64-64-10 MLP (four hidden layers of 64) is trained on the digits
(70/30 stratified split) with the same optimizer for both arms: SGD, lr 0.05,
momentum 0.9, batch 32, 20 epochs, cross-entropy on a softmax output. Each arm
gets the initialization made for its activation: He (Kaiming normal, fan_in)
for ReLU, Xavier (Glorot normal, gain 1) for sigmoid; biases start at zero.
The same seed gives both arms the same split and batch order.

Criterion (fixed in advance): the claim holds when the ReLU network's test
accuracy after the last epoch is higher by at least 2 points on average and in
at least 2/3 of the seeds (graded by ``_common.strength``; min effect 0.02).
The test accuracy after 5 epochs is reported as well but does not decide.

Run: ``python -m examples.claims.c19_relu_hidden [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = ("Use ReLU in the hidden layers and sigmoid/softmax only at the output: a deep MLP with ReLU hidden "
         "layers trains better than one with sigmoid hidden layers.")
ARMS = ("relu", "sigmoid")


def build(act: str, depth: int, width: int) -> nn.Sequential:
    layers, n_in = [], 64
    for _ in range(depth):
        lin = nn.Linear(n_in, width)
        if act == "relu":
            nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        else:
            nn.init.xavier_normal_(lin.weight)
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU() if act == "relu" else nn.Sigmoid()]
        n_in = width
    out = nn.Linear(n_in, 10)
    nn.init.xavier_normal_(out.weight)
    nn.init.zeros_(out.bias)
    return nn.Sequential(*layers, out)


def one_run(seed: int, act: str, epochs: int, depth: int, width: int) -> dict:
    data = C.digits_split(seed)
    nt.manual_seed(seed)
    model = build(act, depth, width)
    opt = nt.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    curve = []
    losses = C.train_classifier(model, opt, data["x_train"], data["y_train"], epochs, 32, seed,
                                on_epoch=lambda _e: curve.append(C.accuracy(model, data["x_test"], data["y_test"])))
    return {"test": curve[-1], "test_at_5": curve[min(4, len(curve) - 1)], "curve": curve, "loss": losses}


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=2)
    run = C.Run("c19_relu_hidden", args)
    epochs, depth, width = (3, 4, 32) if args.quick else (20, 4, 64)
    rows = {a: [one_run(s, a, epochs, depth, width) for s in args.seed_list] for a in ARMS}
    stats = {a: {m: C.summary([r[m] for r in rows[a]]) for m in ("test", "test_at_5")} for a in ARMS}
    effect = C.paired_effect([r["test"] for r in rows["relu"]], [r["test"] for r in rows["sigmoid"]])
    early = C.paired_effect([r["test_at_5"] for r in rows["relu"]], [r["test_at_5"] for r in rows["sigmoid"]])
    evidence = (f"{depth} hidden layers of {width}, SGD+momentum, {epochs} epochs: test accuracy ReLU+He "
                f"{stats['relu']['test']['mean']:.3f} vs sigmoid+Xavier {stats['sigmoid']['test']['mean']:.3f} "
                f"(ReLU ahead in {effect['seeds_agreeing'] * effect['n']:.0f}/{effect['n']} seeds); after 5 epochs "
                f"{stats['relu']['test_at_5']['mean']:.3f} vs {stats['sigmoid']['test_at_5']['mean']:.3f}.")
    results = {"stats": stats, "effect": effect, "effect_at_5_epochs": early,
               "mean_curves": {a: np.mean([r["curve"] for r in rows[a]], axis=0).tolist() for a in ARMS},
               "mean_loss": {a: np.mean([r["loss"] for r in rows[a]], axis=0).tolist() for a in ARMS}}

    def plot(fig):
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        x = range(1, epochs + 1)
        for a in ARMS:
            ax1.plot(x, results["mean_loss"][a], label=a)
            ax2.plot(x, results["mean_curves"][a], label=a)
        ax1.set_xlabel("epoch")
        ax1.set_ylabel("training cross-entropy")
        ax1.set_yscale("log")
        ax1.legend(fontsize=7)
        ax2.set_xlabel("epoch")
        ax2.set_ylabel("test accuracy (mean over seeds)")
        ax2.legend(fontsize=7)

    config = {"hidden_layers": depth, "width": width, "epochs": epochs, "optimizer": "SGD lr 0.05 momentum 0.9",
              "batch_size": 32, "init": {"relu": "kaiming_normal", "sigmoid": "xavier_normal"},
              "criterion": "test accuracy ReLU - sigmoid >= 0.02, >= 2/3 of seeds"}
    return run.finish(config, results, C.effect_verdict(CLAIM, effect, 0.02, evidence), plot)


if __name__ == "__main__":
    main()
