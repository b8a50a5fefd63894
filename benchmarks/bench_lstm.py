"""LSTM training throughput: nurinet against torch.nn.LSTM with the same setup.

The workload is the classic "sequential MNIST rows" model: sequences of 28 steps of
28 features, an LSTM with 128 hidden units, a linear head (128 -> 10) on the last
output, cross-entropy, and Adam (lr 1e-3); batch 64, float32. One step is forward,
backward and the optimizer update on a fixed random batch; the figure is training
samples per second (batch / seconds per step).

Run ``python benchmarks/bench_lstm.py`` (``--quick`` for a smoke run, ``--no-torch``
for nurinet alone, ``--profile`` to print a cProfile of 50 nurinet steps, ``--phases`` to print
the median time of each phase of a nurinet step (forward, head, loss, backward, Adam), ``--threads N``
to give both libraries N BLAS/intra-op threads, ``--cpu-time`` to count the process's CPU
time instead of wall time: with ``--threads 1`` that is the steadiest figure on a shared,
loaded machine); it prints a Markdown table and writes JSON to benchmarks/results/lstm.json
(lstm_threadsN[_cpu].json with those flags).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

THREADS = None
if "--threads" in sys.argv:  # Must be set before NumPy (and its BLAS) is imported.
    _at = sys.argv.index("--threads")
    THREADS = int(sys.argv[_at + 1])
    del sys.argv[_at : _at + 2]
    # NURINET_NUM_THREADS too: nurinet's own elementwise and kernel threads count as threads.
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NURINET_NUM_THREADS"):
        os.environ[_var] = str(THREADS)
CPU_TIME = "--cpu-time" in sys.argv
if CPU_TIME:
    sys.argv.remove("--cpu-time")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # Run from a checkout without installing nurinet.
    sys.path.insert(0, str(ROOT))

import numpy as np

import nurinet as nt
import nurinet.functional as F
from benchmarks.common import Case, Step, load_torch, main
from nurinet import nn
from nurinet.optim import Adam

SEQ, FEATURES, HIDDEN, BATCH, CLASSES = 28, 28, 128, 64, 10


def _counted(step: Any) -> Step:
    """``step`` itself, or (with --cpu-time) a step that returns the CPU seconds it used."""
    if not CPU_TIME:
        return step

    def cpu_step() -> float:
        start = time.process_time()
        step()
        return time.process_time() - start

    return cpu_step


def _batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((BATCH, SEQ, FEATURES)).astype(np.float32),
            rng.integers(0, CLASSES, BATCH))


class _Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, HIDDEN, batch_first=True, generator=nt.Generator(0))
        self.head = nn.Linear(HIDDEN, CLASSES, generator=nt.Generator(1))

    def forward(self, x: Any) -> Any:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def lstm_nurinet() -> Step:
    x, y = _batch()
    model = _Model()
    opt = Adam(model.parameters(), lr=1e-3)
    xt = nt.tensor(x)

    def step() -> None:
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), y)
        loss.backward()
        opt.step()

    return _counted(step)


def lstm_torch() -> Step:
    torch = load_torch()
    if THREADS is not None:
        torch.set_num_threads(THREADS)
    x, y = _batch()
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(FEATURES, HIDDEN, batch_first=True)
    head = torch.nn.Linear(HIDDEN, CLASSES)
    opt = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> None:
        opt.zero_grad()
        out, _ = lstm(xt)
        loss = torch.nn.functional.cross_entropy(head(out[:, -1]), yt)
        loss.backward()
        opt.step()

    return _counted(step)


CASES = [
    Case("LSTM train step (T=28, I=28, H=128, N=64, Adam)", lstm_nurinet, lstm_torch, iters=20,
         quick_iters=3, per_second=True,
         note=f"samples/s = {BATCH} x steps/s; forward + backward + Adam on one fixed batch, float32"),
]


def profile(steps: int = 50) -> None:
    """Print the top of a cProfile of ``steps`` nurinet training steps."""
    import cProfile
    import pstats

    step = lstm_nurinet()
    step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(18)


def phases(steps: int = 40) -> None:
    """Print the median wall time of each phase of a nurinet training step over ``steps`` steps."""
    x, y = _batch()
    model = _Model()
    opt = Adam(model.parameters(), lr=1e-3)
    xt = nt.tensor(x)
    times: dict[str, list[float]] = {}

    def timed(name: str, func: Any, *args: Any) -> Any:
        start = time.perf_counter()
        result = func(*args)
        times.setdefault(name, []).append(time.perf_counter() - start)
        return result

    for _ in range(steps + 5):
        timed("zero_grad", opt.zero_grad)
        out, _ = timed("LSTM forward (projection + recurrence)", model.lstm, xt)
        logits = timed("head forward", model.head, out[:, -1])
        loss = timed("cross-entropy", F.cross_entropy, logits, y)
        timed("backward (all ops)", loss.backward)
        timed("Adam step", opt.step)
    total = 0.0
    for name, values in times.items():
        median = float(np.median(values[5:])) * 1e3
        total += median
        print(f"{name:40s} {median:7.2f} ms")
    print(f"{'sum':40s} {total:7.2f} ms")


if __name__ == "__main__":
    if "--profile" in sys.argv:
        profile()
        raise SystemExit(0)
    if "--phases" in sys.argv:
        phases()
        raise SystemExit(0)
    name = ("lstm" if THREADS is None else f"lstm_threads{THREADS}") + ("_cpu" if CPU_TIME else "")
    results = main(name, __doc__.splitlines()[0], CASES)
    for r in results:
        for lib in r.times:
            print(f"{lib}: {BATCH / r.median(lib):,.0f} samples/s")
