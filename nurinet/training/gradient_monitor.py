"""GradientMonitor: per-layer gradient norms, update sizes and dead ReLUs, epoch by epoch.

Vanishing gradients show as gradient norms that shrink by orders of magnitude
from the last layer to the first (a deep sigmoid network); exploding ones as
norms that grow; a learning rate that is too high as update-to-weight ratios
far above ~1e-3; dying ReLUs as units whose output is 0 for every sample of a
batch.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from nurinet import backend
from nurinet.training.callbacks import Callback


def _norm(array: Any) -> float:
    xp = backend.get_array_module(array)
    flat = array.reshape(-1)
    return float(xp.sqrt(xp.dot(flat, flat)))


class GradientMonitor(Callback):
    """Record, for every parameter and ReLU layer, statistics averaged over each epoch.

    - ``grad_norms[name]``: the L2 norm of the parameter's gradient;
    - ``update_ratios[name]``: ``||w_after - w_before|| / ||w_before||`` of one optimizer step;
    - ``dead_relu[name]``: for each ``nn.ReLU`` module, the fraction of its
      output units that are ``<= 0`` for a whole batch (recorded by wrapping
      the module's ``forward`` while training runs).

    Each is a list with one value per epoch. With ``log=True`` the epoch's
    values are also added to the logs (and so to the History) as
    ``grad_norm/<name>``, ``update_ratio/<name>`` and ``dead_relu/<name>``.

    Args:
        every: Measure every this many batches (measuring copies the weights
            before the step, so sparse sampling is cheaper on large models).
        log: Add the values to the epoch logs.
    """

    def __init__(self, every: int = 1, log: bool = True) -> None:
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"GradientMonitor: every must be a positive integer, got every={every!r}")
        self.every, self.log = every, log
        self._wrapped: list[Any] = []
        self.on_train_begin()

    # ----- set-up ------------------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        self.grad_norms: dict[str, list[float]] = defaultdict(list)
        self.update_ratios: dict[str, list[float]] = defaultdict(list)
        self.dead_relu: dict[str, list[float]] = defaultdict(list)
        self._sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
        self._before: dict[str, Any] | None = None
        if self.model is not None:
            self._wrap_relus()

    def _wrap_relus(self) -> None:
        from nurinet.nn.activation import ReLU

        self._unwrap_relus()
        for name, module in self.model.named_modules():
            if isinstance(module, ReLU):
                module.__dict__["forward"] = self._recording(name or type(module).__name__, module.forward)
                self._wrapped.append(module)

    def _recording(self, name: str, forward: Any) -> Any:
        def forward_and_record(x: Any) -> Any:
            out = forward(x)
            if self._before is not None:  # only on the measured training batches
                dead = (out.array <= 0).all(axis=0) if out.array.ndim > 1 else out.array <= 0
                self._add("dead_relu", name, float(dead.mean()))
            return out
        return forward_and_record

    def _unwrap_relus(self) -> None:
        for module in self._wrapped:
            module.__dict__.pop("forward", None)
        self._wrapped = []

    def on_train_end(self, logs: dict | None = None) -> None:
        self._unwrap_relus()
        self._before = None

    # ----- measuring ---------------------------------------------------------------------------
    def _add(self, kind: str, name: str, value: float) -> None:
        entry = self._sums[(kind, name)]
        entry[0] += value
        entry[1] += 1

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if batch % self.every == 0:
            self._before = {name: p.array.copy() for name, p in self.model.named_parameters()}

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._before is None:
            return
        for name, p in self.model.named_parameters():
            if p.grad is None or name not in self._before:
                continue
            before = self._before[name]
            self._add("grad_norm", name, _norm(p.grad.array))
            self._add("update_ratio", name, _norm(p.array - before) / max(_norm(before), 1e-12))
        self._before = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        tables = {"grad_norm": self.grad_norms, "update_ratio": self.update_ratios,
                  "dead_relu": self.dead_relu}
        for (kind, name), (total, count) in self._sums.items():
            value = total / count
            tables[kind][name].append(value)
            if self.log and logs is not None:
                logs[f"{kind}/{name}"] = value
        self._sums.clear()

    def layer_summary(self, epoch: int = -1) -> dict[str, dict[str, float]]:
        """``{parameter or ReLU name: {"grad_norm": ..., "update_ratio": ..., "dead_relu": ...}}`` of one epoch."""
        summary: dict[str, dict[str, float]] = defaultdict(dict)
        for kind, table in (("grad_norm", self.grad_norms), ("update_ratio", self.update_ratios),
                            ("dead_relu", self.dead_relu)):
            for name, values in table.items():
                summary[name][kind] = values[epoch]
        return dict(summary)
