"""Keras's conveniences of ``Model.fit``: ``steps_per_epoch``, ``validation_steps``,
``validation_freq``, ``sample_weight`` (and a third element of ``validation_data``) and the
checks of ``class_weight``.

Where nurinet had to choose (``docs/porting.md`` lists them):

* ``steps_per_epoch=s``: an epoch is ``s`` batches. As in Keras 3, the training data is *not*
  restarted at each epoch: the next epoch continues where the last one stopped, and a finite
  source (arrays, a DataLoader) starts over (reshuffled) when it runs out, so every sample is
  seen. A one-pass iterator (a generator) cannot start over: when it runs out, training stops
  after that epoch with a warning, as Keras's "your input ran out of data".
* ``validation_steps=v``: each validation reads the first ``v`` batches of the validation data,
  from its start every time (a one-pass iterator continues), so that ``val_loss`` is measured on
  the same batches at each epoch (Keras 3 continues an iterator across validations).
* ``validation_freq=f``: validate after epochs ``f, 2f, ...`` (counted from 1, as Keras 3, which
  accepts only an int); the other epochs' logs have no ``val_`` entries.
* ``sample_weight`` is split off with ``validation_split`` (the last fraction, before shuffling)
  and shuffled with ``x`` and ``y``; it weights the loss only, not the metrics.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from collections.abc import Iterator
from typing import Any

from nurinet.autograd.tensor import Tensor
from nurinet.training.batch_methods import holds_samples
from nurinet.training.loss_weights import check_class_weight


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """The checked options of one ``fit`` call.

    Attributes:
        steps_per_epoch: Batches per epoch, or None for one pass over the data.
        validation_steps: Batches per validation, or None for all of the validation data.
        validation_freq: Validate every this many epochs.
        class_weight: ``{class index: weight}``, or None.
    """

    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    validation_freq: int = 1
    class_weight: dict[int, float] | None = None

    def validates(self, epoch: int) -> bool:
        """Whether the epoch ``epoch`` (counted from 0) ends with a validation."""
        return (epoch + 1) % self.validation_freq == 0


def fit_options(steps_per_epoch: Any = None, validation_steps: Any = None, validation_freq: Any = 1,
                class_weight: Any = None) -> FitOptions:
    """Check ``fit``'s options and gather them.

    Raises:
        ValueError: a count that is not a whole number >= 1 (None allowed for the steps), or a bad
            ``class_weight`` (see :func:`nurinet.training.loss_weights.check_class_weight`).
        TypeError: ``class_weight`` is not a dict of numbers.
    """
    for name, value in (("steps_per_epoch", steps_per_epoch), ("validation_steps", validation_steps)):
        if value is not None and not _whole(value):
            raise ValueError(f"fit: {name} must be a whole number >= 1 (batches per epoch) or None "
                             f"(the whole data), got {value!r}")
    if not _whole(validation_freq):
        raise ValueError(f"fit: validation_freq must be a whole number >= 1 (validate every that many "
                         f"epochs; a list of epochs is not accepted, as in Keras 3), got {validation_freq!r}")
    return FitOptions(None if steps_per_epoch is None else int(steps_per_epoch),
                      None if validation_steps is None else int(validation_steps),
                      int(validation_freq), check_class_weight(class_weight))


def _whole(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= 1


def unpack_batch(batch: Any) -> tuple[Any, Any, Any]:
    """``(x, y, sample_weight)`` of a batch ``(x, y)`` or ``(x, y, sample_weight)``.

    Raises:
        ValueError: the batch is not a pair or a triple.
    """
    if isinstance(batch, (tuple, list)):
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return batch[0], batch[1], batch[2]
    size = f"a {type(batch).__name__} of {len(batch)} item(s)" if isinstance(batch, (tuple, list)) \
        else f"a {type(batch).__name__}"
    raise ValueError(f"fit: each batch must be (x, y) or (x, y, sample_weight), got {size}")


def validation_parts(data: Any) -> tuple[Any, Any, Any]:
    """``validation_data`` as ``(x, y, sample_weight)``; a loader stands for all three.

    Raises:
        ValueError: a tuple of another length, or one array without its targets.
    """
    if isinstance(data, (tuple, list)):
        if len(data) not in (2, 3):
            raise ValueError(f"fit: validation_data must be (x_val, y_val), (x_val, y_val, "
                             f"val_sample_weight) or a DataLoader, got a {type(data).__name__} of "
                             f"{len(data)} item(s)")
        return data[0], data[1], data[2] if len(data) == 3 else None
    if holds_samples(data):
        raise ValueError("fit: validation_data must be (x_val, y_val) or a DataLoader, got one array; "
                         "pass the targets too")
    return data, None, None


def sample_count(a: Any) -> int:
    """The number of samples of an array or Tensor (its first dim)."""
    return len(a.array if isinstance(a, Tensor) else a)


def split_validation(x: Any, y: Any, sample_weight: Any, fraction: float) -> tuple[Any, Any, Any, tuple]:
    """Hold out the last ``fraction`` of ``x``, ``y`` (and ``sample_weight``), before shuffling.

    Returns:
        ``(x_train, y_train, sample_weight_train, validation_data)``.

    Raises:
        ValueError: ``fraction`` outside (0, 1), data that is not arrays, no targets, or a split
            that leaves one side empty.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fit: validation_split must be in [0, 1), got {fraction}")
    if not holds_samples(x):
        raise ValueError("fit: validation_split needs arrays x and y (it holds out their last samples); "
                         "with a DataLoader, pass validation_data=<another loader> instead")
    if y is None:
        raise ValueError("fit: validation_split needs targets y as well as inputs x")
    n = sample_count(x)
    cut = n - round(n * fraction)
    if cut <= 0 or cut >= n:
        raise ValueError(f"validation_split={fraction} leaves no training or no validation data of {n}")
    if sample_weight is None:
        return x[:cut], y[:cut], None, (x[cut:], y[cut:])
    return x[:cut], y[:cut], sample_weight[:cut], (x[cut:], y[cut:], sample_weight[cut:])


class EpochBatches:
    """The batches of each epoch from a loader (a DataLoader, or any iterable of batches).

    Args:
        loader: The source of batches.
        steps: Batches per epoch; None: one pass over ``loader`` per epoch.
        restart: Start every epoch from the loader's beginning (validation) rather than where
            the previous one stopped (training, as Keras 3).
        who: Names the data in the warning when it runs out.

    Attributes:
        exhausted: A one-pass iterator ran out before an epoch had its ``steps`` batches.
    """

    def __init__(self, loader: Any, steps: int | None = None, restart: bool = False,
                 who: str = "fit") -> None:
        self.loader, self.steps, self.restart, self.who = loader, steps, restart, who
        self.exhausted = False
        self._iterator: Iterator[Any] | None = None

    def length(self) -> int | None:
        """Batches per epoch, or None when the loader does not know its length."""
        if self.steps is not None:
            return self.steps
        try:
            return len(self.loader)
        except TypeError:
            return None

    def epoch(self) -> Iterator[Any]:
        """The batches of the next epoch."""
        if self.steps is None:
            yield from self.loader
            return
        if self.restart:
            self._iterator = None
        taken, fresh = 0, False
        while taken < self.steps:
            if self._iterator is None:
                self._iterator, fresh = iter(self.loader), True
            try:
                batch = next(self._iterator)
            except StopIteration:
                self._iterator = None
                if fresh or isinstance(self.loader, Iterator):  # nothing to start over from
                    self._ran_out(taken)
                    return
                continue
            fresh = False
            taken += 1
            yield batch

    def _ran_out(self, taken: int) -> None:
        self.exhausted = True
        if self.restart:
            warnings.warn(f"{self.who}: the data ran out after {taken} of {self.steps} validation steps",
                          RuntimeWarning, stacklevel=3)
            return
        warnings.warn(f"{self.who}: the data ran out after {taken} of {self.steps} steps of this epoch; "
                      "training stops after it. Make sure the data gives at least steps_per_epoch * "
                      "epochs batches (a generator cannot start over)", RuntimeWarning, stacklevel=3)
