"""Training throughput and peak memory of the classic MNIST CNN against PyTorch.

The workload of the convolutional-network issue: ``MnistCNN`` (conv 32@3x3 - relu -
conv 64@3x3 - relu - maxpool 2 - dropout 0.25 - fc 128 - relu - dropout 0.5 - fc 10),
batch 64 of 1x28x28 images, cross-entropy on logits, Adam (lr 1e-3), float32. The
PyTorch twin is an equivalent ``torch.nn.Sequential`` that starts from nurinet's
initial weights (copied); both see the same random images and labels, generated
once (the arithmetic does not depend on the values). One iteration is one training
step: forward, loss, zero_grad, backward, update. Speed is interleaved rounds with
:mod:`benchmarks.common`.

Peak memory of one training step, per library, is measured in a fresh subprocess
(so neither library's allocator caches or the other library pollute it): the
process builds the model, optimizer and batch, runs three warm-up steps (Adam's
state and every cache exist), records its peak resident set so far (``VmHWM``;
``ru_maxrss`` would include the parent's RSS at the fork), runs one more step, and reports how much
the peak grew ("step peak RSS above the warmed-up high-water mark"). That figure can
be 0 when a step fits in memory the warm-up already touched, so each subprocess also
reports the RSS high-water mark after warm-up minus the RSS right after setup (the
working set of a step, including Adam's state and allocator caches), which is the
number to compare. For nurinet the subprocess also reports ``tracemalloc``'s peak
of one step: NumPy registers its array buffers with tracemalloc, so this is exactly
the largest total of live NumPy arrays (and Python objects) during one step, above
what was live before it (so memory kept from step to step, such as Adam's moments and
the reused convolution buffers, is not in it; the RSS working set does include it).
PyTorch's allocator is invisible to tracemalloc, so it has only the RSS figures.

Run ``python benchmarks/bench_cnn.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # Run from a checkout without installing nurinet.
    sys.path.insert(0, str(ROOT))

import numpy as np

import nurinet as nt
import nurinet.functional as F
from benchmarks.common import (
    Case,
    Step,
    cross_entropy_step,
    load_torch,
    main,
)
from nurinet.models import MnistCNN

BATCH = 64
BATCHES = 8


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((BATCHES, BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, (BATCHES, BATCH))
    return x, y


def _nurinet_model() -> Any:
    nt.manual_seed(0)
    return MnistCNN()


def _torch_model(torch: Any) -> Any:
    """The torch.nn.Sequential twin of MnistCNN, with nurinet's initial weights copied in."""
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(64 * 12 * 12, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10),
    )
    ours = [p.array for p in _nurinet_model().parameters()]
    theirs = list(model.parameters())
    if [a.shape for a in ours] != [tuple(p.shape) for p in theirs]:
        raise RuntimeError("bench_cnn: the PyTorch twin does not match MnistCNN's parameter shapes")
    with torch.no_grad():
        for p, a in zip(theirs, ours):
            p.copy_(torch.from_numpy(np.ascontiguousarray(a)))
    return model


def _without_dropout(model: Any, dropout_class: type) -> None:
    """Set every dropout of ``model`` to p = 0 (the workload's dropout-off case)."""
    for module in model.modules():
        if isinstance(module, dropout_class):
            module.p = 0.0


def cnn_nurinet(dropout: bool = True) -> Step:
    model = _nurinet_model()
    if not dropout:
        _without_dropout(model, nt.nn.Dropout)
    model.train()
    opt = nt.optim.Adam(model.parameters(), lr=1e-3)
    xs, ys = _data()
    batches = [(nt.tensor(x), nt.tensor(y)) for x, y in zip(xs, ys)]
    return cross_entropy_step(model, opt, batches, F)


def cnn_torch(dropout: bool = True) -> Step:
    torch = load_torch()
    model = _torch_model(torch)
    if not dropout:
        _without_dropout(model, torch.nn.Dropout)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xs, ys = _data()
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in zip(xs, ys)]
    return cross_entropy_step(model, opt, batches, torch.nn.functional)


# ----- peak memory, one library per fresh subprocess -----

def _rss_peak_kib() -> int:
    """This process's peak resident set in KiB.

    Linux's ``VmHWM`` rather than ``getrusage``'s ``ru_maxrss``: the latter survives ``exec``, so in
    a child started by a big parent (one that imported PyTorch) it starts at the parent's RSS and
    hides any smaller peak of the child's own.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _rss_now_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def measure_memory(lib: str) -> dict[str, Any]:
    """Peak memory of one warmed-up training step of ``lib`` (run this in a fresh process)."""
    step = cnn_torch() if lib == "torch" else cnn_nurinet()
    after_setup = _rss_now_kib()
    for _ in range(3):
        step()
    warm_peak = _rss_peak_kib()
    out: dict[str, Any] = {"rss_after_setup_mib": after_setup / 1024,
                           "step_working_set_mib": (warm_peak - after_setup) / 1024}
    if lib == "nurinet":
        import tracemalloc

        tracemalloc.start()
        step()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["tracemalloc_step_peak_mib"] = peak / 2**20
    else:
        step()
    out["step_peak_rss_growth_mib"] = (_rss_peak_kib() - warm_peak) / 1024
    return out


def memory_report(use_torch: bool) -> dict[str, Any]:
    """Run :func:`measure_memory` for each library in its own subprocess."""
    libs = ["nurinet"] + (["torch"] if use_torch and load_torch() is not None else [])
    report = {}
    for lib in libs:
        proc = subprocess.run([sys.executable, __file__, "--memory-child", lib], capture_output=True,
                              text=True, check=True, env=os.environ.copy())
        report[lib] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def memory_table(report: dict[str, Any]) -> str:
    head = "| library | step working set (RSS) | tracemalloc peak of one step | RSS growth in step 4 |"
    lines = [head, "|---|---|---|---|"]
    for lib, m in report.items():
        traced = m.get("tracemalloc_step_peak_mib")
        lines.append(f"| {lib} | {m['step_working_set_mib']:.1f} MiB | "
                     f"{'-' if traced is None else f'{traced:.1f} MiB'} | {m['step_peak_rss_growth_mib']:.1f} MiB |")
    return "\n".join(lines)


CASES = [
    Case(f"MnistCNN train step, batch {BATCH}{'' if dropout else ', dropout off'}",
         functools.partial(cnn_nurinet, dropout), functools.partial(cnn_torch, dropout), iters=10, quick_iters=2,
         per_second=True,
         note=f"Adam lr 1e-3, cross-entropy, dropout {'on' if dropout else 'off'}, float32; "
              f"samples/s = steps/s x {BATCH}")
    for dropout in (True, False)
]

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory-child":
        print(json.dumps(measure_memory(sys.argv[2])))
        raise SystemExit(0)
    argv = sys.argv[1:]
    memory = memory_report("--no-torch" not in argv)
    print(memory_table(memory) + "\n", flush=True)
    results = main("cnn", "MnistCNN training throughput and peak memory against PyTorch", CASES, argv,
                   extra={"peak_memory": memory})
    for r in results:
        rates = {lib: BATCH / r.median(lib) for lib in r.times}
        print("samples/s: " + ", ".join(f"{lib} {v:,.0f}" for lib, v in rates.items())
              + (f"; ratio {r.ratio():.2f}" if r.ratio() else ""))
