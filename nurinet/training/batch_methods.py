"""``Model.fit`` with the batch optimizers: L-BFGS, conjugate gradient, line gradient descent, Hessian-free.

These optimizers (``optimizer.needs_closure``) evaluate the loss several times per
step, so ``fit`` hands them a closure instead of a gradient, as Deeplearning4j does
with its optimization algorithms:

* the batch is the whole training set unless the user passes ``batch_size``
  (:func:`fit_batch_size`), so an epoch is one ``step(closure)``: one iteration of
  ``ConjugateGradient``, ``LineGradientDescent`` and ``HessianFree`` (``max_iter=1``)
  and up to ``max_iter`` of ``LBFGS`` (PyTorch's default 20; pass ``max_iter=1`` for
  one iteration per epoch);
* :func:`closure_train_step` builds the closure from the model's ``forward`` and
  ``compute_loss`` (penalties included) and logs the loss and metrics of the step's
  first evaluation, the point the step started from, as a first-order step logs its
  batch's loss before the update. Constraints are applied after the step.

Everything else in ``fit`` is unchanged: callbacks, early stopping, the progress bar and
checkpoints (the optimizers' state is a ``state_dict`` like any other, so a run resumes
exactly). The loss must not be random: a line search compares losses of one function,
so dropout should be off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Tensor
from nurinet.functional.activation import activation_source
from nurinet.nn.regularizers import apply_constraints
from nurinet.random import resolve

DEFAULT_BATCH_SIZE = 32  # Keras's default for the first-order optimizers


def needs_closure(optimizer: Any) -> bool:
    """Whether ``optimizer`` is a batch method that ``fit`` drives through a closure."""
    return bool(getattr(optimizer, "needs_closure", False))


def holds_samples(x: Any) -> bool:
    """Whether ``x`` is data (an array, a Tensor, a list, a CuPy array), not a loader of batches."""
    return isinstance(x, (np.ndarray, Tensor, list)) or hasattr(x, "__array_interface__") \
        or backend.is_cupy_array(x)


def fit_batch_size(optimizer: Any, x: Any, batch_size: int | None) -> int | None:
    """The batch size ``fit`` uses: the user's, else the whole training set for a batch method, else 32.

    Args:
        optimizer: The model's optimizer.
        x: The training inputs (an array or Tensor; a DataLoader brings its own batches).
        batch_size: What the user passed to ``fit`` (None when left out).
    """
    if batch_size is not None:
        return batch_size
    if needs_closure(optimizer) and holds_samples(x):
        return max(len(x), 1)
    return DEFAULT_BATCH_SIZE


def closure_train_step(model: Any, batch: tuple[Tensor, Tensor]) -> dict[str, float]:
    """One ``optimizer.step(closure)`` on ``batch``; returns the running logs.

    For an optimizer whose closure returns the loss with its graph (``HessianFree``),
    the closure returns ``(loss, logits)`` (the logits behind a softmax or sigmoid
    output, so that the Gauss-Newton matrix is the matched one) and, when the
    optimizer's ``curvature_batch_size`` is smaller than the batch, a second closure
    evaluates a random sub-batch of that size for the curvature products (drawn from
    the default generator, which checkpoints save).
    """
    x, y = batch
    optimizer = model.optimizer
    first: dict[str, Any] = {}
    closure = _closure(model, x, y, first)
    if getattr(optimizer, "closure_returns_graph", False):
        curvature = _curvature_closure(model, optimizer, x, y)
        optimizer.step(closure) if curvature is None else optimizer.step(closure, curvature)
    else:
        optimizer.step(closure)
    apply_constraints(model._attachments()[1])  # constraints (MaxNorm...) project after each update
    model._last_penalty = first["penalty"]
    return model._update_metrics(first["loss"], first["prediction"], y)


def _closure(model: Any, x: Tensor, y: Tensor, first: dict[str, Any]) -> Callable[[], Any]:
    """The closure over ``(x, y)``; it notes its first loss, prediction and penalty in ``first``."""
    optimizer = model.optimizer
    returns_graph = getattr(optimizer, "closure_returns_graph", False)

    def closure() -> Any:
        prediction = model(x)
        loss = model.compute_loss(prediction, y)
        if not first:
            first.update(loss=loss, prediction=prediction, penalty=getattr(model, "_last_penalty", None))
        if returns_graph:
            return loss, _matched_output(prediction)
        optimizer.zero_grad()
        loss.backward()
        return loss

    return closure


def _curvature_closure(model: Any, optimizer: Any, x: Tensor, y: Tensor) -> Callable[[], Any] | None:
    """A closure on a random sub-batch of ``curvature_batch_size`` samples, or None for the whole batch."""
    size = optimizer.param_groups[0].get("curvature_batch_size")
    n = len(x.array)
    if size is None or size >= n:
        return None
    index = resolve(None).choice(n, size=size, replace=False)
    index.sort()
    x_part, y_part = x[index], y[index]

    def curvature_closure() -> Any:
        prediction = model(x_part)
        return model.compute_loss(prediction, y_part), _matched_output(prediction)

    return curvature_closure


def _matched_output(prediction: Tensor) -> Tensor:
    """The logits behind a softmax or sigmoid output (the loss is matched to them), else the output."""
    source = activation_source(prediction)
    return source.logits if source is not None else prediction
