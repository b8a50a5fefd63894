"""Batch optimizers on smooth problems: evaluations and seconds to a relative gap of 1e-6.

Problems (float64):

* ``digits logistic regression``: multinomial logistic regression on the bundled 8x8
  digits (1,797 images, features standardized), mean cross-entropy plus
  ``1e-3 / 2 |W|^2``, 650 parameters started at zero;
* ``Rosenbrock 2-D`` from (-1.2, 1) and ``Rosenbrock 100-D`` (the chained form,
  ``sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2``) from (-1.2, 1, -1.2, 1, ...).

Methods: nurinet's ``LBFGS`` (strong Wolfe), ``ConjugateGradient`` (PR+) and
``LineGradientDescent`` (and ``HessianFree`` on the logistic regression), SciPy's
``minimize`` with ``L-BFGS-B`` and ``CG``, and ``torch.optim.LBFGS`` (strong Wolfe, the
same settings as nurinet's). Each run counts evaluations of the objective and its
gradient (one closure call or one SciPy ``fun`` call) and stops at the first
evaluated point whose relative gap ``(f - f*) / (f0 - f*)`` is at most 1e-6; ``f*`` is
0 for Rosenbrock and, for the logistic regression, the best of a SciPy L-BFGS-B run
with tolerances at their floor and a long nurinet L-BFGS run. The seconds are the
median over ``--rounds`` runs of the wall time to that evaluation (the evaluation
counts do not vary), after one untimed run. SciPy's objective is hand-written NumPy with its analytic
gradient; nurinet's and PyTorch's are computed by their autograd. Every library runs on one
thread (``THREAD_SETTINGS``, applied when the script is run).

Run ``python benchmarks/bench_convex.py`` (``--quick`` for one round, ``--no-torch``,
``--only TEXT`` to pick problems); it prints a Markdown table and writes
benchmarks/results/convex.json. SciPy and PyTorch are optional: without them their
rows are left out.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # Run from a checkout without installing nurinet.
    sys.path.insert(0, str(ROOT))
# One thread for every library, set before NumPy loads: the problems are small, and on a 2-core VM
# the idle threads of SciPy's own OpenBLAS spun against NumPy's and slowed every objective 5-10x.
THREAD_SETTINGS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "NURINET_NUM_THREADS": "1"}
if __name__ == "__main__":
    for _name, _value in THREAD_SETTINGS.items():
        os.environ.setdefault(_name, _value)

import numpy as np

import nurinet as nt
import nurinet.functional as F
from benchmarks.common import (
    RESULTS_DIR,
    environment,
    format_seconds,
    load_torch,
    parse_args,
)

TARGET_GAP = 1e-6
MAX_EVALS = 20_000
ALPHA = 1e-3  # the L2 weight of the logistic regression


class Reached(Exception):
    """Raised inside an objective when the target gap is reached: it ends the run at once."""


@dataclass
class Problem:
    """A problem: its start, its optimum value, and its objective in each library."""

    name: str
    start: list[np.ndarray]
    optimum: float
    numpy_fun: Callable[[np.ndarray], tuple[float, np.ndarray]]  # flat theta -> (f, g), for SciPy
    nurinet_loss: Callable[[list[Any]], Any]
    torch_loss: Callable[[Any, list[Any]], Any]


class Counter:
    """Counts evaluations, and stops the run (:class:`Reached`) at the first one within the target gap."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.f0 = problem.numpy_fun(np.concatenate([a.ravel() for a in problem.start]))[0]
        self.evals = 0
        self.best_gap = float("inf")
        self.started = time.perf_counter()
        self.seconds: float | None = None
        self.products = 0  # Hessian-free's curvature-vector products (not counted as evaluations)

    def saw(self, f: float) -> None:
        self.evals += 1
        gap = (f - self.problem.optimum) / (self.f0 - self.problem.optimum)
        self.best_gap = min(self.best_gap, gap)
        if gap <= TARGET_GAP:
            self.seconds = time.perf_counter() - self.started
            raise Reached
        if self.evals >= MAX_EVALS:
            raise Reached


# ----- the problems ---------------------------------------------------------------------------
def digits_data() -> tuple[np.ndarray, np.ndarray]:
    x, y = nt.data.load_digits(normalize=True)
    x = x.astype(np.float64)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    return (x - x.mean(axis=0)) / scale, y


def logistic_problem(torch: Any) -> Problem:
    x, y = digits_data()
    onehot = np.eye(10)[y]
    xn, yn = nt.tensor(x), nt.tensor(y)
    xt, yt = (torch.tensor(x), torch.tensor(y)) if torch is not None else (None, None)

    def numpy_fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:640].reshape(64, 10), theta[640:]
        z = x @ w + b
        z = z - z.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(z).sum(axis=1))
        p = np.exp(z - log_norm[:, None])
        gz = (p - onehot) / len(x)
        loss = (log_norm - (z * onehot).sum(axis=1)).mean() + ALPHA / 2 * (w**2).sum()
        return float(loss), np.concatenate([(x.T @ gz + ALPHA * w).ravel(), gz.sum(axis=0)])

    def nurinet_loss(p: list[Any]) -> Any:
        return F.cross_entropy(xn @ p[0] + p[1], yn) + (ALPHA / 2) * (p[0] * p[0]).sum()

    def torch_loss(torch: Any, p: list[Any]) -> Any:
        return torch.nn.functional.cross_entropy(xt @ p[0] + p[1], yt) + (ALPHA / 2) * (p[0] * p[0]).sum()

    start = [np.zeros((64, 10)), np.zeros(10)]
    problem = Problem("digits logistic regression", start, 0.0, numpy_fun, nurinet_loss, torch_loss)
    problem.optimum = logistic_optimum(problem)
    return problem


def logistic_optimum(problem: Problem) -> float:
    """The lowest value found by SciPy's L-BFGS-B at its tolerance floor and by a long nurinet L-BFGS run."""
    params = [nt.Parameter(a.copy()) for a in problem.start]
    opt = nt.optim.LBFGS(params, line_search_fn="strong_wolfe", max_iter=3000, max_eval=4000,
                         tolerance_grad=1e-12, tolerance_change=1e-15)
    opt.step(lambda: _backward(opt, problem.nurinet_loss(params)))
    best = problem.numpy_fun(np.concatenate([p.array.ravel() for p in params]))[0]
    scipy_optimize = _scipy_optimize()
    if scipy_optimize is not None:
        result = scipy_optimize.minimize(problem.numpy_fun, np.zeros(650), jac=True, method="L-BFGS-B",
                                         options={"maxiter": 20_000, "ftol": 1e-16, "gtol": 1e-12})
        best = min(best, float(result.fun))
    return best


def rosenbrock_problem(torch: Any, n: int) -> Problem:
    def numpy_fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        inner = x[1:] - x[:-1] ** 2
        f = float((100 * inner**2 + (1 - x[:-1]) ** 2).sum())
        g = np.zeros_like(x)
        g[:-1] = -400 * x[:-1] * inner - 2 * (1 - x[:-1])
        g[1:] += 200 * inner
        return f, g

    def loss(p: list[Any]) -> Any:
        x = p[0]
        return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()

    start = np.tile([-1.2, 1.0], n // 2)
    return Problem(f"Rosenbrock {n}-D", [start], 0.0, numpy_fun, loss, lambda torch, p: loss(p))


# ----- the methods ------------------------------------------------------------------------------
def _backward(opt: Any, loss: Any) -> Any:
    opt.zero_grad()
    loss.backward()
    return loss


def run_nurinet(problem: Problem, factory: Callable[[list[Any]], Any]) -> Counter:
    params = [nt.Parameter(a.copy()) for a in problem.start]
    opt = factory(params)
    counter = Counter(problem)

    def closure() -> Any:
        loss = problem.nurinet_loss(params)
        counter.saw(loss.item())
        return _backward(opt, loss)

    try:
        for _ in range(MAX_EVALS):
            opt.step(closure)
    except Reached:
        pass
    return counter


def run_hessian_free(problem: Problem) -> Counter:
    """HessianFree on the logistic regression, Gauss-Newton on the logits (its matched output)."""
    x, y = digits_data()
    xn, yn = nt.tensor(x), nt.tensor(y)
    params = [nt.Parameter(a.copy()) for a in problem.start]
    opt = nt.optim.HessianFree(params)
    counter = Counter(problem)

    def closure() -> Any:
        logits = xn @ params[0] + params[1]
        loss = F.cross_entropy(logits, yn) + (ALPHA / 2) * (params[0] * params[0]).sum()
        counter.saw(loss.item())
        return loss, logits

    try:
        for _ in range(MAX_EVALS):
            opt.step(closure)
    except Reached:
        pass
    counter.products = opt.flat_state.get("curvature_products", 0)
    return counter


def run_torch(problem: Problem, torch: Any) -> Counter:
    params = [torch.tensor(a.copy(), requires_grad=True) for a in problem.start]
    opt = torch.optim.LBFGS(params, line_search_fn="strong_wolfe", max_iter=MAX_EVALS, max_eval=MAX_EVALS,
                            tolerance_grad=0.0, tolerance_change=0.0)
    counter = Counter(problem)

    def closure() -> Any:
        opt.zero_grad()
        loss = problem.torch_loss(torch, params)
        counter.saw(loss.item())
        loss.backward()
        return loss

    try:
        opt.step(closure)
    except Reached:
        pass
    return counter


def run_scipy(problem: Problem, method: str) -> Counter:
    scipy_optimize = _scipy_optimize()
    counter = Counter(problem)

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = problem.numpy_fun(theta)
        counter.saw(f)
        return f, g

    options = {"maxiter": MAX_EVALS, "gtol": 0.0}
    if method == "L-BFGS-B":
        options["ftol"] = 0.0
    try:
        scipy_optimize.minimize(fun, np.concatenate([a.ravel() for a in problem.start]), jac=True,
                                method=method, options=options)
    except Reached:
        pass
    return counter


def _scipy_optimize() -> Any:
    try:
        import scipy.optimize
    except ImportError:
        return None
    return scipy.optimize


def methods(problem: Problem, torch: Any) -> dict[str, Callable[[], Counter]]:
    """The runs of one problem, by label (SciPy's and PyTorch's only when installed)."""
    optim = nt.optim
    unbounded = {"max_iter": MAX_EVALS, "max_eval": MAX_EVALS, "tolerance_grad": 0.0, "tolerance_change": 0.0}
    runs = {
        "nurinet LBFGS (strong Wolfe)": lambda: run_nurinet(
            problem, lambda p: optim.LBFGS(p, line_search_fn="strong_wolfe", **unbounded)),
        "nurinet ConjugateGradient (PR+)": lambda: run_nurinet(
            problem, lambda p: optim.ConjugateGradient(p, **unbounded)),
        "nurinet LineGradientDescent": lambda: run_nurinet(
            problem, lambda p: optim.LineGradientDescent(p, **unbounded)),
    }
    if problem.name.startswith("digits"):
        runs["nurinet HessianFree (Gauss-Newton)"] = lambda: run_hessian_free(problem)
    if _scipy_optimize() is not None:
        runs["SciPy L-BFGS-B"] = lambda: run_scipy(problem, "L-BFGS-B")
        runs["SciPy CG"] = lambda: run_scipy(problem, "CG")
    if torch is not None:
        runs["torch.optim.LBFGS (strong Wolfe)"] = lambda: run_torch(problem, torch)
    return runs


# ----- measuring and reporting --------------------------------------------------------------------
def measure(problem: Problem, torch: Any, rounds: int, warmup: int) -> list[dict[str, Any]]:
    rows = []
    for label, run in methods(problem, torch).items():
        for _ in range(warmup):  # untimed: first calls pay for imports and caches
            run()
        counters = [run() for _ in range(rounds)]
        seconds = [c.seconds for c in counters if c.seconds is not None]
        rows.append({"problem": problem.name, "method": label, "evaluations": counters[0].evals,
                     "curvature_products": counters[0].products,
                     "reached": counters[0].seconds is not None,
                     "seconds_median": statistics.median(seconds) if seconds else None,
                     "seconds_all": seconds, "best_gap": counters[0].best_gap})
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| problem | method | evaluations to gap 1e-6 | seconds (median) |", "|---|---|---|---|"]
    for row in rows:
        evals = f"{row['evaluations']:,}" if row["reached"] else f"not reached in {row['evaluations']:,} " \
                                                                  f"(gap {row['best_gap']:.1e})"
        if row["curvature_products"]:
            evals += f" (+ {row['curvature_products']:,} Gauss-Newton products)"
        seconds = format_seconds(row["seconds_median"]) if row["reached"] else "-"
        lines.append(f"| {row['problem']} | {row['method']} | {evals} | {seconds} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(__doc__.splitlines()[0], argv)
    torch = None if args.no_torch else load_torch()
    if torch is not None:
        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    rounds = 1 if args.quick else args.rounds
    builders = [lambda: logistic_problem(torch), lambda: rosenbrock_problem(torch, 2),
                lambda: rosenbrock_problem(torch, 100)]
    names = ["digits logistic regression", "Rosenbrock 2-D", "Rosenbrock 100-D"]
    rows = []
    for name, build in zip(names, builders):
        if args.only and args.only.lower() not in name.lower():
            continue
        rows += measure(build(), torch, rounds, warmup=min(args.warmup, 1))
    print(markdown(rows))
    path = args.json or RESULTS_DIR / "convex.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"benchmark": "convex", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                "settings": {"rounds": rounds, "target_gap": TARGET_GAP, "max_evals": MAX_EVALS},
                                "environment": environment(), "results": rows}, indent=2) + "\n")
    print(f"\nJSON written to {path}")
    return rows


if __name__ == "__main__":
    main()
