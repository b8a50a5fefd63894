"""Figures with matplotlib (the optional extra ``pip install nurinet[plot]``).

Training curves from a History, a confusion matrix, a ROC curve, a learning-rate
finder's loss curve, and a picture of a network's layers drawn as boxes and
arrows (no Graphviz). matplotlib is imported inside each function, so
``import nurinet.plots`` costs nothing without it. Every function returns the
``matplotlib.figure.Figure`` (built without pyplot, so no global figure state
and no GUI backend is touched) and writes it to ``path`` when one is given.

In a Jupyter notebook a cell that ends with one of these calls shows the figure
once, as an image: nothing calls ``plt.show()`` and pyplot keeps no reference to
the figure, so the inline backend does not draw it a second time. Jupyter draws
a Figure as an image only once its PNG formatter is registered, which the inline
backend does when pyplot is imported; a fresh kernel that has not imported
pyplot would show ``<Figure size ...>`` text, so :func:`_finish` registers the
formatter itself when none is (:func:`_show_inline_in_ipython`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _figure(size: tuple[float, float]) -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("nurinet.plots needs matplotlib: pip install 'nurinet[plot]' "
                          "(or pip install matplotlib)") from None
    return Figure(figsize=size)


def _finish(fig: Any, path: str | Path | None) -> Any:
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    _show_inline_in_ipython()
    return fig


def _show_inline_in_ipython() -> None:
    """Let IPython display a returned Figure as a PNG when no figure format is registered yet.

    ``%matplotlib inline`` (the default backend in ipykernel) registers the format
    only when pyplot is imported; these figures are built without pyplot. A format
    the user chose (``%config InlineBackend.figure_formats = ["svg"]``, or pyplot
    already imported) is left as it is. Outside IPython nothing happens: IPython
    is not imported here.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    from matplotlib.figure import Figure

    formatters = shell.display_formatter.formatters
    if any(_formats(formatters.get(mime), Figure) for mime in ("image/png", "image/svg+xml", "image/jpeg",
                                                               "application/pdf")):
        return
    from functools import partial

    from IPython.core.pylabtools import print_figure

    # What IPython's select_figure_formats(shell, {"png"}) registers, without its backend lookup.
    formatters["image/png"].for_type(Figure, partial(print_figure, fmt="png", base64=True))


def _formats(formatter: Any, cls: type) -> bool:
    """Whether an IPython display ``formatter`` has a printer for ``cls``."""
    if formatter is None:
        return False
    try:
        formatter.lookup_by_type(cls)
    except KeyError:
        return False
    return True


def plot_history(history: Any, metrics: Sequence[str] | None = None, path: str | Path | None = None) -> Any:
    """Training curves: one panel per metric, with its ``val_`` curve on the same axes.

    Args:
        history: The History returned by ``Model.fit`` (or its ``.history`` dict).
        metrics: Names to draw (``"loss"``, ``"accuracy"``); default: every
            logged name that does not start with ``val_``.
        path: Where to save the figure (PNG, SVG, PDF by extension).
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError("plot_history: the history is empty; pass the History that fit() returned")
    names = list(metrics) if metrics is not None else [k for k in logs if not k.startswith("val_")]
    missing = [n for n in names if n not in logs]
    if missing:
        raise ValueError(f"plot_history: {missing} not in the history; it has {sorted(logs)}")
    fig = _figure((4.5 * len(names), 3.5))
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        epochs = np.arange(1, len(logs[name]) + 1)
        ax.plot(epochs, logs[name], marker="o", ms=3, label="train")
        if "val_" + name in logs:
            ax.plot(epochs, logs["val_" + name], marker="o", ms=3, label="validation")
        ax.set(xlabel="epoch", ylabel=name, title=name)
        ax.grid(alpha=0.3)
        ax.legend()
    return _finish(fig, path)


def plot_confusion_matrix(matrix: Any, labels: Sequence[str] | None = None, normalize: bool = False,
                          path: str | Path | None = None) -> Any:
    """A confusion matrix as a heat map with the counts written in the cells.

    Args:
        matrix: A (C, C) array (rows true, columns predicted) or a ClassificationReport.
        labels: Class names; a report's own labels by default.
        normalize: Show each row as fractions of the true class.
        path: Where to save the figure.
    """
    if hasattr(matrix, "confusion"):
        labels = labels if labels is not None else matrix.labels
        matrix = matrix.confusion
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"plot_confusion_matrix: expected a square matrix, got shape {m.shape}")
    if normalize:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = m.shape[0]
    names = [str(i) for i in range(n)] if labels is None else [str(s) for s in labels]
    fig = _figure((1.0 + 0.5 * n, 0.8 + 0.5 * n) if n > 6 else (4.5, 4))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(m, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ax.set(xticks=range(n), yticks=range(n), xticklabels=names, yticklabels=names,
           xlabel="predicted", ylabel="true", title="confusion matrix")
    for i in range(n):
        for j in range(n):
            text = f"{m[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if m[i, j] > m.max() / 2 else "black")
    return _finish(fig, path)


def plot_roc_curve(y_true: Any, scores: Any = None, path: str | Path | None = None) -> Any:
    """The ROC curve with its AUC, against the diagonal of a random classifier.

    Args:
        y_true: Binary labels, or a ``RocCurve`` (then ``scores`` is not needed).
        scores: A score per sample.
        path: Where to save the figure.
    """
    from nurinet.training.curves import RocCurve, roc_curve

    curve = y_true if isinstance(y_true, RocCurve) else roc_curve(y_true, scores)
    auc = float(np.sum(np.diff(curve.fpr) * (curve.tpr[1:] + curve.tpr[:-1]) / 2))
    fig = _figure((4.5, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(curve.fpr, curve.tpr, label=f"ROC (AUC = {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="gray", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve",
           xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def plot_lr_finder(lrs: Any, losses: Any = None, path: str | Path | None = None,
                   skip_end: int = 0) -> Any:
    """Loss against learning rate (log axis) from a learning-rate range test.

    Args:
        lrs: The learning rates tried, or an object with ``lrs`` and ``losses``
            attributes (a finder's result).
        losses: The loss at each learning rate.
        path: Where to save the figure.
        skip_end: Leave out the last points (where the loss has blown up).

    The steepest descent of the (lightly smoothed) loss is marked: a common
    choice of learning rate.
    """
    if losses is None and hasattr(lrs, "losses"):
        lrs, losses = lrs.lrs, lrs.losses
    lr, loss = np.asarray(lrs, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    if lr.shape != loss.shape or lr.ndim != 1 or lr.size < 2:
        raise ValueError(f"plot_lr_finder: need two 1-d arrays of equal length >= 2, got shapes "
                         f"{lr.shape} and {loss.shape}")
    if (lr <= 0).any():
        raise ValueError("plot_lr_finder: learning rates must be positive (the axis is logarithmic)")
    if skip_end:
        lr, loss = lr[:-skip_end], loss[:-skip_end]
    fig = _figure((5, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(lr, loss)
    ax.set_xscale("log")
    finite = np.isfinite(loss)
    if finite.sum() >= 3:
        steepest = int(np.argmin(np.gradient(loss[finite], np.log(lr[finite]))))
        ax.scatter([lr[finite][steepest]], [loss[finite][steepest]], color="red", zorder=3,
                   label=f"steepest: {lr[finite][steepest]:.2g}")
        ax.legend()
    ax.set(xlabel="learning rate", ylabel="loss", title="learning-rate finder")
    ax.grid(alpha=0.3, which="both")
    return _finish(fig, path)


def _layers(module: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """The layers in order: containers are opened, a module owning parameters is one layer."""
    children = list(module.named_children())
    if not children or any(True for _ in module.parameters(recurse=False)):
        return [(prefix or type(module).__name__, module)]
    out = []
    for name, child in children:
        out.extend(_layers(child, f"{prefix}.{name}" if prefix else name))
    return out


def _label(name: str, layer: Any) -> str:
    extra = layer.extra_repr() if hasattr(layer, "extra_repr") else ""
    extra = extra if len(extra) <= 60 else extra[:57] + "..."
    count = sum(int(np.prod(p.shape)) for p in layer.parameters(recurse=False)) \
        if hasattr(layer, "parameters") else 0
    lines = [f"{name}: {type(layer).__name__}"]
    if extra:
        lines.append(extra)
    if count:
        lines.append(f"{count:,} parameters")
    return "\n".join(lines)


def plot_network(model: Any, path: str | Path | None = None, title: str | None = None) -> Any:
    """The network's layers drawn top to bottom as boxes joined by arrows.

    Containers (Sequential, Model) are opened up to their leaf layers, in the
    order they were registered (the data-flow order for a Sequential). Each
    box names the layer, its settings and its parameter count.

    Args:
        model: A Module or Model.
        path: Where to save the figure.
        title: Heading; default the model's class and total parameter count.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if not hasattr(model, "named_children"):
        raise TypeError(f"plot_network expects a nurinet Module, got {type(model).__name__}")
    layers = _layers(model)
    n = len(layers)
    fig = _figure((5.0, 0.4 + 0.85 * n))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_xlim(0, 1)
    ax.set_ylim(-n, 0.2)
    ax.axis("off")
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    for i, (name, layer) in enumerate(layers):
        own = list(layer.parameters(recurse=False))
        frozen = bool(own) and not any(id(p) in trainable for p in own)
        color = "#d9d9d9" if frozen else ("#cfe2f3" if own else "#fff2cc")
        box = FancyBboxPatch((0.1, -i - 0.75), 0.8, 0.6, boxstyle="round,pad=0.02",
                             facecolor=color, edgecolor="#333333")
        ax.add_patch(box)
        ax.text(0.5, -i - 0.45, _label(name, layer) + ("  (frozen)" if frozen else ""),
                ha="center", va="center", fontsize=8)
        if i:
            ax.add_patch(FancyArrowPatch((0.5, -i + 0.13), (0.5, -i - 0.13), arrowstyle="-|>",
                                         mutation_scale=12, color="#333333"))
    total = sum(int(np.prod(p.shape)) for p in model.parameters())
    ax.set_title(title or f"{type(model).__name__}: {total:,} parameters", fontsize=10)
    return _finish(fig, path)
