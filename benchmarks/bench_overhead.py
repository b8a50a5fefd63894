"""Per-op overhead of nurinet's autograd against PyTorch on tiny tensors.

With tensors this small the arithmetic costs nothing; what is measured is the
framework: creating tensors and graph nodes, the backward engine's bookkeeping,
and Python calls. Cases:

* a chain of 50 elementwise ops on a (16,) float32 tensor, forward + backward;
* one training step of a 2-8-1 XOR network (batch 4, tanh hidden layer, sigmoid
  output, MSE loss, plain SGD with lr 0.5 as in-place updates), in steps/s;
* back-propagation through a wide graph (8,000 branches joined by a tree of
  additions) and through a chain of 10,000 ops (graph built untimed).

Run ``python benchmarks/bench_overhead.py`` (``--quick`` for a smoke run,
``--no-torch`` for nurinet alone); it prints a Markdown table and writes JSON
to benchmarks/results/overhead.json.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # Run from a checkout without installing nurinet.
    sys.path.insert(0, str(ROOT))

import numpy as np

import nurinet as nt
import nurinet.functional as F
from benchmarks.common import Case, Step, load_torch, main

CHAIN_OPS = 50
WIDE_BRANCHES = 8_000
LONG_CHAIN = 10_000
XOR_LR = 0.5


# ----- a chain of 50 small elementwise ops -------------------------------------------------
def _chain_op(lib: Any, i: int, y: Any) -> Any:
    """The i-th op of the chain: a cycle of sin, scale, tanh, shift, exp (values stay bounded)."""
    kind = i % 5
    if kind == 0:
        return lib.sin(y)
    if kind == 1:
        return y * 1.01
    if kind == 2:
        return lib.tanh(y)
    if kind == 3:
        return y + 0.1
    return lib.exp(y)


def chain_nurinet() -> Step:
    x = nt.tensor(np.linspace(-1, 1, 16, dtype=np.float32), requires_grad=True)

    def step() -> None:
        x.grad = None
        y = x
        for i in range(CHAIN_OPS):
            y = _chain_op(F, i, y)
        y.sum().backward()

    return step


def chain_torch() -> Step:
    torch = load_torch()
    x = torch.tensor(np.linspace(-1, 1, 16, dtype=np.float32), requires_grad=True)

    def step() -> None:
        x.grad = None
        y = x
        for i in range(CHAIN_OPS):
            y = _chain_op(torch, i, y)
        y.sum().backward()

    return step


# ----- the XOR training step -----------------------------------------------------------------
def xor_data() -> dict[str, np.ndarray]:
    """Inputs, targets and one initialization shared by both libraries (float32)."""
    rng = np.random.default_rng(0)
    return {
        "x": np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32),
        "y": np.array([[0], [1], [1], [0]], dtype=np.float32),
        "w1": rng.standard_normal((8, 2)).astype(np.float32),
        "b1": np.zeros(8, np.float32),
        "w2": (0.5 * rng.standard_normal((1, 8))).astype(np.float32),
        "b2": np.zeros(1, np.float32),
    }


def _sigmoid_nurinet() -> tuple[Any, str]:
    """nurinet's sigmoid op when the library has one, else the composite 1 / (1 + e^-z)."""
    if hasattr(F, "sigmoid"):
        return F.sigmoid, "F.sigmoid"
    return (lambda z: 1.0 / (1.0 + F.exp(-z))), "composite 1/(1+exp(-z)) (no F.sigmoid yet)"


def xor_nurinet(record: list[float] | None = None) -> Step:
    d = xor_data()
    x, y = nt.tensor(d["x"]), nt.tensor(d["y"])
    params = [nt.tensor(d[k], requires_grad=True) for k in ("w1", "b1", "w2", "b2")]
    w1, b1, w2, b2 = params
    sigmoid, _ = _sigmoid_nurinet()

    def step() -> None:
        prob = sigmoid(F.linear(F.tanh(F.linear(x, w1, b1)), w2, b2))
        loss = F.mse_loss(prob, y)
        for p in params:
            p.grad = None
        loss.backward()
        with nt.no_grad():
            for p in params:
                p.array -= XOR_LR * p.grad.array
        if record is not None:
            record.append(loss.item())

    return step


def xor_torch(record: list[float] | None = None) -> Step:
    torch = load_torch()
    tf = torch.nn.functional
    d = xor_data()
    x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
    params = [torch.tensor(d[k], requires_grad=True) for k in ("w1", "b1", "w2", "b2")]
    w1, b1, w2, b2 = params

    def step() -> None:
        prob = torch.sigmoid(tf.linear(torch.tanh(tf.linear(x, w1, b1)), w2, b2))
        loss = tf.mse_loss(prob, y)
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= XOR_LR * p.grad
        if record is not None:
            record.append(loss.item())

    return step


def xor_agreement(steps: int = 300) -> dict[str, Any]:
    """Train both from the same start; the losses must agree (same model, same maths)."""
    ours: list[float] = []
    step = xor_nurinet(ours)
    for _ in range(steps):
        step()
    result: dict[str, Any] = {"steps": steps, "nurinet_final_loss": ours[-1]}
    if load_torch() is not None:
        theirs: list[float] = []
        step = xor_torch(theirs)
        for _ in range(steps):
            step()
        result["torch_final_loss"] = theirs[-1]
        result["max_abs_loss_difference"] = float(np.max(np.abs(np.subtract(ours, theirs))))
    return result


# ----- wide and long graphs: backward time only -------------------------------------------------
def _wide_graph(lib: Any, x: Any) -> Any:
    """8,000 branches ``x * c_i`` joined by a balanced tree of additions, then summed."""
    level = [x * (1.0 + 1e-4 * i) for i in range(WIDE_BRANCHES)]
    while len(level) > 1:
        pairs = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0].sum()


def _long_chain(lib: Any, x: Any) -> Any:
    """10,000 ops alternating a scale and a shift, then summed."""
    y = x
    for i in range(LONG_CHAIN):
        y = y * 0.9999 if i % 2 else y + 1e-4
    return y.sum()


def _timed_backward(make_leaf: Any, build: Any) -> Step:
    """A step that builds the graph untimed and returns the seconds its backward took."""
    x = make_leaf()

    def step() -> float:
        x.grad = None
        root = build(x)
        start = time.perf_counter()
        root.backward()
        elapsed = time.perf_counter() - start
        del root
        return elapsed

    return step


def _leaf_nurinet() -> Any:
    return nt.tensor(np.ones(16, np.float32), requires_grad=True)


def _leaf_torch() -> Any:
    return load_torch().ones(16, requires_grad=True)


def wide_nurinet() -> Step:
    return _timed_backward(_leaf_nurinet, lambda x: _wide_graph(F, x))


def wide_torch() -> Step:
    return _timed_backward(_leaf_torch, lambda x: _wide_graph(load_torch(), x))


def long_nurinet() -> Step:
    return _timed_backward(_leaf_nurinet, lambda x: _long_chain(F, x))


def long_torch() -> Step:
    return _timed_backward(_leaf_torch, lambda x: _long_chain(load_torch(), x))


CASES = [
    Case(f"chain of {CHAIN_OPS} elementwise ops, (16,) f32, fwd+bwd", chain_nurinet, chain_torch,
         iters=200, quick_iters=20,
         note="sin, *1.01, tanh, +0.1, exp repeated, then sum().backward(); time per pass"),
    Case("XOR 2-8-1 training step (batch 4)", xor_nurinet, xor_torch, iters=200, quick_iters=20,
         per_second=True,
         note=f"forward, MSE (each library's fused mse_loss), backward, SGD lr {XOR_LR} in place; nurinet sigmoid: "
              f"{_sigmoid_nurinet()[1]}; PyTorch: torch.sigmoid"),
    Case(f"wide graph, {WIDE_BRANCHES:,} branches: backward", wide_nurinet, wide_torch,
         iters=3, quick_iters=1,
         note=f"{WIDE_BRANCHES:,} muls joined by {WIDE_BRANCHES - 1:,} adds; graph built untimed"),
    Case(f"chain of {LONG_CHAIN:,} ops: backward", long_nurinet, long_torch, iters=3, quick_iters=1,
         note="alternating *0.9999 and +1e-4 on (16,) f32; graph built untimed"),
]


def run(argv: list[str] | None = None) -> None:
    agreement = xor_agreement()
    main("overhead", __doc__.splitlines()[0], CASES, argv, extra={"xor_agreement": agreement})
    if "torch_final_loss" in agreement:
        print(f"XOR check: after {agreement['steps']} steps the loss is "
              f"{agreement['nurinet_final_loss']:.6f} (nurinet) vs "
              f"{agreement['torch_final_loss']:.6f} (PyTorch); largest per-step difference "
              f"{agreement['max_abs_loss_difference']:.2e}")


if __name__ == "__main__":
    run()
