"""Claim A: a perceptron learns AND, OR and NAND but never XOR; one hidden layer (an MLP) learns XOR.

For each seed the perceptron starts from random weights and applies
Rosenblatt's rule (``nn.Perceptron.fit``) for up to 100 epochs on each gate's
truth table. Then a 2-4-1 tanh MLP trained by back-propagation (Adam,
binary cross-entropy) and, as a control, a single linear unit trained the same
way are fitted to XOR.

Criterion (fixed in advance): the claim holds when the perceptron converges on
AND, OR and NAND for every seed, converges on XOR for none, and the MLP
classifies all four XOR rows correctly for at least 80% of the seeds.

Run: ``python -m examples.claims.c01_perceptron_xor [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

GATES = ("AND", "OR", "NAND", "XOR")
CLAIM = "A perceptron learns AND, OR and NAND but never XOR; one hidden layer (MLP) learns XOR."


def perceptron_run(gate: str, seed: int, epochs: int) -> dict:
    x, y = nt.data.load_logic_gate(gate)
    model = nn.Perceptron(2, threshold=0.5, lr=0.1)
    rng = np.random.default_rng(seed)
    model.weight.array[...] = rng.uniform(-1, 1, 2)
    model.bias.array[...] = rng.uniform(-1, 1)
    fit = model.fit(x, y, epochs=epochs)
    return {"converged": fit.converged, "epochs": fit.epochs,
            "accuracy": float((model.predict(x) == y).mean()), "final_errors": fit.errors[-1]}


def gradient_fit(hidden: int | None, seed: int, steps: int) -> dict:
    """Fit XOR with BCE by Adam: a 2-hidden-1 tanh MLP, or one linear unit when hidden is None."""
    nt.manual_seed(seed)
    x, y = nt.data.load_logic_gate("XOR")
    if hidden is None:
        model = nn.Linear(2, 1)
    else:
        model = nn.Sequential(nn.Linear(2, hidden, activation="tanh"), nn.Linear(hidden, 1))
    opt = nt.optim.Adam(model.parameters(), lr=0.05)
    xt, yt = nt.tensor(x), nt.tensor(y.astype(np.float32)[:, None])
    for _ in range(steps):
        loss = nt.F.binary_cross_entropy_with_logits(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    pred = (C.predict(model, x)[:, 0] > 0).astype(np.int64)
    return {"accuracy": float((pred == y).mean()), "final_loss": loss.item()}


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=20, quick_seeds=3)
    run = C.Run("c01_perceptron_xor", args)
    epochs, steps = (30, 300) if args.quick else (100, 1000)
    perceptron = {g: [perceptron_run(g, s, epochs) for s in args.seed_list] for g in GATES}
    mlp = [gradient_fit(4, s, steps) for s in args.seed_list]
    linear = [gradient_fit(None, s, steps) for s in args.seed_list]

    conv = {g: float(np.mean([r["converged"] for r in perceptron[g]])) for g in GATES}
    acc = {g: C.summary([r["accuracy"] for r in perceptron[g]]) for g in GATES}
    mlp_solved = float(np.mean([r["accuracy"] == 1.0 for r in mlp]))
    linear_best = max(r["accuracy"] for r in linear)
    held = all(conv[g] == 1.0 for g in ("AND", "OR", "NAND")) and conv["XOR"] == 0.0 and mlp_solved >= 0.8
    grade = "strong" if held and mlp_solved == 1.0 else ("moderate" if held else "none")
    evidence = (f"perceptron converged on AND/OR/NAND in {conv['AND']:.0%}/{conv['OR']:.0%}/{conv['NAND']:.0%} "
                f"of seeds and on XOR in {conv['XOR']:.0%} (best XOR accuracy {acc['XOR']['max']:.2f}); "
                f"the 2-4-1 MLP solved XOR in {mlp_solved:.0%} of seeds; a single linear unit trained by "
                f"gradient reached at most {linear_best:.2f} on XOR.")
    results = {"perceptron_converged_fraction": conv, "perceptron_accuracy": acc,
               "perceptron_epochs": {g: C.summary([r["epochs"] for r in perceptron[g]]) for g in GATES},
               "mlp_xor_solved_fraction": mlp_solved,
               "mlp_xor_accuracy": C.summary([r["accuracy"] for r in mlp]),
               "linear_xor_accuracy": C.summary([r["accuracy"] for r in linear])}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        pos = np.arange(len(GATES))
        ax.bar(pos - 0.2, [acc[g]["mean"] for g in GATES], 0.4, label="perceptron (rule)")
        ax.bar(3.2, results["mlp_xor_accuracy"]["mean"], 0.4, label="2-4-1 MLP (backprop)")
        ax.axhline(0.75, ls=":", c="grey", lw=1)
        ax.set_xticks(pos, GATES)
        ax.set_ylabel("training accuracy (mean over seeds)")
        ax.set_ylim(0, 1.05)
        ax.legend(loc="lower left", fontsize=8)
        ax.set_title("Perceptron vs MLP on logic gates")

    return run.finish({"perceptron_epochs": epochs, "adam_steps": steps, "threshold": 0.5},
                      results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
