"""conv2d forward + backward against PyTorch, at the shapes of a small CNN.

One iteration is one conv2d call (with bias) on float32 inputs that require a
gradient, and its backward from a fixed upstream gradient (input, weight and
bias gradients), in each library. Nothing else runs in the step. PyTorch's CPU
convolution uses oneDNN (a direct convolution, multithreaded); nurinet's copies
the windows into a column matrix and does GEMMs (NumPy's BLAS), for stride 1 one
cache-sized chunk of samples at a time, chunks split over ``nurinet.parallel``'s
threads, so the ratio shows what the data movement around the GEMMs costs. A max-pool case shows
the pooling path.

Run ``python benchmarks/bench_conv.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # Run from a checkout without installing nurinet.
    sys.path.insert(0, str(ROOT))

import numpy as np

import nurinet as nt
import nurinet.functional as F
from benchmarks.common import Case, Step, load_torch, main

# (input shape, output channels, kernel, padding)
SHAPES = [
    ((64, 1, 28, 28), 32, 3, 0),
    ((64, 32, 26, 26), 64, 3, 0),
    ((32, 64, 16, 16), 64, 3, 1),
]


def _arrays(shape: tuple[int, ...], out_c: int, k: int, pad: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((out_c, shape[1], k, k), dtype=np.float32) * 0.1
    b = rng.standard_normal(out_c, dtype=np.float32)
    ho, wo = shape[2] + 2 * pad - k + 1, shape[3] + 2 * pad - k + 1
    gy = rng.standard_normal((shape[0], out_c, ho, wo), dtype=np.float32)
    return x, w, b, gy


def conv_nurinet(shape: tuple[int, ...], out_c: int, k: int, pad: int) -> Callable[[], Step]:
    def factory() -> Step:
        x, w, b, gy = (nt.tensor(a) for a in _arrays(shape, out_c, k, pad))
        params = [x, w, b]
        for p in params:
            p.requires_grad = True

        def step() -> None:
            for p in params:
                p.grad = None
            y = F.conv2d(x, w, b, padding=pad)
            nt.autograd.backward(y, gy)

        return step

    return factory


def conv_torch(shape: tuple[int, ...], out_c: int, k: int, pad: int) -> Callable[[], Step]:
    def factory() -> Step:
        torch = load_torch()
        x, w, b, gy = (torch.from_numpy(a) for a in _arrays(shape, out_c, k, pad))
        params = [x, w, b]
        for p in params:
            p.requires_grad_(True)

        def step() -> None:
            for p in params:
                p.grad = None
            y = torch.nn.functional.conv2d(x, w, b, padding=pad)
            y.backward(gy)

        return step

    return factory


def pool_factory(lib: str) -> Step:
    shape = (64, 32, 26, 26)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    gy = rng.standard_normal((64, 32, 13, 13), dtype=np.float32)
    if lib == "torch":
        torch = load_torch()
        tx, tg = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(gy)

        def torch_step() -> None:
            tx.grad = None
            torch.nn.functional.max_pool2d(tx, 2).backward(tg)

        return torch_step
    nx, ng = nt.tensor(x), nt.tensor(gy)
    nx.requires_grad = True

    def step() -> None:
        nx.grad = None
        nt.autograd.backward(F.max_pool2d(nx, 2), ng)

    return step


def _name(shape: tuple[int, ...], out_c: int, k: int, pad: int) -> str:
    return f"conv2d {shape} -> {out_c} {k}x{k}" + (f" pad {pad}" if pad else "")


CASES: list[Any] = [
    Case(_name(*s), conv_nurinet(*s), conv_torch(*s), iters=5, quick_iters=1,
         note="forward + backward (input, weight, bias gradients), float32")
    for s in SHAPES
] + [Case("max_pool2d (64, 32, 26, 26) 2x2", lambda: pool_factory("nurinet"), lambda: pool_factory("torch"),
          iters=10, quick_iters=1, note="forward + backward, float32")]

if __name__ == "__main__":
    main("conv", "conv2d forward + backward against PyTorch", CASES)
