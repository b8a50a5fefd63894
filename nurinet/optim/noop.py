"""The optimizer that changes nothing: Deeplearning4j's ``NoOp`` updater."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nurinet.autograd.grad_mode import enable_grad
from nurinet.optim.optimizer import Optimizer, ParamsT


class NoOp(Optimizer):
    """Deeplearning4j's ``NoOp`` updater: the parameters never change.

    For freezing a whole network while keeping the training loop (its losses, metrics
    and callbacks), or for measuring a loop's cost without the update. ``step`` runs the
    closure, if any, and touches no parameter; no state is kept. Found by the names
    ``"noop"`` and ``"none"`` (DL4J's ``Updater.NONE``).

    Args:
        params: Tensors, or dicts defining parameter groups (kept so that schedulers and
            learning-rate callbacks can work with it as with any optimizer).
        lr: Kept in each group for those schedulers and callbacks; it has no effect.
    """

    def __init__(self, params: ParamsT, lr: float = 0.0) -> None:
        super().__init__(params, {"lr": lr})

    def _validate(self, group: dict[str, Any]) -> None:
        self._check_non_negative(group, "lr")

    def _update(self, p: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Nothing: the parameter keeps its value."""

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Run ``closure`` (if given) and change no parameter.

        Returns:
            The closure's loss, or None without a closure.
        """
        if closure is None:
            return None
        with enable_grad():
            return closure()
