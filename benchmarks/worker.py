"""One library's side of one benchmark case, in a process of its own, timed round by round on request.

:func:`benchmarks.common.run_cases` starts one worker per library and sends each ``round`` in turn,
so the rounds stay interleaved while each library runs alone in its process, as a user runs it.
In one shared process the two libraries' thread pools would meet: PyTorch loads its own OpenMP
runtime (GNU libgomp) into the process, and an MKL that nurinet loads afterwards then runs its
threads on that runtime, whose idle threads spin for milliseconds after every product and took
the second core from nurinet's own threads (the LSTM step: 5.1 ms alone, 7-8 ms beside PyTorch).

Protocol (one line each way): the parent sends ``round`` or ``quit``; the worker answers lines that
start with :data:`TAG` (``ready``, then one ``time <seconds per iteration>`` per round), so anything
else a step prints is ignored.

Run as ``python -m benchmarks.worker MODULE_PATH CASE LIBRARY WARMUP ITERS`` (from the repository
root), where MODULE_PATH is the file that defines the case and CASE the case's name in its ``CASES``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TAG = "@bench "


def load_case(path: str, name: str) -> Any:
    """The case called ``name`` in the ``CASES`` of the module at ``path``."""
    spec = importlib.util.spec_from_file_location("bench_worker_target", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    for case in getattr(module, "CASES", []):
        if case.name == name:
            return case
    raise SystemExit(f"benchmarks.worker: {path} has no case named {name!r} in its CASES")


def serve(path: str, name: str, lib: str, warmup: int, iters: int) -> None:
    """Build the step, warm it up, then time one round per ``round`` line on stdin."""
    from benchmarks.common import rewarm, time_round

    case = load_case(path, name)
    factory = case.torch if lib == "torch" else case.nurinet
    step = factory()
    for _ in range(warmup):
        step()
    _reply("ready")
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "round":
            raise SystemExit(f"benchmarks.worker: unknown command {command!r}")
        rewarm(step)
        _reply(f"time {time_round(step, iters)!r}")


def _reply(text: str) -> None:
    sys.stdout.write(TAG + text + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) != 6:
        raise SystemExit(__doc__)
    serve(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
