"""Claim B: with sigmoid or tanh in many hidden layers the gradient vanishes towards the input; ReLU with He init keeps it alive.

A 15-hidden-layer MLP (width 64) on the digits is built three ways: sigmoid
and tanh with the default Linear initialization U(-1/sqrt(n), 1/sqrt(n)), and
ReLU with He (Kaiming) normal initialization. For a batch of 256 digits the
cross-entropy loss is back-propagated once at initialization and the norm of
each hidden layer's weight gradient is recorded. Each network is then trained
for a few epochs with the same optimizer (SGD, lr 0.05, momentum 0.9) to see
whether the gradient that reaches the first layers is enough to learn.

Criterion (fixed in advance): the gradient "vanishes" when the first hidden
layer's gradient norm is below 1% of the last hidden layer's; "kept alive" when
that ratio is above 10%. The claim holds when it vanishes for sigmoid and tanh
and stays alive for ReLU + He in every seed.

Run: ``python -m examples.claims.c03_vanishing_gradients [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = ("With sigmoid or tanh in many hidden layers the gradient vanishes towards the input; "
         "ReLU (with proper initialization) keeps it alive.")
KINDS = ("sigmoid", "tanh", "relu+he")


def build(kind: str, depth: int, width: int) -> nn.Sequential:
    act = kind.split("+")[0]
    layers = [nn.Linear(64 if i == 0 else width, width, activation=act) for i in range(depth)]
    if kind == "relu+he":
        for layer in layers:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers, nn.Linear(width, 10))


def gradient_norms(model: nn.Sequential, x: np.ndarray, y: np.ndarray) -> list[float]:
    loss = nt.F.cross_entropy(model(nt.tensor(x)), nt.tensor(y))
    loss.backward()
    return [float(np.linalg.norm(layer.weight.grad.array)) for layer in list(model)[:-1]]


def one_seed(kind: str, seed: int, depth: int, width: int, epochs: int) -> dict:
    data = C.digits_split(seed)
    nt.manual_seed(seed)
    model = build(kind, depth, width)
    norms = gradient_norms(model, data["x_train"][:256], data["y_train"][:256])
    opt = nt.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    C.train_classifier(model, opt, data["x_train"], data["y_train"], epochs, 64, seed)
    return {"grad_norms": norms, "first_over_last": norms[0] / norms[-1],
            "test_accuracy": C.accuracy(model, data["x_test"], data["y_test"])}


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=2)
    run = C.Run("c03_vanishing_gradients", args)
    depth, width, epochs = (15, 32, 2) if args.quick else (15, 64, 15)
    rows = {k: [one_seed(k, s, depth, width, epochs) for s in args.seed_list] for k in KINDS}
    ratio = {k: C.summary([r["first_over_last"] for r in rows[k]]) for k in KINDS}
    acc = {k: C.summary([r["test_accuracy"] for r in rows[k]]) for k in KINDS}
    profile = {k: np.mean([r["grad_norms"] for r in rows[k]], axis=0).tolist() for k in KINDS}
    vanish = {k: ratio[k]["max"] < 0.01 for k in ("sigmoid", "tanh")}
    alive = ratio["relu+he"]["min"] > 0.1
    held = all(vanish.values()) and alive
    partial = (any(vanish.values()) and alive) and not held
    grade = "strong" if held else ("partial" if partial else "none")
    evidence = (f"first/last hidden-layer gradient norm at init: sigmoid {ratio['sigmoid']['mean']:.1e}, "
                f"tanh {ratio['tanh']['mean']:.1e}, ReLU+He {ratio['relu+he']['mean']:.2f} ({depth} hidden "
                f"layers); test accuracy after {epochs} epochs: sigmoid {acc['sigmoid']['mean']:.2f}, tanh "
                f"{acc['tanh']['mean']:.2f}, ReLU+He {acc['relu+he']['mean']:.2f}.")
    results = {"first_over_last_ratio": ratio, "test_accuracy": acc, "mean_grad_norm_per_layer": profile,
               "vanishes": vanish, "relu_alive": alive}

    def plot(fig):
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        for k in KINDS:
            ax1.semilogy(range(1, depth + 1), profile[k], marker="o", ms=3, label=k)
        ax1.set_xlabel("hidden layer (1 = next to input)")
        ax1.set_ylabel("|dL/dW| at init")
        ax1.legend(fontsize=8)
        ax1.set_title(f"{depth}-layer MLP, gradient norms")
        ax2.bar(range(3), [acc[k]["mean"] for k in KINDS], yerr=[acc[k]["std"] for k in KINDS])
        ax2.set_xticks(range(3), KINDS)
        ax2.set_ylabel(f"test accuracy after {epochs} epochs")
        ax2.set_ylim(0, 1)

    return run.finish({"hidden_layers": depth, "width": width, "epochs": epochs, "optimizer": "SGD lr 0.05 m 0.9",
                       "grad_batch": 256}, results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
