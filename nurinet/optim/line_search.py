"""Line searches on a flat parameter vector: strong Wolfe (cubic interpolation) and backtracking Armijo.

A line search picks a step length ``t > 0`` along a descent direction ``d`` from the
point ``x``, where ``phi(t) = f(x + t d)`` and ``phi'(t) = g(x + t d) . d``. Both
searches here take ``obj_func(x, t, d) -> (f, g)``, which evaluates the objective
and its flat gradient at ``x + t d`` and leaves the parameters at ``x`` (``x`` is
whatever the caller needs to come back to: :meth:`FlatParams.clone`'s copies), and
``f``, ``g`` and ``gtd = g . d`` at ``t = 0``. Vectors are arrays of any array module
(NumPy or CuPy); every scalar is a Python float.

* :func:`strong_wolfe` finds a ``t`` that satisfies the strong Wolfe conditions
  (Nocedal & Wright, *Numerical Optimization*, 2nd ed., eq. 3.7)::

      phi(t) <= phi(0) + c1 t phi'(0)          (sufficient decrease, Armijo)
      |phi'(t)| <= c2 |phi'(0)|                (curvature)

  with algorithms 3.5 (bracketing) and 3.6 (zoom) and cubic interpolation. It is
  the search of PyTorch's ``torch.optim.LBFGS`` (a port of Torch7's ``lswolfe.lua``)
  transcribed step for step, so that nurinet's L-BFGS takes PyTorch's iterates.
* :func:`backtracking_armijo` shrinks ``t`` until the sufficient-decrease condition
  holds (algorithm 3.1), each new trial the minimizer of the quadratic through
  ``phi(0)``, ``phi'(0)`` and ``phi(t)``, kept within ``[0.1 t, 0.5 t]`` (section 3.5).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from nurinet.optim.flat_params import dot, max_abs

ObjFunc = Callable[[Any, float, Any], tuple[float, Any]]


class LineSearchResult(NamedTuple):
    """What a line search returns: the loss and gradient at the step chosen, the step, the cost."""

    loss: float
    grad: Any
    step: float
    evals: int


class _Point(NamedTuple):
    """One trial of the search: step ``t``, ``phi(t)``, the gradient there and ``phi'(t)``."""

    t: float
    f: float
    g: Any
    gtd: float


def cubic_interpolate(x1: float, f1: float, g1: float, x2: float, f2: float, g2: float,
                      bounds: tuple[float, float] | None = None) -> float:
    """The minimizer of the cubic through two points with values and slopes, clipped to ``bounds``.

    The cubic through ``(x1, f1, g1)`` and ``(x2, f2, g2)`` (Nocedal & Wright, eq. 3.59)::

        d1 = g1 + g2 - 3 (f1 - f2) / (x1 - x2)
        d2 = sqrt(d1^2 - g1 g2)
        x  = x2 - (x2 - x1) (g2 + d2 - d1) / (g2 - g1 + 2 d2)     (x1 <= x2; symmetric otherwise)

    When the cubic has no minimizer (``d1^2 < g1 g2``) the middle of the bounds is
    returned. ``bounds`` default to the interval between ``x1`` and ``x2``.
    """
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    if x1 == x2:  # a degenerate bracket: nothing to interpolate
        return (lo + hi) / 2.0
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if not d2_square >= 0:  # also catches NaN
        return (lo + hi) / 2.0
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    if not math.isfinite(min_pos):
        return (lo + hi) / 2.0
    return min(max(min_pos, lo), hi)


def strong_wolfe(obj_func: ObjFunc, x: Any, t: float, d: Any, f: float, g: Any, gtd: float,
                 c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9,
                 max_ls: int = 25) -> LineSearchResult:
    """A step satisfying the strong Wolfe conditions (Nocedal & Wright, algorithms 3.5 and 3.6).

    Algorithm 3.5, bracketing: try ``t``; stop with a bracket ``[t_prev, t]`` when
    ``t`` breaks sufficient decrease, is no lower than the previous trial, or has a
    non-negative slope; stop with ``t`` itself when the curvature condition holds;
    otherwise extrapolate by cubic interpolation within ``[t + 0.01 (t - t_prev), 10 t]``.
    Algorithm 3.6, zoom: interpolate inside the bracket (a trial too close to an end,
    twice in a row or outside, is moved to 0.1 of the bracket's width from it); a
    trial that breaks sufficient decrease or is not below the low end replaces the
    high end; otherwise it becomes the low end (the old low end becoming the high
    end when the slope points that way), and the search ends when it meets the
    curvature condition, when the bracket is shorter than ``tolerance_change`` (in
    units of ``max |d|``), or after ``max_ls`` evaluations past the first.

    Args:
        obj_func: ``obj_func(x, t, d) -> (f, g)`` at ``x + t d`` (see the module docstring).
        x: What ``obj_func`` restores (the parameters' values at ``t = 0``).
        t: The first trial step.
        d: The search direction (a descent direction: ``gtd < 0``).
        f: ``phi(0)``.
        g: The gradient at ``t = 0``.
        gtd: ``phi'(0) = g . d``.
        c1: Sufficient-decrease constant.
        c2: Curvature constant (0.9 for quasi-Newton methods, 0.1 for conjugate gradient).
        tolerance_change: The smallest bracket (times ``max |d|``) worth zooming into.
        max_ls: Evaluations allowed after the first.

    Returns:
        The loss, gradient and step of the point chosen (the lowest of the final
        bracket), and the number of evaluations.
    """
    d_norm = max_abs(d)
    f_new, g_new = obj_func(x, t, d)
    evals, ls_iter = 1, 0
    new = _Point(t, f_new, g_new, dot(g_new, d))
    prev = _Point(0.0, f, g.copy(), gtd)
    bracket: list[_Point] | None = None
    done = False
    while ls_iter < max_ls:
        if new.f > f + c1 * new.t * gtd or (ls_iter > 1 and new.f >= prev.f):
            bracket = [prev, new]
            break
        if abs(new.gtd) <= -c2 * gtd:
            bracket, done = [new], True
            break
        if new.gtd >= 0:
            bracket = [prev, new]
            break
        bounds = (new.t + 0.01 * (new.t - prev.t), new.t * 10)
        t = cubic_interpolate(prev.t, prev.f, prev.gtd, new.t, new.f, new.gtd, bounds=bounds)
        prev = new
        f_new, g_new = obj_func(x, t, d)
        evals += 1
        ls_iter += 1
        new = _Point(t, f_new, g_new, dot(g_new, d))
    if bracket is None:  # out of evaluations: keep the better of the start and the last trial
        bracket = [_Point(0.0, f, g, gtd), new]
    low = 0 if bracket[0].f <= bracket[-1].f else 1
    if not done and ls_iter < max_ls:
        low, zoom_evals = _zoom(obj_func, x, d, d_norm, f, gtd, bracket, c1, c2,
                                tolerance_change, max_ls - ls_iter)
        evals += zoom_evals
    best = bracket[low]
    return LineSearchResult(best.f, best.g, best.t, evals)


def _zoom(obj_func: ObjFunc, x: Any, d: Any, d_norm: float, f: float, gtd: float,
          bracket: list[_Point], c1: float, c2: float, tolerance_change: float,
          budget: int) -> tuple[int, int]:
    """Algorithm 3.6 on ``bracket`` (changed in place); returns the low end's index and the cost."""
    low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
    insufficient_progress = False
    evals = 0
    while evals < budget:
        if abs(bracket[1].t - bracket[0].t) * d_norm < tolerance_change:
            break
        a, b = bracket
        t = cubic_interpolate(a.t, a.f, a.gtd, b.t, b.f, b.gtd)
        t, insufficient_progress = _away_from_the_ends(t, a.t, b.t, insufficient_progress)
        f_new, g_new = obj_func(x, t, d)
        evals += 1
        new = _Point(t, f_new, g_new, dot(g_new, d))
        if new.f > f + c1 * t * gtd or new.f >= bracket[low].f:
            bracket[high] = new
            low, high = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
            continue
        if abs(new.gtd) <= -c2 * gtd:
            bracket[low] = new
            break
        if new.gtd * (bracket[high].t - bracket[low].t) >= 0:
            bracket[high] = bracket[low]
        bracket[low] = new
    return low, evals


def _away_from_the_ends(t: float, a: float, b: float, insufficient: bool) -> tuple[float, bool]:
    """Keep a zoom trial at least 0.1 of the bracket from its ends when progress stalls.

    A trial within 0.1 of the bracket's width of an end is accepted once; the next
    time (or at once when it lies on or outside an end) it is moved to that distance.
    Returns the trial and whether this one counted as insufficient progress.
    """
    hi, lo = max(a, b), min(a, b)
    eps = 0.1 * (hi - lo)
    if min(hi - t, t - lo) >= eps:
        return t, False
    if insufficient or t >= hi or t <= lo:
        return (hi - eps if abs(t - hi) < abs(t - lo) else lo + eps), False
    return t, True


def backtracking_armijo(obj_func: ObjFunc, x: Any, t: float, d: Any, f: float, g: Any, gtd: float,
                        c1: float = 1e-4, max_ls: int = 25) -> LineSearchResult:
    """The first step of a backtracking sequence that decreases ``f`` sufficiently.

    Nocedal & Wright, algorithm 3.1 with the interpolation of section 3.5::

        while phi(t) > phi(0) + c1 t phi'(0):
            t_q = -phi'(0) t^2 / (2 (phi(t) - phi(0) - phi'(0) t))   (minimizer of the quadratic)
            t = min(max(t_q, 0.1 t), 0.5 t)

    Args:
        obj_func: ``obj_func(x, t, d) -> (f, g)`` at ``x + t d``; ``g`` may be None when
            the caller needs only losses.
        x: What ``obj_func`` restores.
        t: The first trial step.
        d: The search direction (``gtd < 0``).
        f: ``phi(0)``.
        g: The gradient at ``t = 0`` (returned when no step is accepted).
        gtd: ``phi'(0)``.
        c1: Sufficient-decrease constant.
        max_ls: The most evaluations.

    Returns:
        The loss, gradient and step accepted and the number of evaluations; the step is
        0 (with ``f`` and ``g``) when none of ``max_ls`` trials decreased ``f`` enough.
    """
    for evals in range(1, max(max_ls, 1) + 1):
        f_new, g_new = obj_func(x, t, d)
        if f_new <= f + c1 * t * gtd:
            return LineSearchResult(f_new, g_new, t, evals)
        t = backtracking_step(t, f, gtd, f_new)
    return LineSearchResult(f, g, 0.0, max(max_ls, 1))


def backtracking_step(t: float, f: float, gtd: float, f_new: float) -> float:
    """The safeguarded minimizer of the quadratic through ``phi(0)``, ``phi'(0)`` and ``phi(t)``."""
    curvature = f_new - f - gtd * t
    t_quadratic = -gtd * t * t / (2.0 * curvature) if curvature > 0 else 0.5 * t
    if not math.isfinite(t_quadratic):  # f_new was inf or NaN: the step was far too long
        t_quadratic = 0.1 * t
    return min(max(t_quadratic, 0.1 * t), 0.5 * t)
