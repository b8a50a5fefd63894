"""Training throughput of an MLP 784-512-512-10 against PyTorch.

The workload of the neural-network issue: ReLU hidden layers, cross-entropy on
logits, SGD with momentum 0.9 (lr 0.01), batch 128, float32. Both libraries
start from the same weights and see the same batches (random images and
labels generated once; the arithmetic does not depend on the values). One
iteration is one training step: forward, loss, zero_grad, backward, update.
This work is bound by matrix products (BLAS), so the ratio shows how much the
framework adds around them.

Run ``python benchmarks/bench_mlp.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # Run from a checkout without installing nurinet.
    sys.path.insert(0, str(ROOT))

import numpy as np

import nurinet as nt
import nurinet.functional as F
from benchmarks.common import Case, Step, cross_entropy_step, load_torch, main

SIZES = (784, 512, 512, 10)
BATCH = 128
BATCHES = 16


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.random((BATCHES, BATCH, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], (BATCHES, BATCH))
    return x, y


def _weights() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    layers = []
    for n_in, n_out in itertools.pairwise(SIZES):
        bound = 1.0 / np.sqrt(n_in)
        w = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, n_out).astype(np.float32)
        layers.append((w, b))
    return layers


def mlp_nurinet() -> Step:
    layers = []
    for w, b in _weights():
        linear = nt.nn.Linear(w.shape[1], w.shape[0])
        linear.weight.array[...] = w
        linear.bias.array[...] = b
        layers += [linear, nt.nn.ReLU()]
    model = nt.nn.Sequential(*layers[:-1])
    opt = nt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xs, ys = _data()
    batches = [(nt.tensor(x), nt.tensor(y)) for x, y in zip(xs, ys)]
    return cross_entropy_step(model, opt, batches, F)


def mlp_torch() -> Step:
    torch = load_torch()
    layers: list[Any] = []
    for w, b in _weights():
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xs, ys = _data()
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in zip(xs, ys)]
    return cross_entropy_step(model, opt, batches, torch.nn.functional)


CASES = [
    Case(f"MLP {'-'.join(map(str, SIZES))} train step, batch {BATCH}", mlp_nurinet, mlp_torch,
         iters=40, quick_iters=3, per_second=True,
         note=f"SGD momentum 0.9, cross-entropy, float32; samples/s = steps/s x {BATCH}"),
]

if __name__ == "__main__":
    main("mlp", "MLP training throughput against PyTorch", CASES)
