"""A workload's nurinet training step timed the way a user's own script would time it.

No harness: no worker process, no pause between rounds, no allocator call, no environment variable;
the script imports the bench module (which imports only nurinet and NumPy), builds nurinet's step,
and times it with ``time.perf_counter``. Its figure should match the suite's nurinet median for the
same workload (``benchmarks/run_all.py``), which shows that the suite measures what a plain script
gets after ``pip install .``.

Usage::

    python benchmarks/plain_script.py transformer 0.0      # the Transformer step with dropout 0
    python benchmarks/plain_script.py cnn                  # the MNIST CNN step (dropout on)
    python benchmarks/plain_script.py mlp | lstm | xor
"""

from __future__ import annotations

import importlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # Run from a checkout: the bench modules live here.
    sys.path.insert(0, str(ROOT))

FACTORIES = {
    "mlp": ("bench_mlp", "mlp_nurinet", 40),
    "cnn": ("bench_cnn", "cnn_nurinet", 10),
    "lstm": ("bench_lstm", "lstm_nurinet", 20),
    "xor": ("bench_overhead", "xor_nurinet", 200),
    "transformer": ("bench_transformer", "transformer_nurinet", 10),
}


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in FACTORIES:
        raise SystemExit(__doc__)
    module, factory, iters = FACTORIES[argv[0]]
    args = [float(a) if "." in a else a == "True" for a in argv[1:]]
    step = getattr(importlib.import_module(f"benchmarks.{module}"), factory)(*args)
    for _ in range(5):
        step()
    rounds = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(iters):
            step()
        rounds.append((time.perf_counter() - start) / iters)
    median = statistics.median(rounds)
    print(f"{argv[0]} {' '.join(argv[1:])}: median step {median * 1e3:.3f} ms "
          f"(min {min(rounds) * 1e3:.3f}, max {max(rounds) * 1e3:.3f}) over 7 rounds of {iters}")


if __name__ == "__main__":
    main(sys.argv[1:])
