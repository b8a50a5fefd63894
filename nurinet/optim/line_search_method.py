"""The loop shared by conjugate gradient and line gradient descent: a direction, then a line search."""

from __future__ import annotations

import math
from typing import Any

from nurinet.optim.batch_optimizer import Closure, _BatchOptimizer
from nurinet.optim.flat_params import dot, max_abs, sum_abs
from nurinet.optim.line_search import (
    LineSearchResult,
    backtracking_armijo,
    strong_wolfe,
)

MAX_LS = 25  # evaluations per line search, as PyTorch's strong Wolfe search allows
LINE_SEARCHES = ("strong_wolfe", "backtracking")


class _LineSearchMethod(_BatchOptimizer):
    """Iterations of ``x = x + t d``: a subclass gives ``d``, a line search gives ``t``.

    Each ``step(closure)`` evaluates the closure at the current point, then makes up
    to ``max_iter`` iterations::

        d = direction(g)                  (a subclass's rule; -g if it is not a descent direction)
        stop if g.d > -tolerance_change
        t0 = min(1, 1 / sum|g|) lr        on the very first iteration
        t0 = t_prev (g_prev.d_prev) / (g.d)  afterwards (Nocedal & Wright, eq. 3.60: the same
                                          first-order decrease as the last step)
        t = line search from t0 (strong Wolfe with c1, c2, or backtracking Armijo with c1)
        x = x + t d
        stop when max_eval is reached, max|g| <= tolerance_grad, max|t d| <= tolerance_change
            or |f - f_prev| < tolerance_change

    The direction's memory (``d``, ``g``, ``t``, ``g.d``) is kept in the state, so the
    next ``step`` continues the same sequence.
    """

    def _common_defaults(self, lr: float, max_iter: int, max_eval: int | None, tolerance_grad: float,
                         tolerance_change: float, line_search_fn: str, c1: float,
                         c2: float) -> dict[str, Any]:
        if max_eval is None and isinstance(max_iter, int) and not isinstance(max_iter, bool):
            max_eval = 1 + MAX_LS * max_iter
        return {"lr": lr, "max_iter": max_iter, "max_eval": max_eval,
                "tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change,
                "line_search_fn": line_search_fn, "c1": c1, "c2": c2}

    def _validate(self, group: dict[str, Any]) -> None:
        self._check_non_negative(group, "lr", "tolerance_grad", "tolerance_change")
        for name in ("max_iter", "max_eval"):
            self._check_count(group, name)
        self._check_choice(group, "line_search_fn", LINE_SEARCHES)
        c1, c2 = self._number(group, "c1"), self._number(group, "c2")
        if not 0.0 < c1 < c2 < 1.0:
            raise ValueError(f"{type(self).__name__}: the line search needs 0 < c1 < c2 < 1, got "
                             f"c1={group['c1']!r}, c2={group['c2']!r}")

    def _direction(self, state: dict[str, Any], flat_grad: Any, group: dict[str, Any]) -> Any:
        """The search direction at gradient ``flat_grad`` (state holds the last ``d``, ``g``, ``t``)."""
        raise NotImplementedError

    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        """Up to ``max_iter`` iterations of a direction and its line search; returns the first loss."""
        closure = self._require_closure(closure)
        group, state = self.param_groups[0], self.flat_state
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss, loss = self._evaluate(closure)
        evals = 1
        flat_grad = self._flat.gather_grad()
        for _ in range(group["max_iter"]):
            if max_abs(flat_grad) <= group["tolerance_grad"]:
                break
            d = self._direction(state, flat_grad, group)
            gtd = dot(flat_grad, d)
            if gtd >= 0:  # not a descent direction: restart along the gradient
                d, gtd = -flat_grad, -dot(flat_grad, flat_grad)
                state["since_restart"] = 0
            if gtd > -group["tolerance_change"]:
                break
            state["n_iter"] += 1
            result = self._line_search(closure, group, state, d, loss, flat_grad, gtd,
                                       group["max_eval"] - evals)
            evals += result.evals
            self._flat.add_(result.step, d)
            state.update(d=d, t=result.step, gtd=gtd, prev_flat_grad=flat_grad)
            state["since_restart"] = state.get("since_restart", 0) + 1
            prev_loss, loss, flat_grad = loss, result.loss, result.grad
            if (result.step == 0.0 or evals >= group["max_eval"]
                    or max_abs(d) * abs(result.step) <= group["tolerance_change"]
                    or abs(loss - prev_loss) < group["tolerance_change"]):
                break
        state["func_evals"] += evals
        return orig_loss

    def _initial_step(self, state: dict[str, Any], flat_grad: Any, gtd: float, lr: float) -> float:
        """The line search's first trial (Nocedal & Wright, eq. 3.60, after the first iteration)."""
        t_prev, gtd_prev = state.get("t"), state.get("gtd")
        if not t_prev or gtd_prev is None:
            return min(1.0, 1.0 / sum_abs(flat_grad)) * lr
        t = t_prev * gtd_prev / gtd
        return t if math.isfinite(t) and t > 0 else lr

    def _line_search(self, closure: Closure, group: dict[str, Any], state: dict[str, Any], d: Any,
                     loss: float, flat_grad: Any, gtd: float, budget: int) -> LineSearchResult:
        t = self._initial_step(state, flat_grad, gtd, group["lr"])
        x_init = self._flat.clone()

        def obj_func(x: Any, step: float, direction: Any) -> tuple[float, Any]:
            return self._directional_evaluate(closure, x, step, direction)

        max_ls = max(min(MAX_LS, budget - 1), 0)
        if group["line_search_fn"] == "backtracking":
            return backtracking_armijo(obj_func, x_init, t, d, loss, flat_grad, gtd, c1=group["c1"],
                                       max_ls=max_ls + 1)
        return strong_wolfe(obj_func, x_init, t, d, loss, flat_grad, gtd, c1=group["c1"],
                            c2=group["c2"], tolerance_change=group["tolerance_change"], max_ls=max_ls)
