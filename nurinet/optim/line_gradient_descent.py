"""Steepest descent with a line search (Deeplearning4j's LINE_GRADIENT_DESCENT)."""

from __future__ import annotations

from typing import Any

from nurinet.optim.line_search_method import _LineSearchMethod
from nurinet.optim.optimizer import ParamsT


class LineGradientDescent(_LineSearchMethod):
    """Gradient descent whose step length a line search chooses at every iteration.

    Each iteration moves along ``d = -g``; the step ``t`` comes from a line search
    (``nurinet.optim.line_search``): strong Wolfe (``c1 = 1e-4``, ``c2 = 0.9``) by
    default or backtracking Armijo, starting from ``min(1, 1 / sum|g|) lr`` on the
    first iteration and from ``t_prev (g_prev.d_prev) / (g.d)`` afterwards (Nocedal &
    Wright, eq. 3.60)::

        d = -g
        t = line search along d
        x = x + t d

    ``step(closure)`` takes the closure of :class:`LBFGS` (clear the gradients,
    compute the loss, ``loss.backward()``, return the loss) and makes ``max_iter``
    iterations, one by default.

    Args:
        params: The parameters to optimize (one group, one dtype, one device).
        lr: Scales the very first trial step.
        max_iter: Iterations per ``step``.
        max_eval: The most closure evaluations per ``step`` (default ``1 + 25 max_iter``).
        tolerance_grad: Stop when the largest gradient entry is at most this.
        tolerance_change: Stop when the loss or the parameters change by less than this.
        line_search_fn: ``"strong_wolfe"`` or ``"backtracking"`` (Armijo).
        c1: Sufficient-decrease constant of the line search.
        c2: Curvature constant of the strong Wolfe search.
    """

    def __init__(self, params: ParamsT, lr: float = 1.0, max_iter: int = 1,
                 max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, line_search_fn: str = "strong_wolfe",
                 c1: float = 1e-4, c2: float = 0.9) -> None:
        super().__init__(params, self._common_defaults(lr, max_iter, max_eval, tolerance_grad,
                                                       tolerance_change, line_search_fn, c1, c2))

    def _direction(self, state: dict[str, Any], flat_grad: Any, group: dict[str, Any]) -> Any:
        return -flat_grad
