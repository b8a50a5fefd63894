"""Claim T: the MSE loss is more sensitive to outliers than the MAE loss.

Data: x ~ U(-3, 3) (200 points), y = 2x + 1 + N(0, 0.5^2); then 5% of the
points (the seed picks which) get +20 added to y, large one-sided outliers.
A linear model ``nn.Linear(1, 1)`` (same initial weights for both arms) is
fitted full-batch with Adam (lr 0.05 for 1,500 steps, then 0.005 for 500) once
with ``F.mse_loss`` and once with ``F.l1_loss`` (MAE). The same fit on the
clean data (no outliers) is the control.

Measurement: the parameter error ``||(w, b) - (2, 1)||`` of the fitted line.

Criterion (fixed in advance): the claim holds when, with outliers, the MSE fit's
parameter error is at least twice the MAE fit's: the paired effect on
log10(error_MSE) - log10(error_MAE) reaches log10(2) = 0.301 (graded by
``_common.strength``).

Run: ``python -m examples.claims.c20_mse_mae_outliers [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "The mean squared error is more sensitive to outliers than the mean absolute error."
TRUE_W, TRUE_B = 2.0, 1.0
LOSSES = {"MSE": nt.F.mse_loss, "MAE": nt.F.l1_loss}


def make_data(seed: int, n: int, outlier_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, size=(n, 1))
    y = TRUE_W * x + TRUE_B + rng.normal(0, 0.5, size=(n, 1))
    idx = rng.choice(n, size=round(outlier_fraction * n), replace=False)
    y_out = y.copy()
    y_out[idx] += 20.0
    return x.astype(np.float32), y.astype(np.float32), y_out.astype(np.float32)


def fit(x: np.ndarray, y: np.ndarray, loss_name: str, seed: int, steps: int) -> tuple[float, float]:
    nt.manual_seed(seed)
    model = nn.Linear(1, 1)
    opt = nt.optim.Adam(model.parameters(), lr=0.05)
    xt, yt = nt.tensor(x), nt.tensor(y)
    for step in range(steps):
        if step == int(steps * 0.75):
            for group in opt.param_groups:
                group["lr"] = 0.005
        loss = LOSSES[loss_name](model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(model.weight.array.ravel()[0]), float(model.bias.array.ravel()[0])


def one_seed(seed: int, n: int, steps: int, fraction: float) -> dict:
    x, y_clean, y_out = make_data(seed, n, fraction)
    row = {}
    for data_name, y in (("clean", y_clean), ("outliers", y_out)):
        for loss_name in LOSSES:
            w, b = fit(x, y, loss_name, seed, steps)
            row[f"{loss_name} {data_name}"] = {"w": w, "b": b, "error": float(np.hypot(w - TRUE_W, b - TRUE_B))}
    return row


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=10, quick_seeds=2)
    run = C.Run("c20_mse_mae_outliers", args)
    n, steps, fraction = (100, 300, 0.05) if args.quick else (200, 2000, 0.05)
    rows = [one_seed(s, n, steps, fraction) for s in args.seed_list]
    keys = list(rows[0])
    stats = {k: {m: C.summary([r[k][m] for r in rows]) for m in ("w", "b", "error")} for k in keys}
    log_mse = [np.log10(r["MSE outliers"]["error"]) for r in rows]
    log_mae = [np.log10(r["MAE outliers"]["error"]) for r in rows]
    effect = C.paired_effect(log_mae, log_mse, higher_is_better=False)
    ratio = float(10 ** effect["mean_advantage"])
    evidence = (f"{fraction:.0%} outliers of +20 on y = 2x + 1: parameter error MSE "
                f"{stats['MSE outliers']['error']['mean']:.3f} (b = {stats['MSE outliers']['b']['mean']:.2f}) vs MAE "
                f"{stats['MAE outliers']['error']['mean']:.3f} (b = {stats['MAE outliers']['b']['mean']:.2f}), "
                f"geometric-mean ratio {ratio:.1f}x; without outliers {stats['MSE clean']['error']['mean']:.3f} vs "
                f"{stats['MAE clean']['error']['mean']:.3f}.")
    results = {"stats": stats, "log10_error_effect": effect, "error_ratio_geometric_mean": ratio,
               "per_seed": rows}

    def plot(fig):
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        x, _, y_out = make_data(0, n, fraction)
        ax1.scatter(x[:, 0], y_out[:, 0], s=6, c="0.5")
        grid = np.linspace(-3, 3, 2)
        ax1.plot(grid, TRUE_W * grid + TRUE_B, "k--", label="true line")
        for k, c in (("MSE outliers", "tab:red"), ("MAE outliers", "tab:blue")):
            ax1.plot(grid, rows[0][k]["w"] * grid + rows[0][k]["b"], c=c, label=k.split()[0] + " fit")
        ax1.legend(fontsize=7)
        ax1.set_title("seed 0", fontsize=8)
        ax2.bar(range(len(keys)), [stats[k]["error"]["mean"] for k in keys],
                yerr=[stats[k]["error"]["std"] for k in keys])
        ax2.set_xticks(range(len(keys)), keys, fontsize=7)
        ax2.set_ylabel("||(w, b) - (2, 1)||")

    config = {"n": n, "outlier_fraction": fraction, "outlier_shift": 20.0, "noise_std": 0.5, "steps": steps,
              "optimizer": "Adam lr 0.05, then 0.005 for the last quarter", "true_line": [TRUE_W, TRUE_B],
              "criterion": "log10(error MSE / error MAE) >= log10(2), graded"}
    return run.finish(config, results, C.effect_verdict(CLAIM, effect, float(np.log10(2)), evidence), plot)


if __name__ == "__main__":
    main()
