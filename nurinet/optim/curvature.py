"""Curvature-matrix-vector products through the graph, for Hessian-free optimization.

Both products are exact and use only reverse-mode differentiation twice (a graph
of the gradient, ``create_graph=True``), never finite differences. With ``theta``
the flat parameters, ``z`` the network's output and ``L`` the loss:

* Hessian: ``H v = d/dtheta (g . v)`` where ``g = dL/dtheta`` was computed with its graph.
* Gauss-Newton (Schraudolph 2002; Martens 2010): ``G v = J^T H_L J v``, ``J = dz/dtheta``,
  ``H_L = d^2 L / dz^2``. ``J v`` comes from the reverse pass applied twice: ``J^T u``
  is linear in a dummy ``u`` (zeros), so ``J v = d/du ((J^T u) . v)``; then
  ``H_L (J v) = d/dz (dL/dz . J v)`` and a last backward gives ``J^T (H_L J v)``. For a
  loss matched to its output (softmax + cross-entropy on logits, sigmoid + binary
  cross-entropy on logits, identity + squared error) ``H_L`` is positive semi-definite,
  so ``G`` is too, even where the Hessian is not.

A product is a function ``v -> B v`` on flat vectors (:class:`FlatParams`); its graphs
are kept (``retain_graph=True``) for the many products one conjugate-gradient run needs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nurinet import backend
from nurinet.autograd.engine import grad
from nurinet.autograd.tensor import Tensor
from nurinet.optim.flat_params import FlatParams

Product = Callable[[Any], Any]


def gradient(flat: FlatParams, loss: Tensor, create_graph: bool = False,
             retain_graph: bool = True) -> tuple[Any, tuple[Tensor | None, ...]]:
    """``dL/dtheta`` as a flat vector, and the per-parameter gradients (with a graph if asked)."""
    grads = grad(loss, flat.params, create_graph=create_graph, retain_graph=retain_graph,
                 allow_unused=True)
    return flat.flatten(grads), grads


def hessian_product(flat: FlatParams, grads: Sequence[Tensor | None]) -> Product:
    """``v -> H v`` from gradients computed with ``create_graph=True``."""
    def product(v: Any) -> Any:
        total = _dot_with(grads, flat.unflatten(v))
        if total is None:  # the gradient does not depend on the parameters: H = 0
            return flat.xp.zeros_like(v)
        hv = grad(total, flat.params, retain_graph=True, allow_unused=True)
        return flat.flatten([None if h is None else h.array for h in hv])

    return product


def gauss_newton_product(flat: FlatParams, loss: Tensor, output: Tensor) -> Product:
    """``v -> J^T H_L J v`` for ``loss`` computed from ``output`` (both with their graphs)."""
    xp = backend.get_array_module(output.array)
    dummy = Tensor(xp.zeros_like(output.array), requires_grad=True)
    jt_dummy = grad(output, flat.params, grad_outputs=dummy, create_graph=True, allow_unused=True)
    (dl_dz,) = grad(loss, output, create_graph=True)
    if not dl_dz.requires_grad:  # a loss linear in the output: H_L = 0, so is every product
        return flat.xp.zeros_like

    def product(v: Any) -> Any:
        total = _dot_with(jt_dummy, flat.unflatten(v))
        if total is None:  # the output does not depend on the parameters: J = 0
            return flat.xp.zeros_like(v)
        (jv,) = grad(total, dummy, retain_graph=True)
        (h_jv,) = grad((dl_dz * jv).sum(), output, retain_graph=True, allow_unused=True)
        if h_jv is None:
            return flat.xp.zeros_like(v)
        gv = grad(output, flat.params, grad_outputs=h_jv, retain_graph=True, allow_unused=True)
        return flat.flatten(gv)

    return product


def diagonal_estimate(product: Product, flat: FlatParams, probes: int, rng: Any) -> Any:
    """Hutchinson's estimate of ``diag(B)``: the mean of ``v * (B v)`` over Rademacher ``v``.

    Unbiased for any symmetric ``B`` (Bekas, Kokiopoulou & Saad 2007); Chapelle & Erhan (2011)
    use it for the Jacobi preconditioner of Hessian-free optimization.
    """
    total = flat.xp.zeros(flat.numel, dtype=flat.dtype)
    for _ in range(probes):
        signs = rng.integers(0, 2, flat.numel) * 2.0 - 1.0
        v = backend.to_device(signs.astype(flat.dtype), backend.device_of(total))
        total += v * product(v)
    return total / probes


def _dot_with(tensors: Sequence[Tensor | None], arrays: Sequence[Any]) -> Tensor | None:
    """``sum_i (tensors_i * arrays_i).sum()`` as a Tensor with a graph (None if every tensor is None)."""
    total = None
    for t, a in zip(tensors, arrays):
        if t is None or not t.requires_grad:
            continue
        term = (t * Tensor._wrap(a, False)).sum()
        total = term if total is None else total + term
    return total
