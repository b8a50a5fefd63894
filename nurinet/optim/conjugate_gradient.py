"""Nonlinear conjugate gradient (Deeplearning4j's CONJUGATE_GRADIENT) with a strong Wolfe line search."""

from __future__ import annotations

import math
from typing import Any

from nurinet.names import name_key
from nurinet.optim.flat_params import dot
from nurinet.optim.line_search_method import _LineSearchMethod
from nurinet.optim.optimizer import ParamsT

# Each formula by its names, normalized by nurinet.names.name_key ("PR+" is "pr").
BETA_FORMULAS = {
    "fletcherreeves": "fletcher_reeves", "fr": "fletcher_reeves",
    "polakribiere": "polak_ribiere", "polakribiereplus": "polak_ribiere", "pr": "polak_ribiere",
    "prplus": "polak_ribiere",
    "hestenesstiefel": "hestenes_stiefel", "hs": "hestenes_stiefel",
    "daiyuan": "dai_yuan", "dy": "dai_yuan",
}


class ConjugateGradient(_LineSearchMethod):
    """Nonlinear conjugate gradient (Nocedal & Wright, section 5.2) on the flat parameter vector.

    With ``g`` the gradient now, ``g_prev`` and ``d_prev`` those of the last iteration
    and ``y = g - g_prev``, the direction is ``d = -g + beta d_prev`` with::

        fletcher_reeves   beta = g.g / g_prev.g_prev
        polak_ribiere     beta = max(0, g.y / g_prev.g_prev)        (PR+, the default)
        hestenes_stiefel  beta = g.y / d_prev.y
        dai_yuan          beta = g.g / d_prev.y

    and ``d = -g`` (a restart) on the first iteration, every ``restart`` iterations,
    when ``beta`` is not finite, and when ``d`` is not a descent direction
    (``g.d >= 0``). The step length comes from a line search
    (``nurinet.optim.line_search``): strong Wolfe with ``c2 = 0.1`` by default, as
    Nocedal & Wright advise for conjugate gradient (section 5.2), whose first trial
    matches the last step's first-order decrease (their eq. 3.60); see the loop in
    :class:`nurinet.optim.line_search_method._LineSearchMethod`.

    ``step(closure)`` takes the closure of :class:`LBFGS` (clear the gradients,
    compute the loss, ``loss.backward()``, return the loss) and makes ``max_iter``
    iterations, one by default: one direction and its line search per step, as
    Deeplearning4j counts iterations.

    Args:
        params: The parameters to optimize (one group, one dtype, one device).
        lr: Scales the very first trial step, ``min(1, 1 / sum|g|) lr``.
        max_iter: Iterations per ``step``.
        max_eval: The most closure evaluations per ``step`` (default ``1 + 25 max_iter``).
        tolerance_grad: Stop when the largest gradient entry is at most this.
        tolerance_change: Stop when the loss or the parameters change by less than this.
        beta: ``"polak_ribiere"`` (PR+), ``"fletcher_reeves"``, ``"hestenes_stiefel"`` or
            ``"dai_yuan"`` (also ``"PR+"``, ``"FR"``, ``"HS"``, ``"DY"``).
        restart: Restart along ``-g`` every this many iterations (default: the number of
            parameters, as for a quadratic).
        line_search_fn: ``"strong_wolfe"`` or ``"backtracking"`` (Armijo).
        c1: Sufficient-decrease constant of the line search.
        c2: Curvature constant of the strong Wolfe search.
    """

    def __init__(self, params: ParamsT, lr: float = 1.0, max_iter: int = 1,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, beta: str = "polak_ribiere",
                 restart: int | None = None, line_search_fn: str = "strong_wolfe",
                 c1: float = 1e-4, c2: float = 0.1) -> None:
        defaults = self._common_defaults(lr, max_iter, max_eval, tolerance_grad, tolerance_change,
                                         line_search_fn, c1, c2)
        defaults.update(beta=beta, restart=restart)
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        if not isinstance(group["beta"], str) or name_key(group["beta"]) not in BETA_FORMULAS:
            raise ValueError(f"ConjugateGradient: invalid beta={group['beta']!r}: it must be one of "
                             "'polak_ribiere', 'fletcher_reeves', 'hestenes_stiefel', 'dai_yuan'")
        if group["restart"] is not None:
            self._check_count(group, "restart")

    def _direction(self, state: dict[str, Any], flat_grad: Any, group: dict[str, Any]) -> Any:
        d_prev, g_prev = state.get("d"), state.get("prev_flat_grad")
        restart = group["restart"] or self._flat.numel
        if d_prev is None or state.get("since_restart", 0) >= restart:
            state["since_restart"] = 0
            return -flat_grad
        beta = _beta(_formula(group["beta"]), flat_grad, g_prev, d_prev)
        if not math.isfinite(beta):  # NaN or inf: a degenerate step
            state["since_restart"] = 0
            return -flat_grad
        return beta * d_prev - flat_grad


def _formula(beta: str) -> str:
    return BETA_FORMULAS[name_key(beta)]


def _beta(formula: str, g: Any, g_prev: Any, d_prev: Any) -> float:
    """The conjugate gradient's ``beta`` by ``formula`` (NaN when its denominator is 0)."""
    y = g - g_prev
    if formula == "fletcher_reeves":
        numerator, denominator = dot(g, g), dot(g_prev, g_prev)
    elif formula == "polak_ribiere":
        numerator, denominator = dot(g, y), dot(g_prev, g_prev)
    elif formula == "hestenes_stiefel":
        numerator, denominator = dot(g, y), dot(d_prev, y)
    else:  # dai_yuan
        numerator, denominator = dot(g, g), dot(d_prev, y)
    if denominator == 0.0:
        return float("nan")
    beta = numerator / denominator
    return max(beta, 0.0) if formula == "polak_ribiere" else beta
