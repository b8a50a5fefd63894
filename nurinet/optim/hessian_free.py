"""Hessian-free optimization (Martens 2010): truncated CG on exact curvature-vector products."""

from __future__ import annotations

import math
from typing import Any

from nurinet.autograd.grad_mode import enable_grad, no_grad
from nurinet.autograd.tensor import Tensor
from nurinet.optim.batch_optimizer import Closure, _as_float, _BatchOptimizer
from nurinet.optim.curvature import (
    diagonal_estimate,
    gauss_newton_product,
    gradient,
    hessian_product,
)
from nurinet.optim.flat_params import dot
from nurinet.optim.line_search import backtracking_armijo, backtracking_step
from nurinet.optim.optimizer import ParamsT
from nurinet.optim.truncated_cg import CGResult, truncated_cg
from nurinet.random import Generator, resolve

CURVATURES = ("gauss_newton", "hessian")
ARMIJO_C1 = 1e-2  # Martens & Sutskever (2012), section 8.8: the line search on the chosen CG iterate
DAMPING_DROP, DAMPING_BOOST = 2.0 / 3.0, 1.5  # Levenberg-Marquardt factors of Martens (2010)
RHO_LOW, RHO_HIGH = 0.25, 0.75

CLOSURE_CONTRACT = (
    "HessianFree's closure returns the loss WITH its graph and does not call backward(): "
    "`def closure(): output = model(x); return loss_fn(output, y), output` (the pair (loss, output) "
    "for curvature='gauss_newton'; the loss alone is enough for curvature='hessian')"
)


class HessianFree(_BatchOptimizer):
    """Hessian-free optimization (Martens 2010): Newton-like steps from truncated conjugate gradient.

    Each iteration, at parameters ``theta`` with loss ``f`` and gradient ``g``::

        B v  = G v (Gauss-Newton, the default) or H v (Hessian), plus weight_decay v, computed
               through the graph by nurinet.optim.curvature (on the curvature batch if given)
        p    = truncated_cg(B + lambda I, -g), started from warm_start_decay * p_prev and
               preconditioned by M = (diag + lambda)^preconditioner_exponent when asked
               (Martens' relative-progress stopping rule, nurinet.optim.truncated_cg)
        backtracking: f at the last kept CG iterate, then at earlier ones while f falls;
               keep the best (Martens 2010, section 4.6)
        rho  = (f(theta + p) - f) / q(p),  q(p) = g.p + 1/2 p^T B p  (the undamped model)
        lambda = 3/2 lambda if rho < 1/4;  2/3 lambda if rho > 3/4  (Levenberg-Marquardt)
        line search: if f(theta + p) > f + 0.01 g.p, backtracking Armijo along p
               (Martens & Sutskever 2012); no step at all if nothing decreases f
        theta = theta + lr t p

    The closure contract differs from :class:`LBFGS`'s, because the curvature products
    differentiate the graph again: the closure returns the loss **with its graph** and
    never calls ``backward()``. For the Gauss-Newton matrix it returns the pair
    ``(loss, output)``, where ``output`` is the network output the loss is computed from
    (best the logits of a softmax or sigmoid output, so that the loss is matched to it and
    ``H_L`` is positive semi-definite)::

        def closure():
            logits = model(x)
            return F.cross_entropy(logits, y), logits

        optimizer.step(closure)                       # or step(closure, curvature_closure)

    A closure that calls ``backward()`` (an L-BFGS closure) is refused with a TypeError
    that states this contract. ``curvature_closure``, of the same kind, evaluates a
    smaller batch for the curvature products (Martens uses a fraction of the gradient's
    batch); ``Model.fit`` builds one when ``curvature_batch_size`` is set. The
    Gauss-Newton products cover the loss through ``output``: a penalty added to the loss
    outside ``output`` adds to the gradient but not to ``G`` (use ``weight_decay``, which
    adds ``weight_decay / 2 |theta|^2`` to the objective and ``weight_decay I`` to ``B``,
    or ``curvature="hessian"``).

    Args:
        params: The parameters to optimize (one group, one dtype, one device).
        lr: Scales the step (1 is Martens' algorithm).
        max_iter: Iterations per ``step``.
        curvature: ``"gauss_newton"`` or ``"hessian"``.
        damping: The initial Levenberg-Marquardt damping ``lambda``.
        adapt_damping: Adapt ``lambda`` by the reduction ratio (otherwise it stays fixed).
        weight_decay: An L2 penalty on all parameters, in the objective and the curvature.
        cg_max_iter: The most CG iterations per step.
        cg_tolerance: Martens' ``epsilon`` in CG's relative-progress rule.
        warm_start_decay: CG starts from this times the previous step's last CG iterate
            (0: from zero).
        backtracking: Choose among the kept CG iterates by the loss (False: the last one).
        line_search: Backtrack along the chosen iterate when it does not decrease the loss.
        preconditioner: None, ``"jacobi"`` (the diagonal of ``B`` by Hutchinson's estimate,
            ``preconditioner_probes`` products) or a callable ``(g, damping) -> diag`` giving
            the diagonal to use (Martens': the sum of squared per-example gradients); then
            ``M = (diag + lambda)^preconditioner_exponent``.
        preconditioner_exponent: Martens' ``alpha`` (0.75).
        preconditioner_probes: Random vectors for the ``"jacobi"`` estimate.
        curvature_batch_size: Read by ``Model.fit``: the size of the random sub-batch it
            evaluates for the curvature products each step (None: the whole batch).
        generator: A ``nurinet.Generator`` for the preconditioner's probes (default: the
            default generator).
    """

    closure_returns_graph = True

    def __init__(self, params: ParamsT, lr: float = 1.0, max_iter: int = 1,
                 curvature: str = "gauss_newton", damping: float = 1.0, adapt_damping: bool = True,
                 weight_decay: float = 0.0, cg_max_iter: int = 250, cg_tolerance: float = 5e-4,
                 warm_start_decay: float = 0.95, backtracking: bool = True, line_search: bool = True,
                 preconditioner: Any = None, preconditioner_exponent: float = 0.75,
                 preconditioner_probes: int = 4, curvature_batch_size: int | None = None, *,
                 generator: Generator | None = None) -> None:
        defaults = {
            "lr": lr, "max_iter": max_iter, "curvature": curvature, "damping": damping,
            "adapt_damping": adapt_damping, "weight_decay": weight_decay,
            "cg_max_iter": cg_max_iter, "cg_tolerance": cg_tolerance,
            "warm_start_decay": warm_start_decay, "backtracking": backtracking,
            "line_search": line_search, "preconditioner": preconditioner,
            "preconditioner_exponent": preconditioner_exponent,
            "preconditioner_probes": preconditioner_probes,
            "curvature_batch_size": curvature_batch_size,
        }
        super().__init__(params, defaults)
        self.generator = generator

    def _validate(self, group: dict[str, Any]) -> None:
        self._check_non_negative(group, "lr", "damping", "weight_decay", "cg_tolerance",
                                 "preconditioner_exponent")
        for name in ("max_iter", "cg_max_iter", "preconditioner_probes"):
            self._check_count(group, name)
        self._check_choice(group, "curvature", CURVATURES)
        self._check_fraction(group, "warm_start_decay")
        if group["preconditioner"] not in (None, "jacobi") and not callable(group["preconditioner"]):
            raise ValueError(f"HessianFree: invalid preconditioner={group['preconditioner']!r}: it must "
                             "be None, 'jacobi' or a callable (g, damping) -> diagonal")
        if group["curvature_batch_size"] is not None:
            self._check_count(group, "curvature_batch_size")

    # ----- the step ---------------------------------------------------------------------------
    def step(self, closure: Closure | None = None,  # type: ignore[override]
             curvature_closure: Closure | None = None) -> Any:
        """Up to ``max_iter`` Hessian-free iterations; returns the closure's first loss.

        Args:
            closure: Returns the loss with its graph, or ``(loss, output)`` (see the class).
            curvature_closure: The same on a curvature batch; None uses ``closure``'s graph.
        """
        closure = self._require_closure(closure)
        group, state = self.param_groups[0], self.flat_state
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        state.setdefault("damping", float(group["damping"]))
        first_loss = None
        for _ in range(group["max_iter"]):
            loss = self._iterate(closure, curvature_closure, group, state)
            first_loss = loss if first_loss is None else first_loss
        return first_loss

    def _iterate(self, closure: Closure, curvature_closure: Closure | None, group: dict[str, Any],
                 state: dict[str, Any]) -> Tensor:
        loss, output = self._graph_closure(closure)
        state["n_iter"] += 1
        state["func_evals"] += 1
        decay = float(group["weight_decay"])
        theta = self._flat.values() if decay else None
        f0 = float(loss.item()) + (0.5 * decay * dot(theta, theta) if decay else 0.0)
        g, product = self._gradient_and_product(group, loss, output, curvature_closure)
        if decay:
            g = g + decay * theta
        cg = self._solve(group, state, _counted(product, state), g)
        self._move(closure, group, state, cg, g, f0)
        return loss

    def _solve(self, group: dict[str, Any], state: dict[str, Any], product: Any, g: Any) -> CGResult:
        """Truncated CG on ``(B + lambda I) p = -g``, warm-started from the last solution."""
        damping = state["damping"]
        p0 = state.get("cg_solution")
        p0 = self._flat.xp.zeros_like(g) if p0 is None else float(group["warm_start_decay"]) * p0
        cg = truncated_cg(lambda v: product(v) + damping * v, g, p0, group["cg_max_iter"],
                          float(group["cg_tolerance"]), self._preconditioner(group, product, g, damping))
        # Martens warm-starts from the last CG iterate, not from the backtracked one.
        state["cg_solution"], state["cg_iterations"] = cg.iterates[-1][1], cg.iterations
        return cg

    def _move(self, closure: Closure, group: dict[str, Any], state: dict[str, Any], cg: CGResult, g: Any,
              f0: float) -> None:
        """Backtrack over the CG iterates, adapt the damping, search along the step and take it."""
        decay, lr, damping = float(group["weight_decay"]), float(group["lr"]), state["damping"]
        x_init = self._flat.clone()
        p, phi, f_new = self._backtrack(closure, x_init, cg, lr, group["backtracking"], decay)
        model_change = _undamped_model(phi, dot(g, p), dot(p, p), damping, lr)
        state["rho"] = (f_new - f0) / model_change if model_change < 0 else -math.inf
        if group["adapt_damping"]:
            state["damping"] = _adapted(damping, state["rho"])
        t = self._step_length(closure, x_init, group, p, f0, f_new, lr * dot(g, p), decay)
        if t:
            self._flat.add_(lr * t, p)

    # ----- the closure and the curvature -------------------------------------------------------
    def _graph_closure(self, closure: Closure) -> tuple[Tensor, Tensor | None]:
        """Run a closure that returns the loss with its graph (or ``(loss, output)``), and check it."""
        self.zero_grad()
        with enable_grad():
            returned = closure()
        loss, output = returned if isinstance(returned, tuple) and len(returned) == 2 else (returned, None)
        if any(p.grad is not None for p in self._params):
            raise TypeError(f"the closure called backward(): {CLOSURE_CONTRACT}")
        if not isinstance(loss, Tensor) or loss.array.size != 1:
            raise TypeError(f"the closure returned {type(loss).__name__}, not a scalar loss Tensor: "
                            f"{CLOSURE_CONTRACT}")
        if not loss.requires_grad:
            raise TypeError(f"the closure's loss has no graph (computed under no_grad or detached): "
                            f"{CLOSURE_CONTRACT}")
        if output is not None and not isinstance(output, Tensor):
            raise TypeError(f"the closure's output is a {type(output).__name__}, not a Tensor: "
                            f"{CLOSURE_CONTRACT}")
        return loss, output

    def _gradient_and_product(self, group: dict[str, Any], loss: Tensor, output: Tensor | None,
                              curvature_closure: Closure | None) -> tuple[Any, Any]:
        """The flat gradient and ``v -> B v`` (with ``weight_decay``'s ``I``)."""
        hessian = group["curvature"] == "hessian"
        same_batch = curvature_closure is None
        g, grads = gradient(self._flat, loss, create_graph=hessian and same_batch,
                            retain_graph=same_batch)
        curvature_loss, curvature_output = loss, output
        if not same_batch:
            curvature_loss, curvature_output = self._graph_closure(curvature_closure)
            self.flat_state["func_evals"] += 1
        if hessian:
            if not same_batch:
                grads = gradient(self._flat, curvature_loss, create_graph=True)[1]
            product = hessian_product(self._flat, grads)
        else:
            if curvature_output is None:
                raise TypeError(f"curvature='gauss_newton' needs the network output: {CLOSURE_CONTRACT}")
            product = gauss_newton_product(self._flat, curvature_loss, curvature_output)
        decay = float(group["weight_decay"])
        return g, (lambda v: product(v) + decay * v) if decay else product

    def _preconditioner(self, group: dict[str, Any], product: Any, g: Any, damping: float) -> Any:
        """The diagonal ``M = (diag + lambda)^alpha`` of the preconditioned CG, or None."""
        kind = group["preconditioner"]
        if kind is None:
            return None
        xp = self._flat.xp
        if kind == "jacobi":
            diag = diagonal_estimate(product, self._flat, group["preconditioner_probes"],
                                     resolve(self.generator))
        else:
            diag = xp.asarray(kind(g, damping), dtype=self._flat.dtype).reshape(-1)
        return (xp.maximum(diag, 0.0) + damping) ** float(group["preconditioner_exponent"])

    # ----- choosing the step ----------------------------------------------------------------------
    def _loss_at(self, closure: Closure, x_init: Any, step: Any, decay: float) -> float:
        """The objective at ``theta + step`` (no graph); the parameters are put back."""
        self._flat.add_(1.0, step)
        with no_grad():
            returned = closure()
        loss = returned[0] if isinstance(returned, tuple) else returned
        value = _as_float(loss, "HessianFree")
        if decay:
            theta = self._flat.values()
            value += 0.5 * decay * dot(theta, theta)
        self._flat.restore_(x_init)
        self.flat_state["func_evals"] += 1
        return value

    def _backtrack(self, closure: Closure, x_init: Any, cg: CGResult, lr: float, backtracking: bool,
                   decay: float) -> tuple[Any, float, float]:
        """Martens' CG backtracking: the kept iterate with the lowest loss, searched from the last."""
        _, p, phi = cg.iterates[-1]
        f_best = self._loss_at(closure, x_init, lr * p, decay)
        if backtracking:
            for _, candidate, candidate_phi in reversed(cg.iterates[:-1]):
                f_candidate = self._loss_at(closure, x_init, lr * candidate, decay)
                if not f_candidate < f_best:
                    break
                p, phi, f_best = candidate, candidate_phi, f_candidate
        return p, phi, f_best

    def _step_length(self, closure: Closure, x_init: Any, group: dict[str, Any], p: Any, f0: float,
                     f_new: float, gtd: float, decay: float) -> float:
        """1 when ``theta + lr p`` decreases the loss enough; else Armijo's backtracking (or 0)."""
        if f_new <= f0 + ARMIJO_C1 * gtd:
            return 1.0
        if not group["line_search"] or not gtd < 0:
            return 1.0 if f_new < f0 else 0.0
        lr = float(group["lr"])

        def obj_func(x: Any, t: float, d: Any) -> tuple[float, None]:
            return self._loss_at(closure, x, t * d, decay), None

        result = backtracking_armijo(obj_func, x_init, backtracking_step(1.0, f0, gtd, f_new),
                                     lr * p, f0, None, gtd, c1=ARMIJO_C1)
        return result.step


def _counted(product: Any, state: dict[str, Any]) -> Any:
    """``product`` that adds one to ``state["curvature_products"]`` per call (the work CG costs)."""
    state.setdefault("curvature_products", 0)

    def counted(v: Any) -> Any:
        state["curvature_products"] += 1
        return product(v)

    return counted


def _undamped_model(phi: float, gp: float, pp: float, damping: float, lr: float) -> float:
    """``q(lr p) = lr g.p + lr^2 (1/2 p^T B p)`` from CG's damped ``phi(p)``.

    ``phi(p) = g.p + 1/2 p^T (B + lambda I) p``, so ``1/2 p^T B p = phi - g.p - lambda/2 |p|^2``.
    """
    half_curvature = phi - gp - 0.5 * damping * pp
    return lr * gp + lr * lr * half_curvature


def _adapted(damping: float, rho: float) -> float:
    """Levenberg-Marquardt: more damping when the model overpromised, less when it was right."""
    if rho < RHO_LOW:
        return damping * DAMPING_BOOST
    if rho > RHO_HIGH:
        return damping * DAMPING_DROP
    return damping
