"""Claim D: Adam is the usual best default (SGD, Momentum, Nesterov, Adagrad, Adadelta, RMSprop, Adam compared).

Two tasks, the same network and budget for every optimizer:

* digits: a 64-128-10 ReLU MLP, 15 epochs, batch 64 (metric: test accuracy);
* regression: ``y = sin(3x) + 0.5 x`` plus noise on x in [-2, 2], a 1-64-64-1
  tanh MLP, 40 epochs, batch 32 (metric: test MSE).

Each optimizer runs with a learning-rate grid (Adadelta's grid is scaled up
because its lr is a multiplier near 1). The learning rate is chosen on a
validation split (not the test data), then the test metric is reported. We
also report each optimizer at its customary default (SGD 0.01, Momentum and
Nesterov 0.01 with 0.9, Adagrad 0.01, Adadelta 1.0, RMSprop 0.001, Adam 0.001).

Criterion (fixed in advance): "Adam is the usual best default" holds when Adam
at its default learning rate ranks in the top two of the seven defaults on
both tasks, and is within 1 accuracy point (digits) / 25% MSE (regression) of
the best tuned optimizer.

Run: ``python -m examples.claims.c06_optimizers [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "Adam is the usual best default optimizer."
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam")
DEFAULT_LR = {"sgd": 0.01, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "adadelta": 1.0,
              "rmsprop": 0.001, "adam": 0.001}
GRID = (0.3, 0.1, 0.03, 0.01, 0.003, 0.001)


def grid(name: str, quick: bool) -> list[float]:
    lrs = [lr * 10 for lr in GRID[:4]] if name == "adadelta" else list(GRID)
    lrs = sorted({*lrs, DEFAULT_LR[name]}, reverse=True)
    return [DEFAULT_LR[name]] if quick else lrs


def regression_data(seed: int, n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (3 * n, 1)).astype(np.float32)
    y = (np.sin(3 * x) + 0.5 * x + rng.normal(0, 0.1, x.shape)).astype(np.float32)
    return {"x_train": x[:n], "y_train": y[:n], "x_val": x[n:2 * n], "y_val": y[n:2 * n],
            "x_test": x[2 * n:], "y_test": y[2 * n:]}


def run_task(task: str, name: str, lr: float, seed: int, data: dict, epochs: int) -> tuple[float, float]:
    """Train once; returns (validation metric, test metric), higher is better (negated MSE)."""
    nt.manual_seed(seed)
    if task == "digits":
        model = nn.Sequential(nn.Linear(64, 128, activation="relu"), nn.Linear(128, 10))
        loss_fn, batch = None, 64
    else:
        model = nn.Sequential(nn.Linear(1, 64, activation="tanh"), nn.Linear(64, 64, activation="tanh"),
                              nn.Linear(64, 1))
        loss_fn, batch = nt.F.mse_loss, 32
    opt = nt.optim.get_optimizer(name, model.parameters(), lr=lr)
    with np.errstate(over="ignore", invalid="ignore"):  # the largest learning rates diverge on purpose
        C.train_classifier(model, opt, data["x_train"], data["y_train"], epochs, batch, seed, loss_fn=loss_fn)
    if task == "digits":
        return C.accuracy(model, data["x_val"], data["y_val"]), C.accuracy(model, data["x_test"], data["y_test"])
    scores = [-float(np.mean((C.predict(model, data[f"x_{s}"]) - data[f"y_{s}"]) ** 2)) for s in ("val", "test")]
    scores = [s if np.isfinite(s) else -1e9 for s in scores]
    return scores[0], scores[1]


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=3, quick_seeds=1)
    run = C.Run("c06_optimizers", args)
    epochs = {"digits": 3, "regression": 8} if args.quick else {"digits": 15, "regression": 40}
    n_reg = 150 if args.quick else 400
    table: dict = {}
    for task in ("digits", "regression"):
        table[task] = {}
        for seed in args.seed_list:
            data = C.digits_split(seed, val_fraction=0.15) if task == "digits" else regression_data(seed, n_reg)
            for name in OPTIMIZERS:
                for lr in grid(name, args.quick):
                    val, test = run_task(task, name, lr, seed, data, epochs[task])
                    table[task].setdefault(name, {}).setdefault(lr, []).append((val, test))
    results: dict = {}
    for task, by_opt in table.items():
        sign = 1 if task == "digits" else -1
        res = {}
        for name, by_lr in by_opt.items():
            best_lr = max(by_lr, key=lambda lr: np.mean([v for v, _ in by_lr[lr]]))
            res[name] = {"default_lr": DEFAULT_LR[name], "default": sign * np.mean([t for _, t in by_lr[DEFAULT_LR[name]]]),
                         "tuned_lr": best_lr, "tuned": sign * np.mean([t for _, t in by_lr[best_lr]]),
                         "grid": {str(lr): sign * np.mean([t for _, t in v]) for lr, v in by_lr.items()}}
        results[task] = res
    checks, lines = {}, []
    for task in ("digits", "regression"):
        res, hi = results[task], task == "digits"
        order = sorted(OPTIMIZERS, key=lambda n: -res[n]["default"] if hi else res[n]["default"])
        best_tuned = max(r["tuned"] for r in res.values()) if hi else min(r["tuned"] for r in res.values())
        adam = res["adam"]["default"]
        close = (best_tuned - adam <= 0.01) if hi else (adam <= 1.25 * best_tuned)
        checks[task] = {"adam_default_rank": order.index("adam") + 1, "default_ranking": order,
                        "adam_default": adam, "best_tuned": best_tuned, "adam_close_to_best_tuned": close}
        lines.append(f"{task}: defaults ranked " + ", ".join(f"{n} {res[n]['default']:.4f}" for n in order))
        lines.append(f"{task}: tuned " + ", ".join(f"{n} {res[n]['tuned']:.4f} (lr {res[n]['tuned_lr']})"
                                                   for n in OPTIMIZERS))
    ok = [c["adam_default_rank"] <= 2 and c["adam_close_to_best_tuned"] for c in checks.values()]
    held = all(ok)
    grade = ("strong" if all(c["adam_default_rank"] == 1 for c in checks.values()) else "moderate") if held else (
        "partial" if any(ok) else "none")
    d, r = checks["digits"], checks["regression"]
    evidence = (f"Adam at lr 0.001 ranks {d['adam_default_rank']} of 7 defaults on digits (test accuracy "
                f"{d['adam_default']:.3f}, best tuned {d['best_tuned']:.3f}) and {r['adam_default_rank']} of 7 on "
                f"regression (test MSE {r['adam_default']:.4f}, best tuned {r['best_tuned']:.4f}).")
    results["checks"] = checks

    def plot(fig):
        for i, task in enumerate(("digits", "regression")):
            ax = fig.add_subplot(1, 2, i + 1)
            res = results[task]
            pos = np.arange(len(OPTIMIZERS))
            ax.bar(pos - 0.2, [res[n]["default"] for n in OPTIMIZERS], 0.4, label="default lr")
            ax.bar(pos + 0.2, [res[n]["tuned"] for n in OPTIMIZERS], 0.4, label="lr tuned on val")
            ax.set_xticks(pos, OPTIMIZERS, rotation=45, fontsize=7)
            ax.set_title("digits: test accuracy" if task == "digits" else "regression: test MSE", fontsize=9)
            if task == "digits":
                ax.set_ylim(0.5, 1.0)
            else:
                ax.set_yscale("log")
            ax.legend(fontsize=7)

    return run.finish({"epochs": epochs, "regression_samples": n_reg, "lr_grid": GRID, "default_lr": DEFAULT_LR},
                      results, C.verdict(CLAIM, held, grade, evidence), plot, lines)


if __name__ == "__main__":
    main()
