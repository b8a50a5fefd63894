"""``nurinet.keras.Sequential`` and ``Input``: Keras's Sequential API over ``nurinet.training.Model``.

``Sequential`` is a :class:`nurinet.training.Model` whose network is an ``nn.Sequential`` of
the layers, so compile/fit/evaluate/predict/save/``load_model`` work as for any Model. What
differs from ``Model``, for Keras's sake:

- ``Sequential([Input(shape=...), ...])`` builds every layer at construction (so
  ``summary()`` and ``compile`` see the weights); without ``Input`` the layers are built on
  the first batch that ``fit``/``evaluate``/``predict`` sees (``compile`` waits for it), or
  by ``model.build(input_shape)``;
- ``summary()`` needs no argument once the input shape is known;
- ``evaluate`` returns a list ``[loss, *metrics]`` by default (Keras's ``return_dict=False``);
  ``Model.evaluate`` keeps its own default (a dict).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from nurinet import nn
from nurinet.keras import optimizers
from nurinet.keras.functional import Model
from nurinet.keras.layers import build_on
from nurinet.keras.losses import compile_arguments
from nurinet.keras.symbolic import Input, KerasTensor, SymbolicCall
from nurinet.training.model import Model as TrainingModel
from nurinet.training.saving import load_model

# Model and load_model: keras.models.Model, keras.models.load_model
__all__ = ["Input", "KerasInput", "KerasTensor", "Model", "Sequential", "load_model"]


KerasInput = KerasTensor  # what Input returns (the name of earlier versions)


class Sequential(SymbolicCall, TrainingModel):
    """Keras's ``Sequential``: a stack of layers, as a :class:`nurinet.training.Model`.

    Args:
        layers: The layers in order; an ``Input(shape=...)`` first gives the input shape.
        name: Accepted for Keras's sake (unused).
        input_shape: The shape of one sample (what ``Input`` gives; how a saved model is rebuilt).
    """

    def __init__(self, layers: Sequence[Any] | None = None, name: str | None = None,
                 input_shape: Sequence[int] | None = None) -> None:
        super().__init__(nn.Sequential())
        self.input_shape_: tuple[int, ...] | None = None
        self._pending_compile: tuple[tuple, dict] | None = None
        if input_shape is not None:
            self.add(Input(shape=input_shape))
        for layer in layers or ():
            self.add(layer)

    # ----- the layers -----------------------------------------------------------------------
    @property
    def layers(self) -> list[nn.Module]:
        return list(self.network)

    def add(self, layer: Any) -> None:
        """Append a layer (or, first, an ``Input``); built at once when the input shape is known."""
        if isinstance(layer, KerasTensor):
            if layer.node is not None:
                raise TypeError("Sequential takes keras.Input(shape=...) first, not the output of a layer "
                                "(use keras.Model(inputs, outputs) for a graph of layers)")
            if len(self.network):
                raise ValueError("Sequential: an Input must come first, before any layer")
            self.input_shape_ = layer.sample_shape
            return
        if not isinstance(layer, nn.Module):
            raise TypeError(f"Sequential.add expects a layer (an nn.Module) or an Input, got {layer!r}")
        self.network.append(layer)
        if self.input_shape_ is not None:
            self._build_layers()

    def build(self, input_shape: Sequence[Any]) -> None:
        """Build the layers for inputs of ``input_shape`` (Keras's: batch dim first, e.g. ``(None, 28, 28, 1)``)."""
        self.input_shape_ = tuple(int(s) for s in tuple(input_shape)[1:])
        self._build_layers()

    @property
    def built(self) -> bool:
        return self.input_shape_ is not None

    def _build_layers(self) -> None:
        try:
            build_on(list(self.network), self.input_shape_)  # type: ignore[arg-type]
        except Exception as error:
            raise ValueError(f"Sequential: the layers do not fit the input shape {self.input_shape_} "
                             f"(one sample, channels-last images (H, W, C)): {error}") from error

    def _build_from(self, x: Any) -> None:
        """Build from the first data the model sees (arrays or a Tensor), then run a waiting compile."""
        if not self.built:
            shape = getattr(x, "shape", None)
            if shape is None:
                raise ValueError("Sequential: the input shape is unknown; start the model with "
                                 "Input(shape=...) or call model.build((None, *sample_shape))")
            self.build((None, *tuple(shape)[1:]))
        if self._pending_compile is not None:
            args, kwargs = self._pending_compile
            self._pending_compile = None
            super().compile(*args, **kwargs)

    # ----- Model with Keras's defaults -------------------------------------------------------
    def compile(self, optimizer: Any = "adam", loss: Any = None, *args: Any, **kwargs: Any) -> None:
        """``Model.compile`` (a ``keras.losses`` object gives its name and ``from_logits``); before the
        model is built it waits for the first batch of ``fit``; an optimizer name means Keras's
        optimizer with Keras's defaults (``"rmsprop"``: learning rate 1e-3)."""
        optimizer = optimizers.by_keras_name(optimizer)
        loss, from_logits = compile_arguments(loss, kwargs.pop("from_logits", None))
        args = (optimizer, loss, *args)
        if from_logits is not None:
            kwargs["from_logits"] = from_logits
        if self.built:
            super().compile(*args, **kwargs)
        else:
            self._pending_compile = (args, kwargs)

    def fit(self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
        self._build_from(x)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int = 32, verbose: int = 0,
                 callbacks: Sequence[Any] = (), return_dict: bool = False) -> Any:
        """``Model.evaluate``, but a list ``[loss, *metrics]`` by default, as Keras's."""
        self._build_from(x)
        return super().evaluate(x, y, batch_size=batch_size, verbose=verbose, callbacks=callbacks,
                                return_dict=return_dict)

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        self._build_from(x)
        return super().predict(x, *args, **kwargs)

    def summary(self, input_shape: Any = None, print_fn: Callable[[str], Any] | None = None,
                **kwargs: Any) -> None:
        """Keras's ``summary()``: the input shape defaults to the model's own."""
        if input_shape is None:
            if not self.built:
                raise ValueError("Sequential.summary: the model is not built yet; start it with "
                                 "Input(shape=...), call model.build((None, *sample_shape)), or fit it first")
            input_shape = self.input_shape_
        super().summary(input_shape, print_fn=print_fn, **kwargs)

    def get_config(self) -> dict[str, Any]:
        return {"layers": list(self.network), "input_shape": self.input_shape_}
