"""``summary(model, input_shape)``: a table of a model's layers, output shapes and parameters.

The output shapes come from one forward pass on zeros (eval mode, no graph
recorded): every submodule's ``forward`` is wrapped for the duration of the
pass to note the shape of what it returns, then unwrapped, so any model works,
not only ``Sequential`` ones. Parameters are counted once even when shared;
frozen ones (``requires_grad=False``) are counted apart from trainable ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Tensor
from nurinet.nn.module import Module, module_device


@dataclasses.dataclass
class LayerRow:
    """One line of the table: a module, the shape of its output and its own parameters."""

    name: str
    type: str
    depth: int
    output_shape: Any
    trainable: int
    frozen: int

    @property
    def params(self) -> int:
        return self.trainable + self.frozen


@dataclasses.dataclass
class ModelSummary:
    """The result of :func:`summary`; ``str()`` gives the table."""

    model_name: str
    input_shape: Any
    rows: list[LayerRow]
    output_shape: Any
    trainable_params: int
    frozen_params: int
    param_bytes: int
    buffer_bytes: int

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.frozen_params

    def __str__(self) -> str:
        header = ("Layer (type)", "Output shape", "Param #", "Frozen")
        lines = [(("  " * row.depth) + f"{row.name} ({row.type})", _shape_text(row.output_shape),
                  f"{row.params:,}", f"{row.frozen:,}" if row.frozen else "") for row in self.rows]
        widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
                  for i, h in enumerate(header)]
        rule = "-" * (sum(widths) + 3 * (len(widths) - 1))

        def fmt(cells: Sequence[str]) -> str:
            return " | ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        out = [f"{self.model_name}, one sample of shape {_shape_text(self.input_shape)}", rule.replace("-", "="),
               fmt(header), rule, *(fmt(line) for line in lines), rule.replace("-", "=")]
        out += [f"Output shape: {_shape_text(self.output_shape)}",
                f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Frozen params: {self.frozen_params:,}",
                f"Parameter memory: {_bytes_text(self.param_bytes)}",
                f"Buffer memory: {_bytes_text(self.buffer_bytes)}"]
        return "\n".join(out)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython and Jupyter show the table (once) when a cell ends with ``summary(...)``."""
        printer.text(str(self))


def _shape_text(shape: Any) -> str:
    if shape is None:
        return "-"
    if isinstance(shape, tuple) and all(isinstance(d, int) for d in shape):
        return str(shape)
    if isinstance(shape, (tuple, list)):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    return str(shape)


def _bytes_text(n: int) -> str:
    return f"{n:,} B" if n < 1024 else f"{n:,} B ({n / 1024 ** 2:.2f} MiB)"


def _shape_of(value: Any) -> Any:
    if isinstance(value, (Tensor, np.ndarray)):
        return tuple(int(d) for d in value.shape)
    if isinstance(value, (tuple, list)):
        return [_shape_of(v) for v in value]
    return type(value).__name__


def _inputs(model: Module, input_shape: Any, batch_size: int, dtype: Any) -> list[Tensor]:
    """Zeros of ``(batch_size, *shape)`` for each input shape, in the model's floating dtype and on its device."""
    if dtype is None:
        dtype = next((p.array.dtype for p in model.parameters() if p.array.dtype.kind == "f"), np.float32)
    device = module_device(model)
    shapes = [input_shape] if all(isinstance(d, (int, np.integer)) for d in input_shape) else input_shape
    return [Tensor._wrap(backend.to_device(np.zeros((batch_size, *map(int, s)), dtype), device), False)
            for s in shapes]


def summary(model: Module, input_shape: Sequence[int] | Sequence[Sequence[int]], *, batch_size: int = 1,
            dtype: Any = None, print_fn: Any = None) -> ModelSummary:
    """Describe ``model`` layer by layer by running it once on zeros.

    Args:
        model: Any module.
        input_shape: The shape of one sample, without the batch dim (``(64,)``,
            ``(1, 28, 28)``), or a list of such shapes for a model with several inputs.
        batch_size: Batch dim of the traced input (the output shapes include it).
        dtype: Input dtype (default: the model's first floating parameter's, else
            float32); e.g. ``"int64"`` for a model that starts with an Embedding.
        print_fn: Called with each line of the table, as Keras's ``print_fn`` (``print``
            for instance); nothing is printed by default.

    Returns:
        A :class:`ModelSummary`; ``print(summary(...))`` shows the table, and so does a
        notebook cell that ends with ``summary(...)`` (once: nothing is printed unless
        ``print_fn`` is given).

    Raises:
        ValueError: the forward pass fails on the given shape (the message shows the shape).
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary expects a Module, got {type(model).__name__}")
    if not isinstance(input_shape, (tuple, list)) or not input_shape:
        raise TypeError(f"summary: input_shape must be the shape of one sample, such as (64,), got "
                        f"{input_shape!r}")
    inputs = _inputs(model, input_shape, batch_size, dtype)
    shapes: dict[int, Any] = {}
    wrapped = [m for m in model.modules() if "forward" not in m.__dict__]
    for module in wrapped:
        object.__setattr__(module, "forward", _recorder(module, shapes))
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            output = model(*inputs)
    except Exception as error:
        shown = [tuple(x.shape) for x in inputs]
        raise ValueError(f"summary could not run {type(model).__name__} on zeros of shape "
                         f"{shown[0] if len(shown) == 1 else shown}: {error}") from error
    finally:
        for module in wrapped:
            del module.__dict__["forward"]
        model.train(was_training)
    return _collect(model, input_shape, shapes, _shape_of(output), print_fn)


def _recorder(module: Module, shapes: dict[int, Any]) -> Any:
    forward = type(module).forward.__get__(module)

    def record(*args: Any, **kwargs: Any) -> Any:
        out = forward(*args, **kwargs)
        shapes.setdefault(id(module), _shape_of(out))  # a module called twice shows its first output
        return out

    return record


def _collect(model: Module, input_shape: Any, shapes: dict[int, Any], output: Any,
             print_fn: Any) -> ModelSummary:
    rows = []
    for name, module in model.named_modules():
        if module is model:
            continue
        own = list(module.parameters(recurse=False))
        trainable = sum(p.numel() for p in own if p.requires_grad)
        rows.append(LayerRow(name, type(module).__name__, name.count("."), shapes.get(id(module)),
                             trainable, sum(p.numel() for p in own) - trainable))
    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    result = ModelSummary(
        type(model).__name__, tuple(input_shape), rows, output, trainable,
        sum(p.numel() for p in params) - trainable, sum(int(p.array.nbytes) for p in params),
        sum(int(b.array.nbytes) for b in model.buffers()),
    )
    if print_fn is not None:
        for line in str(result).splitlines():
            print_fn(line)
    return result
