"""Truncated, preconditioned linear conjugate gradient with Martens' (2010) stopping rule.

Minimizes the quadratic model ``phi(p) = 1/2 p^T A p + g^T p`` (``A`` a damped
curvature matrix given only through products ``v -> A v``), that is, solves
``A p = -g`` approximately. Nocedal & Wright, algorithm 5.3 (preconditioned CG)::

    r = A p0 + g;  y = r / M;  d = -y
    for i = 1, 2, ...:
        if d^T A d <= 0: stop (negative curvature: d is not a descent direction of phi)
        alpha = r.y / d^T A d
        p = p + alpha d;  r_new = r + alpha A d;  y_new = r_new / M
        d = -y_new + (r_new.y_new / r.y) d;  r, y = r_new, y_new
        phi_i = 1/2 p.(r + g)           (since A p = r - g)

Martens' rule: stop at iteration ``i`` when ``i > k``, ``phi_i < 0`` and
``(phi_i - phi_{i-k}) / phi_i < k * tolerance`` with ``k = max(10, 0.1 i)``: the
model's relative decrease over the last ``k`` iterations has become small. The
iterates at ``i = ceil(1.3^j)`` and the last are kept for backtracking.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from nurinet.optim.flat_params import dot

STORE_RATIO = 1.3  # Martens (2010), section 4.6: iterates kept at i = ceil(1.3^j)
MIN_WINDOW = 10


class CGResult(NamedTuple):
    """The iterates kept (``(i, p, phi_i)``, in order, the last one included) and why CG stopped."""

    iterates: list[tuple[int, Any, float]]
    iterations: int
    stopped_by: str  # "progress", "negative_curvature", "max_iter" or "converged"


def store_points(max_iter: int) -> set[int]:
    """The iterations whose iterates are kept: ``ceil(1.3^j)`` for ``j = 1, 2, ...``."""
    points, j = set(), 1
    while math.ceil(STORE_RATIO**j) <= max_iter:
        points.add(math.ceil(STORE_RATIO**j))
        j += 1
    return points


def truncated_cg(apply_a: Callable[[Any], Any], g: Any, p0: Any, max_iter: int, tolerance: float,
                 preconditioner: Any = None) -> CGResult:
    """Run CG on ``A p = -g`` from ``p0`` (see the module docstring).

    Args:
        apply_a: ``v -> A v`` (the damped curvature product).
        g: The gradient (the model's linear term).
        p0: The starting point (zeros, or the decayed previous solution).
        max_iter: The most CG iterations.
        tolerance: Martens' epsilon in the relative-progress rule.
        preconditioner: The diagonal ``M`` (a flat vector), or None for none.

    Returns:
        The kept iterates and how the run ended.
    """
    keep = store_points(max_iter)
    p = p0.copy()
    r = apply_a(p) + g if dot(p, p) > 0 else g.copy()
    y = r / preconditioner if preconditioner is not None else r
    d = -y
    ry = dot(r, y)
    phis: list[float] = []
    iterates: list[tuple[int, Any, float]] = []
    stopped_by = "max_iter"
    i = 0
    for i in range(1, max_iter + 1):
        if ry == 0.0:
            i -= 1
            stopped_by = "converged"
            break
        ad = apply_a(d)
        curvature = dot(d, ad)
        if not curvature > 0:
            i -= 1
            stopped_by = "negative_curvature"
            break
        alpha = ry / curvature
        p = p + alpha * d
        r = r + alpha * ad
        y = r / preconditioner if preconditioner is not None else r
        ry_new = dot(r, y)
        d = -y + (ry_new / ry) * d
        ry = ry_new
        phis.append(0.5 * dot(p, r + g))
        if i in keep:
            iterates.append((i, p, phis[-1]))  # p is a new array at every iteration
        if _little_progress(phis, tolerance):
            stopped_by = "progress"
            break
    if i > 0 and (not iterates or iterates[-1][0] != i):
        iterates.append((i, p, phis[-1]))
    if not iterates:  # no iteration ran: keep the start
        iterates.append((0, p, 0.5 * dot(p, r + g)))
    return CGResult(iterates, i, stopped_by)


def _little_progress(phis: list[float], tolerance: float) -> bool:
    """Martens' rule: ``(phi_i - phi_{i-k}) / phi_i < k tolerance``, ``k = max(10, 0.1 i)``."""
    i = len(phis)
    k = max(MIN_WINDOW, math.ceil(0.1 * i))
    if i <= k or not phis[-1] < 0:
        return False
    return (phis[-1] - phis[-1 - k]) / phis[-1] < k * tolerance
