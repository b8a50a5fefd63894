"""Transformer encoder training throughput: nurinet against torch.nn.TransformerEncoderLayer.

The workload: one Transformer encoder layer (d_model 128, 4 heads, feed-forward 512, ReLU,
post-norm, batch_first; dropout 0 in one case and 0.1 everywhere in the other) on sequences of 64 random 128-feature
vectors, the output mean-pooled over the sequence into a linear head (128 -> 10) with
cross-entropy, and Adam (lr 1e-3); batch 32, float32, training mode. One step is
forward, backward and the optimizer update on a fixed batch; the figure is training
samples per second (batch / seconds per step).

Run ``python benchmarks/bench_transformer.py`` (``--quick`` for a smoke run,
``--no-torch`` for nurinet alone, ``--profile`` to print a cProfile of 20 nurinet
steps); it prints a Markdown table and writes JSON to benchmarks/results/transformer.json.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # Run from a checkout without installing nurinet.
    sys.path.insert(0, str(ROOT))

import numpy as np

import nurinet as nt
import nurinet.functional as F
from benchmarks.common import Case, Step, load_torch, main
from nurinet import nn
from nurinet.optim import Adam

D_MODEL, HEADS, FF, SEQ, BATCH, CLASSES = 128, 4, 512, 64, 32, 10
DROPOUTS = (0.0, 0.1)


def _batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32),
            rng.integers(0, CLASSES, BATCH))


class _Model(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(D_MODEL, HEADS, FF, dropout=dropout, batch_first=True,
                                                  generator=nt.Generator(0))
        self.head = nn.Linear(D_MODEL, CLASSES, generator=nt.Generator(1))

    def forward(self, x: Any) -> Any:
        return self.head(F.mean(self.encoder(x), axis=1))


def transformer_nurinet(dropout: float = 0.1) -> Step:
    x, y = _batch()
    model = _Model(dropout)
    model.train()
    opt = Adam(model.parameters(), lr=1e-3)
    xt = nt.tensor(x)

    def step() -> None:
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), y)
        loss.backward()
        opt.step()

    return step


def transformer_torch(dropout: float = 0.1) -> Step:
    torch = load_torch()
    x, y = _batch()
    torch.manual_seed(0)
    encoder = torch.nn.TransformerEncoderLayer(D_MODEL, HEADS, FF, dropout=dropout, batch_first=True)
    head = torch.nn.Linear(D_MODEL, CLASSES)
    encoder.train()
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> None:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(encoder(xt).mean(dim=1)), yt)
        loss.backward()
        opt.step()

    return step


def _case(dropout: float) -> Case:
    return Case(f"Transformer encoder layer train step (d={D_MODEL}, heads={HEADS}, ff={FF}, L={SEQ}, "
                f"N={BATCH}, dropout={dropout}, Adam)", functools.partial(transformer_nurinet, dropout),
                functools.partial(transformer_torch, dropout), iters=10, quick_iters=2, per_second=True,
                note=f"samples/s = {BATCH} x steps/s; forward + backward + Adam on one fixed batch, float32")


CASES = [_case(p) for p in DROPOUTS]


def profile(steps: int = 20, dropout: float = 0.0) -> None:
    """Print the top of a cProfile of ``steps`` nurinet training steps."""
    import cProfile
    import pstats

    step = transformer_nurinet(dropout)
    step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    if "--profile" in sys.argv:
        profile()
        raise SystemExit(0)
    results = main("transformer", __doc__.splitlines()[0], CASES)
    for r in results:
        for lib in r.times:
            print(f"{lib}: {BATCH / r.median(lib):,.0f} samples/s")
