"""The benchmark suite: five training workloads in nurinet and in PyTorch, one command.

Workloads (each library builds the same model, data, loss and optimizer):

* MLP 784-512-512-10, batch 128, SGD with momentum (``bench_mlp``);
* MNIST-shaped CNN, batch 64, Adam (``bench_cnn``, skipped with a note while it does not exist);
* LSTM, sequence 28, input 28, hidden 128, batch 64, Adam (``bench_lstm``);
* XOR 2-8-1, batch 4, SGD (``bench_overhead``);
* Transformer encoder layer, d_model 128, 4 heads, feed-forward 512, sequence 64, batch 32, Adam
  (``bench_transformer``).

Each workload runs each library in a worker process of its own, as a user's plain script runs it: no
allocator call, no environment variable, nothing beyond ``pip install .`` (``--tuned`` adds
``benchmarks.common.TUNED_ENV`` and labels the table as tuned): warm-up, interleaved rounds (see
``benchmarks/common.py``), median and min-max per training step, the speed ratio and samples per
second. The workloads that have dropout run with it on and off. Peak memory is nurinet's: the peak of new allocations during
one training step, measured with :mod:`tracemalloc` (NumPy reports its array buffers
to it) after the timing; PyTorch's allocator is invisible to tracemalloc, so its
figure is "n/a". So the full run also measures, per library in a fresh subprocess
(Linux), the step's working set: how far the process's peak resident set (VmHWM,
reset after setup) rises above the resident set after setup during three training steps (activations,
gradients, optimizer state, allocator caches), less the library code those steps read for the first
time (file-backed pages). ``--quick`` skips the subprocesses.

``--quick`` is the CI smoke test: every workload runs for a moment, and a short
training run of each checks that the loss falls (first loss against the mean of the
last few); no time is checked. It exits with status 1 when a loss does not fall.

Usage::

    python benchmarks/run_all.py                 # the full suite (a few minutes), Markdown table + JSON
    python benchmarks/run_all.py --quick --no-torch
    python benchmarks/run_all.py --threads 1     # 1 BLAS thread in NumPy and 1 intra-op thread in PyTorch

JSON goes to ``benchmarks/results/suite.json`` (``suite_threadsN.json`` with ``--threads``;
``--json PATH`` overrides).
"""

from __future__ import annotations

import os
import sys

THREADS = None
if "--threads" in sys.argv:  # Environment variables count only before NumPy (and its BLAS) loads.
    _at = sys.argv.index("--threads")
    THREADS = int(sys.argv[_at + 1])
    del sys.argv[_at : _at + 2]
    # NURINET_NUM_THREADS too: nurinet's own elementwise and kernel threads count as threads.
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NURINET_NUM_THREADS"):
        os.environ[_var] = str(THREADS)

import contextlib
import importlib
import inspect
import statistics
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # Run from a checkout without installing nurinet.
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (
    TUNED_ENV,
    Case,
    Result,
    load_torch,
    parse_args,
    run_cases,
    worker_env,
    write_json,
)


@dataclass
class Workload:
    """One row of the suite: where its Case lives and how to read its loss.

    Attributes:
        label: Short row label.
        module: The bench module (under ``benchmarks``) holding the Case.
        select: Picks the Case out of the module's ``CASES``.
        batch: Samples per training step (for samples/s); read from the module when None.
        loss_fns: Names of the loss functions the steps call, per library (patched to record the loss).
        check_steps: Training steps of the loss-falls check.
    """

    label: str
    module: str
    select: Callable[[list[Case]], Case]
    batch: int | None = None
    loss_fns: tuple[str, ...] = ("cross_entropy",)
    check_steps: int = 20


def _first(cases: list[Case]) -> Case:
    return cases[0]


def _named(text: str) -> Callable[[list[Case]], Case]:
    def select(cases: list[Case]) -> Case:
        matches = [c for c in cases if text.lower() in c.name.lower()]
        return matches[0] if matches else cases[0]
    return select


WORKLOADS = [
    Workload("MLP 784-512-512-10", "bench_mlp", _first, check_steps=48),
    Workload("CNN (MNIST)", "bench_cnn", _named("train step, batch 64"), check_steps=20),
    Workload("CNN (MNIST), dropout off", "bench_cnn", _named("dropout off"), check_steps=20),
    Workload("LSTM T=28 H=128", "bench_lstm", _first, check_steps=20),
    Workload("XOR 2-8-1", "bench_overhead", _named("XOR"), batch=4, loss_fns=("mse_loss",), check_steps=200),
    Workload("Transformer encoder d=128, dropout 0", "bench_transformer", _named("dropout=0.0"), check_steps=20),
    Workload("Transformer encoder d=128, dropout 0.1", "bench_transformer", _named("dropout=0.1"), check_steps=20),
]


def load_workloads(only: str | None = None) -> tuple[list[tuple[Workload, Any, Case]], list[str]]:
    """Import each workload's bench module; returns (workload, module, case) triples and skip notes."""
    found, skipped = [], []
    for work in WORKLOADS:
        if only and only.lower() not in work.label.lower():
            continue
        try:
            module = importlib.import_module(f"benchmarks.{work.module}")
        except ModuleNotFoundError as error:
            if error.name != f"benchmarks.{work.module}":
                raise
            skipped.append(f"{work.label}: skipped, benchmarks/{work.module}.py does not exist yet")
            continue
        case = work.select(list(module.CASES))
        found.append((work, module, case))
    return found, skipped


def batch_of(work: Workload, module: Any) -> int:
    return work.batch if work.batch is not None else int(getattr(module, "BATCH", 1))


# ----- peak memory -----------------------------------------------------------------------------
def peak_step_memory(factory: Callable[[], Any]) -> int:
    """Peak bytes newly allocated (and seen by tracemalloc) during one training step, after one warm step."""
    step = factory()
    step()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(0, peak - base)


def _status_kib(field: str) -> int:
    """A ``Vm*`` line of /proc/self/status (Linux), in KiB."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def rss_child(label: str, lib: str) -> dict[str, float]:
    """In a fresh process: how far the peak RSS rises above the RSS after setup over 3 training steps.

    Importing and building leave a transient peak behind (the import of PyTorch, the data
    generation), so the peak is reset first by writing 5 to /proc/self/clear_refs (Linux 4.0+).
    Pages of library code and other mapped files that the steps read for the first time are taken
    out (the growth of ``RssFile``): they are the libraries' code, shared and never written, not
    memory the training needs (MKL's kernels, loaded at nurinet's first product, are 20 MiB of it).
    """
    found, _ = load_workloads()
    case = next(c for w, _, c in found if w.label == label)
    if lib == "torch":
        load_torch()
    step = (case.torch if lib == "torch" else case.nurinet)()
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # reset VmHWM, the peak resident set, to the current resident set
    after_setup, files_after_setup = _status_kib("VmRSS"), _status_kib("RssFile")
    for _ in range(3):
        step()
    code_read = _status_kib("RssFile") - files_after_setup
    return {"step_working_set_mib": (_status_kib("VmHWM") - after_setup - code_read) / 1024,
            "library_code_read_mib": code_read / 1024}


def rss_memory(label: str, libs: list[str], tuned: bool) -> dict[str, float | None]:
    """Run :func:`rss_child` for each library in its own subprocess (so the two never share a heap)."""
    import json
    import subprocess

    out: dict[str, float | None] = {}
    for lib in libs:
        proc = subprocess.run([sys.executable, __file__, "--rss-child", label, lib], capture_output=True,
                              text=True, env=worker_env(tuned), check=False)
        ok = proc.returncode == 0 and proc.stdout.strip()
        out[lib] = json.loads(proc.stdout.strip().splitlines()[-1])["step_working_set_mib"] if ok else None
    return out


def measure(found: list[tuple[Workload, Any, Case]], args: Any,
            use_torch: bool) -> tuple[list[Result], dict[str, int]]:
    """Each workload's rounds (each library in a worker process with the workload's settings) and
    nurinet's tracemalloc peak (in this process)."""
    results, memory = [], {}
    for work, _, case in found:
        results += run_cases([case], args.rounds, args.warmup, args.quick, use_torch, env=worker_env(args.tuned))
        memory[work.label] = peak_step_memory(case.nurinet)
    return results, memory


# ----- the loss-falls check --------------------------------------------------------------------
@contextlib.contextmanager
def recording(namespaces: list[Any], names: tuple[str, ...], losses: list[float]) -> Iterator[None]:
    """Wrap the loss functions ``names`` of each namespace so every call appends its value to ``losses``.

    The bench steps call their loss through the module attribute (``F.cross_entropy``,
    ``torch.nn.functional.cross_entropy``), so wrapping the attribute sees each loss
    without changing the bench modules.
    """
    saved = []
    for space in namespaces:
        for name in names:
            original = getattr(space, name, None)
            if original is None:
                continue
            saved.append((space, name, original))

            def wrapper(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                loss = _original(*args, **kwargs)
                losses.append(float(loss.item()))
                return loss

            setattr(space, name, wrapper)
    try:
        yield
    finally:
        for space, name, original in reversed(saved):
            setattr(space, name, original)


def train_losses(work: Workload, factory: Callable[..., Any], lib: str) -> list[float]:
    """The losses of ``work.check_steps`` training steps from a fresh factory."""
    losses: list[float] = []
    if "record" in inspect.signature(factory).parameters:  # The factory can report its loss itself.
        step = factory(record=losses)
        for _ in range(work.check_steps):
            step()
        return losses
    if lib == "nurinet":
        import nurinet.functional as F
        spaces = [F]
    else:
        spaces = [load_torch().nn.functional]
    step = factory()
    with recording(spaces, work.loss_fns, losses):
        for _ in range(work.check_steps):
            step()
    return losses


def loss_falls(losses: list[float]) -> bool:
    """True when the mean of the last quarter of the losses is below the first loss."""
    if len(losses) < 2:
        return False
    tail = losses[-max(1, len(losses) // 4):]
    return statistics.fmean(tail) < losses[0]


# ----- report ----------------------------------------------------------------------------------
def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.0f} us"


def _span(rounds: list[float] | None) -> str:
    if not rounds:
        return "-"
    return f"{_fmt(statistics.median(rounds))} ({_fmt(min(rounds))} - {_fmt(max(rounds))})"


def _rate(rounds: list[float] | None, batch: int) -> str:
    return f"{batch / statistics.median(rounds):,.0f}" if rounds else "-"


def rows(found: list[tuple[Workload, Any, Case]], results: list[Result],
         memory: dict[str, int], checks: dict[str, dict[str, Any]],
         rss: dict[str, dict[str, float | None]]) -> list[dict[str, Any]]:
    """One JSON-ready dict per workload."""
    out = []
    for (work, module, _case), result in zip(found, results):
        batch = batch_of(work, module)
        entry = {"workload": work.label, "module": work.module, "batch": batch, **result.as_dict(),
                 "samples_per_second": {lib: batch / statistics.median(t) for lib, t in result.times.items()},
                 "peak_step_memory_bytes": {"nurinet": memory.get(work.label), "torch": None},
                 "step_working_set_rss_mib": rss.get(work.label, {})}
        if work.label in checks:
            entry["loss_check"] = checks[work.label]
        out.append(entry)
    return out


def markdown(entries: list[dict[str, Any]], with_torch: bool) -> str:
    """The suite as a Markdown table."""
    head = ["workload", "batch", "nurinet step: median (min - max)", "nurinet samples/s"]
    if with_torch:
        head += ["PyTorch step: median (min - max)", "PyTorch samples/s", "speed vs PyTorch"]
    head += ["nurinet step peak (tracemalloc)", "step working set RSS: nurinet / PyTorch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in entries:
        libs = e["libraries"]
        ours = libs.get("nurinet", {}).get("rounds_s")
        row = [e["workload"], str(e["batch"]), _span(ours), _rate(ours, e["batch"])]
        if with_torch:
            theirs = libs.get("torch", {}).get("rounds_s")
            ratio = e["speed_vs_torch"]
            row += [_span(theirs), _rate(theirs, e["batch"]), "-" if ratio is None else f"{ratio:.2f}x"]
        mem = e["peak_step_memory_bytes"]["nurinet"]
        rss = e["step_working_set_rss_mib"]
        cells = ["-" if rss.get(lib) is None else f"{rss[lib]:.0f} MiB" for lib in ("nurinet", "torch")]
        row += ["-" if mem is None else f"{mem / 2**20:.1f} MiB", " / ".join(cells) if rss else "n/a"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def thread_settings(use_torch: bool) -> dict[str, Any]:
    """Apply ``--threads`` to PyTorch and the BLAS of nurinet's products; return the settings in use."""
    from nurinet import gemm, threads

    if THREADS is not None:
        threads.set_num_threads(THREADS)
    torch = load_torch() if use_torch else None
    if torch is not None and THREADS is not None:
        torch.set_num_threads(THREADS)
    return {"requested": THREADS, "gemm_provider": gemm.provider(), "blas_threads": threads.get_num_threads(),
            "blas_control": threads.backend(),
            "torch": torch.get_num_threads() if torch is not None else None,
            "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                   "NURINET_NUM_THREADS", "NURINET_BLAS", "OPENBLAS_THREAD_TIMEOUT",
                                                   "KMP_BLOCKTIME")}}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 3 and argv[0] == "--rss-child":
        import json

        print(json.dumps(rss_child(argv[1], argv[2])))
        return 0
    args = parse_args(__doc__.splitlines()[0], argv)
    use_torch = not args.no_torch and load_torch() is not None
    if not args.no_torch and not use_torch:
        print("PyTorch is not installed: measuring nurinet only.", file=sys.stderr)
    settings = thread_settings(use_torch)
    found, skipped = load_workloads(args.only)
    if not found:
        raise SystemExit(f"--only {args.only!r} matches no workload")
    results, memory = measure(found, args, use_torch)
    libs = ["nurinet"] + (["torch"] if use_torch else [])
    rss = {} if args.quick else {work.label: rss_memory(work.label, libs, args.tuned) for work, _, _ in found}
    checks: dict[str, dict[str, Any]] = {}
    if args.quick:
        for work, _, case in found:
            libs = {"nurinet": case.nurinet, **({"torch": case.torch} if use_torch and case.torch else {})}
            for lib, factory in libs.items():
                losses = train_losses(work, factory, lib)
                checks.setdefault(work.label, {})[lib] = {
                    "steps": len(losses), "first": losses[0] if losses else None,
                    "last": losses[-1] if losses else None, "falls": loss_falls(losses)}
    entries = rows(found, results, memory, checks, rss)
    if args.tuned:
        print(f"TUNED settings, not what a user's script gets: {TUNED_ENV}\n")
    print(markdown(entries, use_torch))
    for note in skipped:
        print(f"\n- {note}")
    failed = [f"{label} ({lib})" for label, libs in checks.items() for lib, c in libs.items() if not c["falls"]]
    for label, libs in checks.items():
        for lib, c in libs.items():
            print(f"loss check {label} ({lib}): {c['first']:.4f} -> {c['last']:.4f} over {c['steps']} steps: "
                  f"{'falls' if c['falls'] else 'DOES NOT FALL'}")
    name = ("suite" if THREADS is None else f"suite_threads{THREADS}") + ("_tuned" if args.tuned else "")
    path = write_json(results, name, args, extra={"threads": settings, "skipped": skipped, "suite": entries})
    print(f"\nJSON written to {path}")
    if failed:
        print(f"loss did not fall: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
