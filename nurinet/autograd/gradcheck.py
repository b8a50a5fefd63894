"""Numerical gradient checks for users and for nurinet's own op tests.

``gradcheck`` compares the gradients computed by back-propagation with central
finite differences, in float64. Two modes:

* ``"full"``: the whole Jacobian, one backward per output element and two
  forward evaluations per input element. Exact but O(size) work.
* ``"fast"``: a directional check along random unit vectors ``u`` (inputs) and
  ``v`` (outputs): ``v . J u`` from two forward evaluations against
  ``(J^T v) . u`` from one backward. O(1) work per trial.

``gradgradcheck`` applies ``gradcheck`` to the function
``(inputs, v) -> grad(f(inputs), inputs, v, create_graph=True)``, as PyTorch's does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.engine import grad
from nurinet.autograd.tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numerical gradients disagree."""


def _as_outputs(result: Any) -> list[Tensor]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _check_inputs(inputs: Sequence[Tensor]) -> list[Tensor]:
    inputs = list(inputs)
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"gradcheck: input {i} is a {type(x).__name__}, not a Tensor")
        if x.requires_grad and x.dtype != np.float64:
            raise TypeError(
                f"gradcheck: input {i} has dtype {x.dtype}; check gradients in float64 "
                "(x.astype('float64')), float32 finite differences are too noisy"
            )
    return inputs


def _evaluate(fn: Callable, inputs: list[Tensor]) -> list[np.ndarray]:
    from nurinet.autograd.grad_mode import no_grad

    with no_grad():
        return [_host(y) for y in _as_outputs(fn(*inputs))]


def _host(t: Tensor) -> np.ndarray:
    """A float64 NumPy copy of ``t`` (from the GPU too): the checker's arithmetic runs on the host."""
    return np.array(backend.to_numpy(t.array), dtype=np.float64)


def _on_device_of(values: np.ndarray, like: Tensor) -> Any:
    """Host ``values`` as an array on ``like``'s device."""
    return backend.to_device(values, like.device)


def _vjp(fn: Callable, inputs: list[Tensor], vs: list[np.ndarray]) -> list[np.ndarray]:
    """The analytic vector-Jacobian product (J^T v) for every input needing a gradient."""
    outputs = _as_outputs(fn(*inputs))
    targets = [x for x in inputs if x.requires_grad]
    pairs = [(y, v) for y, v in zip(outputs, vs) if y.requires_grad]
    if not pairs:
        return [np.zeros(x.shape) for x in targets]
    ys, gs = zip(*pairs)
    grads = grad(list(ys), targets, [Tensor(_on_device_of(g, y)) for y, g in zip(ys, gs)],
                 allow_unused=True)
    return [np.zeros(x.shape) if g is None else _host(g) for x, g in zip(targets, grads)]


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    mode: str = "full",
    trials: int = 3,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check ``fn``'s back-propagated gradients against central finite differences.

    Args:
        fn: Function of the inputs returning a Tensor or a tuple of Tensors.
        inputs: float64 Tensors; those with ``requires_grad=True`` are checked.
        eps: Finite-difference step.
        atol: Absolute tolerance.
        rtol: Relative tolerance.
        mode: ``"full"`` (whole Jacobian) or ``"fast"`` (random directions).
        trials: Number of random directions in fast mode.
        seed: Seed of the random directions.
        raise_exception: Raise :class:`GradcheckError` on a mismatch (else return False).

    Returns:
        True when every checked gradient matches.
    """
    inputs = _check_inputs(inputs)
    rng = np.random.default_rng(seed)
    try:
        if mode == "full":
            _full_check(fn, inputs, eps, atol, rtol)
        elif mode == "fast":
            for _ in range(trials):
                _fast_check(fn, inputs, eps, atol, rtol, rng)
        else:
            raise ValueError(f"gradcheck: mode must be 'full' or 'fast', got {mode!r}")
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _perturbed(fn: Callable, inputs: list[Tensor], index: int, delta: np.ndarray) -> list[np.ndarray]:
    x = inputs[index]
    original = x.array
    try:
        x.array = original + _on_device_of(delta, x)
        return _evaluate(fn, inputs)
    finally:
        x.array = original


def _full_check(fn: Callable, inputs: list[Tensor], eps: float, atol: float, rtol: float) -> None:
    base = _evaluate(fn, inputs)
    sizes = [y.size for y in base]
    checked = [i for i, x in enumerate(inputs) if x.requires_grad]
    for k, i in enumerate(checked):
        x = inputs[i]
        numeric = np.zeros((x.numel(), sum(sizes)))
        for j in range(x.numel()):
            delta = np.zeros(x.numel())
            delta[j] = eps
            delta = delta.reshape(x.shape)
            plus = _perturbed(fn, inputs, i, delta)
            minus = _perturbed(fn, inputs, i, -delta)
            numeric[j] = np.concatenate([((p - m) / (2 * eps)).ravel() for p, m in zip(plus, minus)])
        analytic = np.zeros_like(numeric)
        for col in range(sum(sizes)):
            vs, offset = [], 0
            for y in base:
                v = np.zeros(y.size)
                if offset <= col < offset + y.size:
                    v[col - offset] = 1.0
                vs.append(v.reshape(y.shape))
                offset += y.size
            analytic[:, col] = _vjp(fn, inputs, vs)[k].ravel()
        _compare(analytic, numeric, atol, rtol, f"input {i} (full Jacobian)")


def _fast_check(fn: Callable, inputs: list[Tensor], eps: float, atol: float, rtol: float,
                rng: np.random.Generator) -> None:
    base = _evaluate(fn, inputs)
    vs = [rng.standard_normal(y.shape) for y in base]
    analytic_vjp = _vjp(fn, inputs, vs)
    checked = [i for i, x in enumerate(inputs) if x.requires_grad]
    for k, i in enumerate(checked):
        u = rng.standard_normal(inputs[i].shape)
        u /= max(np.linalg.norm(u), 1e-12)
        plus = _perturbed(fn, inputs, i, eps * u)
        minus = _perturbed(fn, inputs, i, -eps * u)
        numeric = sum(float(np.sum(v * (p - m))) for v, p, m in zip(vs, plus, minus)) / (2 * eps)
        analytic = float(np.sum(analytic_vjp[k] * u))
        _compare(np.array(analytic), np.array(numeric), atol, rtol, f"input {i} (direction)")


def _compare(analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float, what: str) -> None:
    if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
        diff = np.abs(analytic - numeric)
        worst = np.unravel_index(np.argmax(diff), diff.shape) if diff.ndim else ()
        where = f" at (input element, output element) {tuple(int(i) for i in worst)}" if worst else ""
        raise GradcheckError(
            f"gradcheck failed for {what}: largest difference {diff.max():.3g}{where}: analytic "
            f"{float(np.asarray(analytic)[worst]):.6g} vs numerical {float(np.asarray(numeric)[worst]):.6g}"
        )


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Tensor],
    grad_outputs: Sequence[Tensor] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    mode: str = "full",
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check second-order gradients: ``gradcheck`` of the first-order gradient function.

    Args:
        fn: Function of the inputs returning a Tensor or a tuple of Tensors.
        inputs: float64 Tensors; those with ``requires_grad=True`` are checked.
        grad_outputs: The vectors ``v`` of ``J^T v``; random when None (and
            themselves checked as inputs of the gradient function).
        eps, atol, rtol, mode, seed, raise_exception: As in :func:`gradcheck`.
    """
    inputs = _check_inputs(inputs)
    rng = np.random.default_rng(seed + 1)
    outputs = _as_outputs(fn(*inputs))
    if grad_outputs is None:
        grad_outputs = [Tensor(_on_device_of(rng.standard_normal(y.shape), y), requires_grad=True)
                        for y in outputs]
    grad_outputs = list(grad_outputs)
    n = len(inputs)
    differentiable = [i for i, y in enumerate(outputs) if y.requires_grad]

    def first_order(*args: Tensor) -> tuple[Tensor, ...]:
        from nurinet.autograd.grad_mode import enable_grad

        xs, gs = list(args[:n]), list(args[n:])
        with enable_grad():  # The checker evaluates under no_grad; this function needs a graph.
            ys = _as_outputs(fn(*xs))
            targets = [x for x in xs if x.requires_grad]
            found = grad([ys[i] for i in differentiable], targets,
                         [gs[i] for i in differentiable], create_graph=True, allow_unused=True)
        return tuple(g for g in found if g is not None and g.requires_grad)

    return gradcheck(first_order, [*inputs, *grad_outputs], eps=eps, atol=atol, rtol=rtol,
                     mode=mode, seed=seed, raise_exception=raise_exception)
