"""L-BFGS, a mirror of ``torch.optim.LBFGS``: the same arguments, closure and iterates."""

from __future__ import annotations

from typing import Any

from nurinet.optim.batch_optimizer import Closure, _BatchOptimizer
from nurinet.optim.flat_params import dot, max_abs, sum_abs
from nurinet.optim.line_search import strong_wolfe
from nurinet.optim.optimizer import ParamsT


class LBFGS(_BatchOptimizer):
    """Limited-memory BFGS (Nocedal & Wright, algorithms 7.4 and 7.5), as PyTorch runs it.

    Each ``step(closure)`` evaluates the closure at the current point and then makes
    up to ``max_iter`` iterations on the flat parameter vector ``x`` with gradient
    ``g``; the state (the last direction and step, the pairs ``(s, y)``, ``H_diag``)
    carries over from step to step::

        first iteration ever:  d = -g,  H_diag = 1
        otherwise:             y = g - g_prev,  s = t d
                               if y.s > 1e-10: keep (s, y) (the oldest dropped past
                                   history_size), rho = 1 / y.s, H_diag = y.s / y.y
                               d = -H g by the two-loop recursion:
                                   q = -g
                                   for i newest to oldest: a_i = rho_i s_i.q;  q -= a_i y_i
                                   r = H_diag q
                                   for i oldest to newest: b = rho_i y_i.r;  r += (a_i - b) s_i
                                   d = r
        t = min(1, 1 / sum|g|) lr on the very first iteration, lr afterwards
        stop if g.d > -tolerance_change
        line_search_fn="strong_wolfe": t from nurinet.optim.line_search.strong_wolfe
                                       (c1 = 1e-4, c2 = 0.9), f and g from the search
        line_search_fn=None: a fixed step; f and g re-evaluated (except after the last iteration)
        x = x + t d
        stop when max_iter or max_eval is reached, max|g| <= tolerance_grad,
            max|t d| <= tolerance_change or |f - f_prev| < tolerance_change

    Like PyTorch's, it keeps ``history_size`` pairs of flat vectors (memory of about
    ``2 * history_size + 3`` copies of the parameters) and needs all parameters in
    one group, of one dtype on one device.

    The closure clears the gradients, computes the loss, calls ``loss.backward()``
    and returns the loss::

        def closure():
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            return loss

        optimizer.step(closure)

    Args:
        params: The parameters to optimize (one group).
        lr: Learning rate: the step length (the line search's first trial).
        max_iter: The most iterations per ``step``.
        max_eval: The most closure evaluations per ``step`` (default ``max_iter * 5 // 4``).
        tolerance_grad: Stop when the largest gradient entry is at most this.
        tolerance_change: Stop when the loss or the parameters change by less than this.
        history_size: The number of ``(s, y)`` pairs kept.
        line_search_fn: ``"strong_wolfe"`` or None (a fixed step of ``lr``).
    """

    def __init__(self, params: ParamsT, lr: float = 1, max_iter: int = 20,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100,
                 line_search_fn: str | None = None) -> None:
        if max_eval is None and isinstance(max_iter, int) and not isinstance(max_iter, bool):
            max_eval = max_iter * 5 // 4
        defaults = {"lr": lr, "max_iter": max_iter, "max_eval": max_eval,
                    "tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change,
                    "history_size": history_size, "line_search_fn": line_search_fn}
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        self._check_non_negative(group, "lr", "tolerance_grad", "tolerance_change")
        for name in ("max_iter", "max_eval", "history_size"):
            self._check_count(group, name)
        self._check_choice(group, "line_search_fn", (None, "strong_wolfe"))

    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        """One L-BFGS step: up to ``max_iter`` iterations; returns the closure's first loss."""
        closure = self._require_closure(closure)
        group = self.param_groups[0]
        state = self.flat_state
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss, loss = self._evaluate(closure)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat.gather_grad()
        if max_abs(flat_grad) <= group["tolerance_grad"]:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        prev_flat_grad = state.get("prev_flat_grad")
        n_iter = 0
        while n_iter < group["max_iter"]:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                state.update(old_dirs=[], old_stps=[], ro=[], H_diag=1.0)
            else:
                d = self._direction(state, flat_grad, prev_flat_grad, d, t, group["history_size"])
            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                prev_flat_grad[...] = flat_grad
            prev_loss = loss
            state["prev_loss"] = prev_loss

            t = min(1.0, 1.0 / sum_abs(flat_grad)) * group["lr"] if state["n_iter"] == 1 else group["lr"]
            gtd = dot(flat_grad, d)
            if gtd > -group["tolerance_change"]:
                break

            if group["line_search_fn"] is not None:
                x_init = self._flat.clone()
                result = strong_wolfe(
                    lambda x, step, direction: self._directional_evaluate(closure, x, step, direction),
                    x_init, t, d, loss, flat_grad, gtd, max_ls=group["max_eval"] - current_evals)
                loss, flat_grad, t, ls_func_evals = result
                self._flat.add_(t, d)
                opt_cond = max_abs(flat_grad) <= group["tolerance_grad"]
            else:
                self._flat.add_(t, d)
                ls_func_evals, opt_cond = 0, False
                if n_iter != group["max_iter"]:
                    # Not after the last iteration: the next step evaluates the closure anyway.
                    _, loss = self._evaluate(closure)
                    flat_grad = self._flat.gather_grad()
                    opt_cond = max_abs(flat_grad) <= group["tolerance_grad"]
                    ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            if self._done(group, n_iter, current_evals, opt_cond, d, t, loss, prev_loss):
                break

        state.update(d=d, t=t, prev_flat_grad=prev_flat_grad)
        return orig_loss

    @staticmethod
    def _done(group: dict[str, Any], n_iter: int, current_evals: int, opt_cond: bool, d: Any,
              t: float, loss: float, prev_loss: float) -> bool:
        """PyTorch's stopping tests after an iteration, in its order."""
        return (n_iter == group["max_iter"] or current_evals >= group["max_eval"] or opt_cond
                or max_abs(d) * abs(t) <= group["tolerance_change"]
                or abs(loss - prev_loss) < group["tolerance_change"])

    @staticmethod
    def _direction(state: dict[str, Any], flat_grad: Any, prev_flat_grad: Any, d: Any, t: float,
                   history_size: int) -> Any:
        """Update the ``(s, y)`` memory and return ``-H g`` by the two-loop recursion."""
        y = flat_grad - prev_flat_grad
        s = d * t
        ys = dot(y, s)
        old_dirs, old_stps, ro = state["old_dirs"], state["old_stps"], state["ro"]
        if ys > 1e-10:
            if len(old_dirs) == history_size:
                old_dirs.pop(0)
                old_stps.pop(0)
                ro.pop(0)
            old_dirs.append(y)
            old_stps.append(s)
            ro.append(1.0 / ys)
            state["H_diag"] = ys / dot(y, y)
        al = [0.0] * len(old_dirs)
        q = -flat_grad
        for i in range(len(old_dirs) - 1, -1, -1):
            al[i] = dot(old_stps[i], q) * ro[i]
            q -= al[i] * old_dirs[i]
        r = q * state["H_diag"]
        for i in range(len(old_dirs)):
            be_i = dot(old_dirs[i], r) * ro[i]
            r += (al[i] - be_i) * old_stps[i]
        return r
