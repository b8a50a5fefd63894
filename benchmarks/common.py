"""A small benchmark harness: nurinet against PyTorch, interleaved, as medians and ratios.

A :class:`Case` names one workload and gives, per library, a *factory*: a
function that does the setup (build tensors, warm caches) and returns a
``step()`` callable. ``step()`` runs one iteration; it may return the seconds
it wants counted (to leave per-iteration setup out of the timing), or ``None``
to have the whole call timed.

Each library runs in a process of its own (``benchmarks/worker.py``), as a user runs it: in one
shared process PyTorch's OpenMP runtime would also run the threads of an MKL that nurinet loads.
Rounds are interleaved: every round times each case in each library, with the
order of the libraries alternating, so a slow spell on a shared machine hits
both libraries alike. Each round's figure is the mean time per iteration over
``iters`` iterations; the report gives the median and the min-max over rounds,
and the speed ratio: PyTorch's median time over nurinet's, i.e. nurinet's throughput
as a multiple of PyTorch's (above 1 means nurinet is faster; PyTorch = 1.00).

Before each library's round the harness sleeps :data:`SETTLE_S`: after a matrix product an idle
OpenBLAS thread spins for about 0.1 s (and an OpenMP thread for a while) before it sleeps, and a
round that starts while the other library's threads still spin loses a core to them. Without the
pause, nurinet's spinning BLAS threads slowed the PyTorch round after them (and the other way
round), which skews the ratio.

After the pause each library first runs its step untimed for :data:`REWARM_S` (at least once): on
the 2-core VMs measured here, nurinet's first few steps after an idle 0.3 s ran 20-80% slower (its
second thread and the second core had gone idle; an LSTM step took 8-12 ms before settling at 6.6 ms)
while PyTorch's first step alone was slow. A training loop never pauses between steps, so the
timed rounds measure the steady state, for both libraries alike.

PyTorch is optional and imported lazily: without it, only nurinet is measured.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Step = Callable[[], "float | None"]
Factory = Callable[[], Step]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SETTLE_S = 0.3  # longer than OpenBLAS's default spin (about 0.1 s): the other library's threads sleep
REWARM_S = 0.05  # untimed steps after the pause, before a round is timed (see the module docstring)


@dataclass
class Case:
    """One workload measured in each library.

    Attributes:
        name: Row label of the report.
        nurinet: Factory returning nurinet's ``step()``.
        torch: Factory returning PyTorch's ``step()``, or None for nurinet only.
        iters: Iterations per round (in ``--quick`` mode, ``quick_iters``).
        quick_iters: Iterations per round in quick mode.
        per_second: Also report the rate (iterations per second), e.g. steps/s.
        note: Remark printed under the table (what exactly is measured).
    """

    name: str
    nurinet: Factory
    torch: Factory | None = None
    iters: int = 100
    quick_iters: int = 10
    per_second: bool = False
    note: str = ""


@dataclass
class Result:
    """The per-round seconds per iteration of one case in each library."""

    case: Case
    times: dict[str, list[float]] = field(default_factory=dict)

    def median(self, lib: str) -> float | None:
        rounds = self.times.get(lib)
        return statistics.median(rounds) if rounds else None

    def ratio(self) -> float | None:
        """nurinet's speed relative to PyTorch's (torch time / nurinet time; >1 is faster)."""
        ours, theirs = self.median("nurinet"), self.median("torch")
        if ours is None or theirs is None or ours == 0:
            return None
        return theirs / ours

    def as_dict(self) -> dict[str, Any]:
        libs = {}
        for lib, rounds in self.times.items():
            med = statistics.median(rounds)
            libs[lib] = {
                "median_s": med,
                "min_s": min(rounds),
                "max_s": max(rounds),
                "rounds_s": rounds,
                "per_second": 1.0 / med if med else None,
            }
        return {"name": self.case.name, "note": self.case.note, "libraries": libs,
                "speed_vs_torch": self.ratio()}


def load_torch() -> Any:
    """PyTorch if it is installed, else None (nurinet is then measured alone)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def cross_entropy_step(model: Any, opt: Any, batches: Sequence[tuple[Any, Any]], functional: Any) -> Step:
    """A ``step()`` that trains on the next of ``batches`` (cycling): forward, cross-entropy on the logits,
    zero_grad, backward, update.

    The same for both libraries: ``functional`` is ``nurinet.functional`` or ``torch.nn.functional``, and
    its ``cross_entropy`` is looked up at every call, so ``run_all``'s loss recording (which wraps that
    attribute after the step is built) sees each loss.
    """
    index = itertools.count()

    def step() -> None:
        x, y = batches[next(index) % len(batches)]
        loss = functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line flags every benchmark script shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="few rounds and iterations: a smoke run, not a measurement")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds (default 7, or 3 with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed iterations before the first round (default 5, 1 with --quick)")
    parser.add_argument("--no-torch", action="store_true", help="measure nurinet only")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the JSON results (default benchmarks/results/<name>.json)")
    parser.add_argument("--only", default=None, help="run only the cases whose name contains this text")
    parser.add_argument("--tuned", action="store_true",
                        help="measure with the tuned settings (benchmarks.common.TUNED_ENV), labelled as tuned; "
                             "the default measures as a user's script runs")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 7
    if args.warmup is None:
        args.warmup = 1 if args.quick else 5
    if args.rounds < 1 or args.warmup < 0:
        parser.error(f"--rounds must be at least 1 and --warmup at least 0 "
                     f"(got {args.rounds} and {args.warmup})")
    return args


def time_round(step: Step, iters: int) -> float:
    """Mean seconds per iteration of ``step`` over ``iters`` iterations."""
    total = 0.0
    for _ in range(iters):
        start = time.perf_counter()
        counted = step()
        elapsed = time.perf_counter() - start
        total += elapsed if counted is None else counted
    return total / iters


# The tuned settings (``--tuned``), a user's own choice that the default figures never assume: an idle
# OpenBLAS thread sleeps after a short spin instead of about 0.1 s, which leaves the core to nurinet's
# own threads. It counts only before NumPy loads, so the worker processes get it in their environment.
TUNED_ENV = {"OPENBLAS_THREAD_TIMEOUT": "4"}


def worker_env(tuned: bool) -> dict[str, str]:
    """The environment of the measuring processes: this one's, plus :data:`TUNED_ENV` when ``tuned``."""
    return {**TUNED_ENV, **os.environ} if tuned else dict(os.environ)


def rewarm(step: Step) -> None:
    """Run ``step`` untimed for :data:`REWARM_S` seconds, at least once."""
    end = time.perf_counter() + REWARM_S
    step()
    while time.perf_counter() < end:
        step()


class _Worker:
    """One library's step in a process of its own (``benchmarks/worker.py``), timed a round at a time."""

    def __init__(self, case: Case, lib: str, warmup: int, iters: int, env: dict[str, str] | None) -> None:
        from benchmarks import worker

        self.tag, self.lib = worker.TAG, lib
        command = [sys.executable, "-m", "benchmarks.worker", _defining_module(case), case.name, lib, str(warmup),
                   str(iters)]
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=worker.ROOT, env=env)
        self._answer("ready")

    def __call__(self) -> float:
        """Seconds per iteration of one timed round (the worker rewarms its step first)."""
        self.proc.stdin.write("round\n")
        self.proc.stdin.flush()
        return float(self._answer("time").split()[1])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)

    def _answer(self, word: str) -> str:
        for line in self.proc.stdout:
            if line.startswith(self.tag + word):
                return line[len(self.tag):].strip()
        self.proc.wait(timeout=60)
        raise RuntimeError(f"the {self.lib} benchmark worker stopped (exit status {self.proc.returncode}); "
                           "its error is printed above")


def _defining_module(case: Case) -> str:
    """The file that defines the case (its factory's module; the script itself when it runs as __main__)."""
    factory = getattr(case.nurinet, "func", case.nurinet)  # a functools.partial names its function
    return str(Path(sys.modules[factory.__module__].__file__).resolve())


def run_cases(cases: list[Case], rounds: int = 7, warmup: int = 5, quick: bool = False,
              use_torch: bool = True, progress: bool = True, env: dict[str, str] | None = None) -> list[Result]:
    """Measure every case in every available library, rounds interleaved.

    Each library's step runs in a process of its own (``benchmarks/worker.py``, started with ``env``,
    default this process's environment) and the rounds alternate between the processes; with
    ``quick`` (the smoke run) the steps run in this process instead.

    Args:
        cases: The workloads.
        rounds: Timed rounds per case and library.
        warmup: Untimed iterations of each step before the first round.
        quick: Use each case's ``quick_iters``.
        use_torch: Measure the PyTorch side where a case has one (and torch is installed).
        progress: Print one line per round to stderr.
        env: The environment of the worker processes.
    """
    have_torch = use_torch and load_torch() is not None
    results = []
    for case in cases:
        libs = ["nurinet"] + (["torch"] if have_torch and case.torch is not None else [])
        iters = case.quick_iters if quick else case.iters
        timers = _in_process(case, libs, warmup, iters) if quick else _workers(case, libs, warmup, iters, env)
        result = Result(case, {lib: [] for lib in libs})
        try:
            for r in range(rounds):
                for lib in libs if r % 2 == 0 else libs[::-1]:
                    if len(libs) > 1 and not quick:
                        time.sleep(SETTLE_S)  # let the other library's idle threads stop spinning
                    result.times[lib].append(timers[lib]())
                if progress:
                    done = ", ".join(f"{lib} {format_seconds(result.times[lib][-1])}" for lib in libs)
                    print(f"  {case.name}: round {r + 1}/{rounds}: {done}", file=sys.stderr)
        finally:
            for timer in timers.values():
                if isinstance(timer, _Worker):
                    timer.close()
        results.append(result)
    return results


def _in_process(case: Case, libs: list[str], warmup: int, iters: int) -> dict[str, Callable[[], float]]:
    """Round timers over steps built in this process (the quick smoke run: no rewarm)."""
    steps = {lib: (case.torch if lib == "torch" else case.nurinet)() for lib in libs}
    for step in steps.values():
        for _ in range(warmup):
            step()
    return {lib: (lambda step=step: time_round(step, iters)) for lib, step in steps.items()}


def _workers(case: Case, libs: list[str], warmup: int, iters: int,
             env: dict[str, str] | None) -> dict[str, _Worker]:
    workers: dict[str, _Worker] = {}
    try:
        for lib in libs:
            workers[lib] = _Worker(case, lib, warmup, iters, env)
    except BaseException:
        for started in workers.values():
            started.close()
        raise
    return workers


def format_seconds(seconds: float | None) -> str:
    """A duration with a readable unit (s, ms, us)."""
    if seconds is None:
        return "-"
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def _cell(result: Result, lib: str) -> str:
    rounds = result.times.get(lib)
    if not rounds:
        return "-"
    med = statistics.median(rounds)
    text = f"{format_seconds(med)} ({format_seconds(min(rounds))} - {format_seconds(max(rounds))})"
    if result.case.per_second:
        text += f", {1.0 / med:,.0f}/s"
    return text


def markdown_table(results: list[Result]) -> str:
    """The results as a Markdown table (median per iteration, min - max over rounds, ratio)."""
    with_torch = any("torch" in r.times for r in results)
    head = ["case", "nurinet: median (min - max)"]
    if with_torch:
        head += ["PyTorch: median (min - max)", "speed vs PyTorch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        row = [r.case.name, _cell(r, "nurinet")]
        if with_torch:
            ratio = r.ratio()
            row += [_cell(r, "torch"), "-" if ratio is None else f"{ratio:.2f}x"]
        lines.append("| " + " | ".join(row) + " |")
    notes = [f"- {r.case.name}: {r.case.note}" for r in results if r.case.note]
    return "\n".join(lines + ([""] + notes if notes else []))


def environment() -> dict[str, Any]:
    """Versions and machine facts stored with the results."""
    import numpy as np

    import nurinet

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "nurinet": nurinet.__version__,
        "nurinet_from": str(Path(nurinet.__file__).resolve().parent),  # the installed package or a checkout
    }
    torch = load_torch()
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    return env


def write_json(results: list[Result], name: str, args: argparse.Namespace,
               extra: dict[str, Any] | None = None) -> Path:
    """Write the results and the environment to JSON; return the path."""
    path = args.json or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {"rounds": args.rounds, "warmup": args.warmup, "quick": args.quick,
                     "tuned": TUNED_ENV if getattr(args, "tuned", False) else None},
        "environment": environment(),
        "results": [r.as_dict() for r in results],
        **(extra or {}),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def main(name: str, description: str, cases: list[Case], argv: list[str] | None = None,
         extra: dict[str, Any] | None = None) -> list[Result]:
    """Parse flags, run the cases, print the Markdown table and write the JSON."""
    args = parse_args(description, argv)
    if args.only:
        cases = [c for c in cases if args.only in c.name]
        if not cases:
            raise SystemExit(f"--only {args.only!r} matches no case")
    use_torch = not args.no_torch
    if use_torch and load_torch() is None:
        print("PyTorch is not installed: measuring nurinet only.", file=sys.stderr)
    results = run_cases(cases, args.rounds, args.warmup, args.quick, use_torch, env=worker_env(args.tuned))
    if args.tuned:
        print(f"TUNED settings, not what a user's script gets: {TUNED_ENV}")
    print(markdown_table(results))
    path = write_json(results, name, args, extra)
    print(f"\nJSON written to {path}")
    return results
