"""Which ops' backward runs in each benchmark's training step: the evidence for the HOT list.

An op keeps a second, array-level gradient (``backward_arrays``) only where a benchmark's step
runs it (docs/architecture.md, "The op contract"; the list is ``HOT_BACKWARD_ARRAYS`` in
tests/op_db.py). This script runs every nurinet case of the benchmark scripts for a few untimed
steps and counts, per case, the calls of each ``Function`` class's ``backward`` and
``backward_arrays`` (calls from inside a fused op, such as the LSTM's step ops, count too).

Run ``python benchmarks/backward_census.py`` (``--only TEXT`` keeps the cases whose name holds
TEXT). Not a timing: it wraps every backward in a counter.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # Run from a checkout without installing nurinet.
    sys.path.insert(0, str(ROOT))

from nurinet.autograd.function import Function

# Every benchmark script with training or backward steps (bench_convex.py solves problems: no step to census).
SCRIPTS = tuple(importlib.import_module(f"benchmarks.{name}") for name in (
    "bench_mlp", "bench_cnn", "bench_lstm", "bench_overhead", "bench_transformer", "bench_conv"))
STEPS = 2  # The first step may take other paths (caches, optimizer state); count both.


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _counting(method: Any, kind: str, calls: Counter) -> Any:
    @functools.wraps(method)
    def wrapper(self: Any, *grads: Any) -> Any:
        calls[(type(self).__name__, kind)] += 1
        return method(self, *grads)

    return wrapper


@contextlib.contextmanager
def instrumented(calls: Counter) -> Iterator[None]:
    """Within the block, each class's own ``backward`` and ``backward_arrays`` count their calls in ``calls``.

    The originals are put back at the end: the tests run the census in their own process.
    """
    originals = [(cls, kind, cls.__dict__[kind]) for cls in _subclasses(Function)
                 for kind in ("backward", "backward_arrays") if callable(cls.__dict__.get(kind))]
    for cls, kind, method in originals:
        setattr(cls, kind, _counting(method, kind, calls))
    try:
        yield
    finally:
        for cls, kind, method in originals:
            setattr(cls, kind, method)


def census(only: str | None = None) -> dict[str, Counter]:
    """Per benchmark case, the count of backward calls by (op class, method)."""
    calls: Counter = Counter()
    found = {}
    with instrumented(calls):
        for script in SCRIPTS:
            for case in script.CASES:
                if only and only not in case.name:
                    continue
                step = case.nurinet()
                calls.clear()
                for _ in range(STEPS):
                    step()
                found[f"{script.__name__.split('.')[-1]}: {case.name}"] = Counter(calls)
    return found


def report(found: dict[str, Counter]) -> str:
    lines = []
    for name, calls in found.items():
        lines.append(f"## {name}")
        for (op, kind), n in sorted(calls.items()):
            lines.append(f"  {op:28s} {kind:16s} {n // STEPS:6d} per step")
    ops = sorted({op for calls in found.values() for op, _ in calls})
    lines.append(f"\nops whose backward runs in some benchmark ({len(ops)}): {', '.join(ops)}")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="cases whose name contains this text")
    print(report(census(parser.parse_args().only)))
