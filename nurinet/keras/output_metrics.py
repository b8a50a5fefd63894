"""The metrics of a functional model with several outputs, each output its own (Keras 3's).

``compile(metrics={"digit": ["accuracy"]})`` or a list with one entry per output (a metric, a
list of them, or None) gives each output its metrics; the logs name them
``<output name>_<metric name>`` (``digit_accuracy``, ``val_digit_accuracy``), as Keras does.
Each metric sees what a single-output model's would: the probabilities of a classification
output (from its softmax/sigmoid, or from the logits its loss takes), else the output itself.
"""

from __future__ import annotations

from typing import Any

from nurinet.keras.output_settings import per_output
from nurinet.training.metrics import Metric, get_metric
from nurinet.training.outputs import Objective, describe_output, update_metrics

__all__ = ["OutputMetrics"]


def _metric_list(entry: Any) -> list[Metric]:
    if entry is None:
        return []
    return [get_metric(m) for m in (entry if isinstance(entry, (list, tuple)) else [entry])]


class OutputMetrics:
    """One list of metrics per output.

    Args:
        metrics: A dict keyed by output name, or a list with one entry per output.
        names: The outputs' names, in order.
        losses: The outputs' loss callables (an ``Objective`` tells what the output holds).
        from_logits: ``compile``'s ``from_logits``.

    Raises:
        ValueError: a flat list of metrics whose length is not the number of outputs.
    """

    def __init__(self, metrics: Any, names: list[str], losses: list[Any], from_logits: bool | None) -> None:
        if isinstance(metrics, (list, tuple)) and len(metrics) != len(names):
            raise ValueError(f"compile: with {len(names)} outputs {names}, metrics is a dict keyed by output "
                             f"name or a list of {len(names)} entries (a metric, a list of them, or None)")
        self.names = names
        self.metrics = [_metric_list(entry) for entry in per_output(metrics, names, "metrics", None)]
        self.infos = [loss.info if isinstance(loss, Objective) else None for loss in losses]
        self.from_logits = [loss.from_logits if isinstance(loss, Objective) else from_logits for loss in losses]

    def update(self, predictions: list[Any], targets: list[Any]) -> None:
        for i, (prediction, target) in enumerate(zip(predictions, targets)):
            if not self.metrics[i]:
                continue
            spec = describe_output(prediction, self.infos[i], self.from_logits[i])
            update_metrics(self.metrics[i], prediction, spec, target.array)

    def logs(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{name}_{metric.name}": metric.result()
                for name, metrics in zip(self.names, self.metrics) for metric in metrics}

    def reset(self) -> None:
        for metrics in self.metrics:
            for metric in metrics:
                metric.reset_state()
