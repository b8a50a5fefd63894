"""Claim G: convolution needs far fewer weights than fully connected layers on images.

Two measurements on the 8x8 digits (as 1x8x8 images):

1. Structure: a 3x3 convolution from 1 to 16 channels with padding 1 maps an
   8x8 image to 16 maps of 8x8 (1,024 numbers) with 160 weights; a ``Linear``
   layer producing the same 1,024 numbers from the 64 pixels needs 66,560.
2. Learning: a small CNN (conv 1->8, pool, conv 8->16, pool, linear; 1,898
   weights) and one-hidden-layer ReLU MLPs of widths 8 to 256 (610 to 19,210
   weights) are trained the same way (Adam lr 0.003, batch 64, 30 epochs).
   We find the smallest MLP whose mean test accuracy reaches the CNN's.

Criterion (fixed in advance): the claim holds when the smallest MLP that
matches the CNN's mean test accuracy (within 0.5 points) has at least 5 times
the CNN's weights ("strong" when no MLP in the range matches it, so the factor
is at least 10).

Run: ``python -m examples.claims.c10_conv_weights [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "Convolution needs far fewer weights than fully connected layers on images."
WIDTHS = (8, 16, 32, 64, 128, 256)


def count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def cnn() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64, 10))


def mlp(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, width, activation="relu"), nn.Linear(width, 10))


def one_run(make, seed: int, epochs: int) -> tuple[float, int]:
    data = C.digits_split(seed)
    nt.manual_seed(seed)
    model = make()
    opt = nt.optim.Adam(model.parameters(), lr=3e-3)
    x, xt = data["x_train"].reshape(-1, 1, 8, 8), data["x_test"].reshape(-1, 1, 8, 8)
    C.train_classifier(model, opt, x, data["y_train"], epochs, 64, seed)
    return C.accuracy(model, xt, data["y_test"]), count(model)


def main(argv: Sequence[str] | None = None) -> dict:
    C.require("nurinet.nn.Conv2d", "nurinet.nn.MaxPool2d")
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=1)
    run = C.Run("c10_conv_weights", args)
    epochs = 3 if args.quick else 30
    widths = (8, 64) if args.quick else WIDTHS
    conv_layer, dense_layer = nn.Conv2d(1, 16, 3, padding=1), nn.Linear(64, 16 * 8 * 8)
    structure = {"conv_weights": count(conv_layer), "dense_weights": count(dense_layer)}
    cnn_runs = [one_run(cnn, s, epochs) for s in args.seed_list]
    cnn_acc, cnn_params = C.summary([a for a, _ in cnn_runs]), cnn_runs[0][1]
    mlps = {}
    for w in widths:
        runs = [one_run(lambda w=w: mlp(w), s, epochs) for s in args.seed_list]
        mlps[w] = {"params": runs[0][1], "accuracy": C.summary([a for a, _ in runs])}
    matching = [w for w in widths if mlps[w]["accuracy"]["mean"] >= cnn_acc["mean"] - 0.005]
    factor = mlps[matching[0]]["params"] / cnn_params if matching else None
    largest = mlps[widths[-1]]["params"] / cnn_params
    held = factor is None or factor >= 5
    grade = ("strong" if factor is None or factor >= 10 else "moderate") if held else "none"
    match_text = (f"the smallest MLP matching it has {mlps[matching[0]]['params']:,} weights ({factor:.1f}x)"
                  if matching else f"no MLP up to {mlps[widths[-1]]['params']:,} weights ({largest:.0f}x) matches it")
    evidence = (f"one 3x3 conv layer 1->16 channels has {structure['conv_weights']} weights vs "
                f"{structure['dense_weights']:,} for a dense layer with the same output; the {cnn_params:,}-weight "
                f"CNN reaches {cnn_acc['mean']:.3f} test accuracy and {match_text}.")
    results = {"structure": structure, "cnn": {"params": cnn_params, "accuracy": cnn_acc},
               "mlp": {str(w): v for w, v in mlps.items()}, "matching_factor": factor}
    lines = [f"MLP width {w}: {v['params']:,} weights, test accuracy {v['accuracy']['mean']:.3f}"
             for w, v in mlps.items()]

    def plot(fig):
        ax = fig.add_subplot(1, 1, 1)
        ax.errorbar([mlps[w]["params"] for w in widths], [mlps[w]["accuracy"]["mean"] for w in widths],
                    yerr=[mlps[w]["accuracy"]["std"] for w in widths], marker="o", label="1-hidden-layer MLP")
        ax.errorbar([cnn_params], [cnn_acc["mean"]], yerr=[cnn_acc["std"]], marker="*", ms=12, ls="",
                    label="CNN")
        ax.set_xscale("log")
        ax.set_xlabel("number of weights")
        ax.set_ylabel("test accuracy (8x8 digits)")
        ax.legend(fontsize=8)

    return run.finish({"epochs": epochs, "widths": widths, "optimizer": "Adam lr 3e-3", "batch_size": 64},
                      results, C.verdict(CLAIM, held, grade, evidence), plot, lines)


if __name__ == "__main__":
    main()
