"""Claim A: stacking linear layers without a non-linearity adds nothing; a non-linear activation is required.

Two moons (noise 0.2) is fitted by three models trained identically (Adam,
cross-entropy, full batch): one linear layer 2->2, a deep linear stack
2->32->32->32->2 with no activation, and the same stack with tanh between the
layers. After training, the deep linear stack's weight matrices are multiplied
into one matrix ``W = W4 W3 W2 W1`` (and one bias); that single layer must give
the same outputs as the stack.

Criterion (fixed in advance): the claim holds when the deep linear stack's test
accuracy is within 2 points of the single layer's (mean over seeds), the
nonlinear MLP beats the deep linear stack by at least 5 points, and the
collapsed matrix reproduces the stack's outputs to 1e-4 (relative).

Run: ``python -m examples.claims.c02_linear_stacking [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "Stacking linear layers without a non-linearity adds nothing; a non-linear activation is required."


def build(kind: str, width: int = 32) -> nn.Module:
    if kind == "single linear":
        return nn.Linear(2, 2)
    act = "tanh" if kind == "tanh MLP" else None
    return nn.Sequential(nn.Linear(2, width, activation=act), nn.Linear(width, width, activation=act),
                         nn.Linear(width, width, activation=act), nn.Linear(width, 2))


def collapse(stack: nn.Sequential) -> tuple[np.ndarray, np.ndarray]:
    """One (W, b) with x W^T + b equal to the stack of linear layers (float64)."""
    w, b = np.eye(2), np.zeros(2)
    for layer in stack:
        lw, lb = layer.weight.array.astype(np.float64), layer.bias.array.astype(np.float64)
        w, b = lw @ w, lw @ b + lb
    return w, b


def one_seed(seed: int, n: int, steps: int) -> dict:
    gen = nt.Generator(seed)
    x, y = nt.data.make_moons(2 * n, noise=0.2, generator=gen)
    xtr, ytr, xte, yte = x[:n], y[:n], x[n:], y[n:]
    out = {}
    models = {}
    for kind in ("single linear", "deep linear", "tanh MLP"):
        nt.manual_seed(seed)
        model = build(kind)
        opt = nt.optim.Adam(model.parameters(), lr=0.01)
        C.train_classifier(model, opt, xtr, ytr, epochs=steps, batch_size=n, seed=seed)
        out[kind] = C.accuracy(model, xte, yte)
        models[kind] = model
    w, b = collapse(models["deep linear"])
    stack_out = C.predict(models["deep linear"], xte).astype(np.float64)
    single_out = xte.astype(np.float64) @ w.T + b
    out["collapse_rel_error"] = float(np.abs(stack_out - single_out).max() / np.abs(stack_out).max())
    collapsed = nn.Linear(2, 2, dtype="float64")
    collapsed.weight.array[...] = w
    collapsed.bias.array[...] = b
    out["collapsed_layer_accuracy"] = C.accuracy(collapsed, xte.astype(np.float64), yte)
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=2)
    run = C.Run("c02_linear_stacking", args)
    n, steps = (200, 150) if args.quick else (500, 1500)
    rows = [one_seed(s, n, steps) for s in args.seed_list]
    kinds = ("single linear", "deep linear", "tanh MLP")
    acc = {k: C.summary([r[k] for r in rows]) for k in kinds}
    err = max(r["collapse_rel_error"] for r in rows)
    same = abs(acc["deep linear"]["mean"] - acc["single linear"]["mean"])
    gain = C.paired_effect([r["tanh MLP"] for r in rows], [r["deep linear"] for r in rows])
    held = same <= 0.02 and gain["mean_advantage"] >= 0.05 and err <= 1e-4
    grade = C.strength(gain, 0.05) if held else "none"
    evidence = (f"test accuracy single linear {acc['single linear']['mean']:.3f}, deep linear stack "
                f"{acc['deep linear']['mean']:.3f}, tanh MLP {acc['tanh MLP']['mean']:.3f} (mean of "
                f"{len(rows)} seeds); the product of the stack's 4 matrices reproduces its outputs to a "
                f"relative {err:.1e}.")
    results = {"test_accuracy": acc, "mlp_over_deep_linear": gain, "collapse_max_rel_error": err,
               "collapsed_layer_accuracy": C.summary([r["collapsed_layer_accuracy"] for r in rows]),
               "per_seed": rows}

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        for i, k in enumerate(kinds):
            vals = [r[k] for r in rows]
            ax.scatter(np.full(len(vals), i) + np.linspace(-0.1, 0.1, len(vals)), vals, s=14)
            ax.bar(i, acc[k]["mean"], 0.5, alpha=0.35)
        ax.set_xticks(range(3), ["1 linear layer", "4 linear layers\n(no activation)", "4 layers + tanh"])
        ax.set_ylabel("test accuracy, two moons")
        ax.set_ylim(0.5, 1.01)
        ax.set_title("Linear layers collapse into one")

    return run.finish({"train_samples": n, "full_batch_steps": steps, "noise": 0.2, "width": 32},
                      results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
