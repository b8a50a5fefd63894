"""Claim V: a larger batch trains faster per epoch but needs more memory.

A 64-512-512-10 ReLU MLP is trained on the digits' training split (1,257
images) with SGD (lr 0.01) at batch sizes 16, 64 and 256, each from the same
initial weights (same seed). Measurements:

* time per epoch: the median wall time of 5 epochs (after one warm-up epoch);
* peak memory of one training step (forward, backward, optimizer step, after a
  warm-up step): ``tracemalloc``'s peak above the memory held before the step
  (NumPy reports its array buffers to tracemalloc).

Timing on a shared machine is noisy: the medians of repeated epochs are used
and the runs use one BLAS thread; this is an experiment, not a test.

Criterion (fixed in advance): the claim holds when, in at least 2/3 of the
seeds, the median time per epoch falls strictly from batch 16 to 64 to 256
*and* the step's peak memory rises strictly (strong when every seed agrees on
both); partial when only one of the two parts holds.

Run: ``python -m examples.claims.c22_batch_size_cost [--quick] [--seeds N]``
"""

from __future__ import annotations

import itertools
import time
import tracemalloc
from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "A larger mini-batch trains faster per epoch but needs more memory per step."


def build(hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, hidden, activation="relu"), nn.Linear(hidden, hidden, activation="relu"),
                         nn.Linear(hidden, 10))


def step_peak_bytes(model: nn.Module, opt, x: np.ndarray, y: np.ndarray) -> int:
    xt, yt = nt.tensor(x), nt.tensor(y)

    def step() -> None:
        loss = nt.F.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up: gradients and any optimizer state exist from now on
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return int(peak - before)


def one_run(seed: int, batch: int, epochs: int, hidden: int) -> dict:
    data = C.digits_split(seed)
    x, y = data["x_train"], data["y_train"]
    nt.manual_seed(seed)
    model = build(hidden)
    opt = nt.optim.SGD(model.parameters(), lr=0.01)
    peak = step_peak_bytes(model, opt, x[:batch], y[:batch])
    marks = [time.perf_counter()]
    C.train_classifier(model, opt, x, y, epochs + 1, batch, seed, on_epoch=lambda _e: marks.append(time.perf_counter()))
    times = np.diff(marks)[1:]  # the first epoch is a warm-up
    return {"seconds_per_epoch": float(np.median(times)), "epoch_times": times.tolist(), "peak_step_bytes": peak,
            "test_accuracy": C.accuracy(model, data["x_test"], data["y_test"])}


def main(argv: Sequence[str] | None = None) -> dict:
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=3, quick_seeds=1)
    run = C.Run("c22_batch_size_cost", args)
    sizes = [16, 64, 256]
    epochs, hidden = (2, 128) if args.quick else (5, 512)
    rows = {b: [one_run(s, b, epochs, hidden) for s in args.seed_list] for b in sizes}
    n = len(args.seed_list)
    faster = [all(rows[a][i]["seconds_per_epoch"] > rows[b][i]["seconds_per_epoch"] for a, b in itertools.pairwise(sizes))
              for i in range(n)]
    bigger = [all(rows[a][i]["peak_step_bytes"] < rows[b][i]["peak_step_bytes"] for a, b in itertools.pairwise(sizes))
              for i in range(n)]
    part = {"time_falls": float(np.mean(faster)), "memory_rises": float(np.mean(bigger))}
    ok = {k: v >= 2 / 3 for k, v in part.items()}
    if all(ok.values()):
        held, grade = True, "strong" if min(part.values()) == 1.0 else "moderate"
    else:
        held, grade = False, "partial" if any(ok.values()) else "none"
    stats = {str(b): {m: C.summary([r[m] for r in rows[b]]) for m in ("seconds_per_epoch", "peak_step_bytes",
                                                                     "test_accuracy")} for b in sizes}
    evidence = ("median seconds per epoch " + ", ".join(
        f"batch {b}: {stats[str(b)]['seconds_per_epoch']['mean']:.3f}" for b in sizes)
        + "; peak memory of one step " + ", ".join(
        f"{stats[str(b)]['peak_step_bytes']['mean'] / 2**20:.2f} MiB" for b in sizes)
        + f" (time falls in {sum(faster)}/{n} seeds, memory rises in {sum(bigger)}/{n}); the test accuracy after "
        f"{epochs + 1} epochs is " + ", ".join(f"{stats[str(b)]['test_accuracy']['mean']:.3f}" for b in sizes)
        + " (the same number of epochs is fewer updates for a larger batch).")
    results = {"batch_sizes": sizes, "stats": stats, "seed_fraction": part,
               "per_seed": {str(b): rows[b] for b in sizes}}

    def plot(fig):
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        for i in range(n):
            ax1.plot(sizes, [rows[b][i]["seconds_per_epoch"] for b in sizes], marker="o", c="tab:blue", alpha=0.6)
            ax2.plot(sizes, [rows[b][i]["peak_step_bytes"] / 2**20 for b in sizes], marker="o", c="tab:red",
                     alpha=0.6)
        for ax, label in ((ax1, "median seconds per epoch"), (ax2, "peak MiB of one step (tracemalloc)")):
            ax.set_xscale("log", base=2)
            ax.set_xticks(sizes, [str(b) for b in sizes])
            ax.set_xlabel("batch size")
            ax.set_ylabel(label)

    config = {"hidden": hidden, "timed_epochs": epochs, "warmup_epochs": 1, "optimizer": "SGD lr 0.01",
              "batch_sizes": sizes, "memory": "tracemalloc peak above the start of one step, after a warm-up step",
              "criterion": "time per epoch strictly falls and step memory strictly rises with the batch, "
                           ">= 2/3 of seeds for each part"}
    return run.finish(config, results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
