"""What the closure-driven batch optimizers share (L-BFGS, conjugate gradient, line GD, Hessian-free).

These methods evaluate the objective several times per step (a line search, a
backtracking over conjugate-gradient iterates), so ``step`` takes a closure that
recomputes the loss, as ``torch.optim.LBFGS`` does. They keep one state for the
whole flat parameter vector (:mod:`nurinet.optim.flat_params`), stored as PyTorch
stores LBFGS's: under the first parameter, position ``(0, 0)``, so ``state_dict``
and checkpoints need nothing new. Their class attribute ``needs_closure = True``
tells ``Model.fit`` to hand them a closure over the whole batch
(:mod:`nurinet.training.batch_methods`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.grad_mode import enable_grad
from nurinet.optim.flat_params import FlatParams
from nurinet.optim.optimizer import Optimizer, ParamsT

Closure = Callable[[], Any]


class _BatchOptimizer(Optimizer):
    """Base of the optimizers that work on the flat parameter vector through a closure.

    A subclass implements ``step(closure)``; the closure contract is the one of
    ``torch.optim.LBFGS``: it clears the gradients, computes the loss, calls
    ``loss.backward()`` and returns the loss (Hessian-free states its own).
    """

    needs_closure = True  # Model.fit gives such an optimizer a closure over the whole batch
    closure_returns_graph = False  # True: the closure returns the loss with its graph, no backward

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        super().__init__(params, defaults)  # add_param_group below refuses a second group
        self._params = self.param_groups[0]["params"]
        self._flat = FlatParams(self._params, type(self).__name__)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if getattr(self, "param_groups", None):
            raise ValueError(
                f"{type(self).__name__} doesn't support per-parameter options (parameter groups): "
                "build it over every parameter at once"
            )
        super().add_param_group(param_group)

    def _update(self, p: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise TypeError(f"{type(self).__name__} updates all parameters at once in step(closure)")

    # ----- the one state of the flat vector ------------------------------------------------
    @property
    def flat_state(self) -> dict[str, Any]:
        """The optimizer's state (kept as PyTorch keeps LBFGS's: under the first parameter)."""
        return self.state.setdefault((0, 0), {})

    def _require_closure(self, closure: Closure | None) -> Closure:
        if closure is None or not callable(closure):
            raise TypeError(
                f"{type(self).__name__}.step needs a closure: a function that clears the gradients, "
                "computes the loss, calls loss.backward() and returns the loss "
                "(it is called several times per step)"
            )
        return closure

    def _evaluate(self, closure: Closure) -> tuple[Any, float]:
        """Run the closure with graph recording on; returns what it returned and the loss as a float."""
        with enable_grad():
            loss = closure()
        return loss, _as_float(loss, type(self).__name__)

    def _directional_evaluate(self, closure: Closure, x: Any, t: float, d: Any) -> tuple[float, Any]:
        """``(f, g)`` at ``x + t d``; the parameters are put back to ``x`` afterwards."""
        self._flat.add_(t, d)
        _, loss = self._evaluate(closure)
        flat_grad = self._flat.gather_grad()
        self._flat.restore_(x)
        return loss, flat_grad

    # ----- hyperparameter checks ------------------------------------------------------------
    def _check_count(self, group: dict[str, Any], name: str) -> None:
        value = group[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(
                f"{type(self).__name__}: invalid {name}={value!r}: it must be a whole number >= 1"
            )

    def _check_choice(self, group: dict[str, Any], name: str, choices: tuple[Any, ...]) -> None:
        if group[name] not in choices:
            raise ValueError(
                f"{type(self).__name__}: invalid {name}={group[name]!r}: it must be one of {choices}"
            )

    # ----- saving and loading ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """As :meth:`Optimizer.state_dict`; flat vectors and lists of them become NumPy copies."""
        live, self.state = self.state, {}  # the base class copies only the hyperparameters here
        try:
            saved = super().state_dict()
        finally:
            self.state = live
        saved["state"] = {position: {name: _plain(value) for name, value in values.items()}
                          for position, values in live.items()}
        return saved

    def _import(self, value: Any, p: Any, where: str) -> Any:
        """A saved state value back on the parameters' device and dtype (lists element by element)."""
        if isinstance(value, list):
            return [self._import(v, p, where) for v in value]
        if isinstance(value, np.ndarray) and value.shape == (self._flat.numel,):
            value = backend.to_device(value, backend.device_of(p))
            return value.astype(p.dtype if value.dtype.kind == "f" else value.dtype, copy=True)
        return super()._import(value, p, where)


def _plain(value: Any) -> Any:
    """A state value as plain data: NumPy copies of arrays, lists element by element."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray) or backend.is_cupy_array(value):
        return np.array(backend.to_numpy(value), copy=True)
    return value


def _as_float(loss: Any, owner: str) -> float:
    try:
        return float(loss.item() if hasattr(loss, "item") else loss)
    except (TypeError, ValueError):
        raise TypeError(
            f"{owner}: the closure must return the loss (a scalar Tensor or a number), "
            f"got {type(loss).__name__}"
        ) from None
