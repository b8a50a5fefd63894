"""Keras's ``keras.optimizers``: optimizers made without the parameters, with Keras's defaults.

A Keras optimizer is created before the model's weights are known
(``compile(optimizer=keras.optimizers.RMSprop())``); nurinet's (PyTorch's) take the parameters
first. Each class here keeps Keras's hyperparameters under Keras's names and defaults
(``learning_rate``, ``beta_1``, ``rho``, ``epsilon=1e-7``...) and is the factory that
``nurinet.training.Model.compile`` accepts: called with the parameters it returns the nurinet
optimizer (``RMSprop.rho`` is PyTorch's ``alpha``), which ``Model.save`` stores by class and
hyperparameters as any other.
"""

from __future__ import annotations

from typing import Any

from nurinet import optim
from nurinet.names import name_key

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Nadam", "Optimizer", "RMSprop", "by_keras_name", "get"]


class Optimizer:
    """A Keras optimizer: hyperparameters now, a nurinet optimizer once given the parameters."""

    def __init__(self, learning_rate: float, weight_decay: float | None = None, **kwargs: Any) -> None:
        self.learning_rate = float(learning_rate)
        self.weight_decay = weight_decay
        unsupported = sorted(k for k in kwargs if k != "name")
        if unsupported:
            raise TypeError(f"keras.optimizers.{type(self).__name__}: {', '.join(unsupported)} not supported "
                            "(gradient clipping, EMA and accumulation: see nurinet.training.Model.compile)")

    def __call__(self, params: Any) -> optim.Optimizer:
        return self._build(params)

    def _build(self, params: Any) -> optim.Optimizer:
        raise NotImplementedError

    def _decay(self) -> dict[str, float]:
        return {} if self.weight_decay is None else {"weight_decay": float(self.weight_decay)}

    def __repr__(self) -> str:
        return f"keras.optimizers.{type(self).__name__}(learning_rate={self.learning_rate})"


class SGD(Optimizer):
    """Keras's ``SGD(learning_rate=0.01, momentum=0.0, nesterov=False)``."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _build(self, params: Any) -> optim.Optimizer:
        return optim.SGD(params, lr=self.learning_rate, momentum=self.momentum, nesterov=self.nesterov,
                         **self._decay())


class RMSprop(Optimizer):
    """Keras's ``RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False)``."""

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = float(rho), float(momentum), float(epsilon), centered

    def _build(self, params: Any) -> optim.Optimizer:
        return optim.RMSprop(params, lr=self.learning_rate, alpha=self.rho, eps=self.epsilon,
                             momentum=self.momentum, centered=bool(self.centered), **self._decay())


class Adam(Optimizer):
    """Keras's ``Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False)``."""

    _class: Any = optim.Adam

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = float(beta_1), float(beta_2), float(epsilon), amsgrad

    def _build(self, params: Any) -> optim.Optimizer:
        return self._class(params, lr=self.learning_rate, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                           amsgrad=bool(self.amsgrad), **self._decay())


class AdamW(Adam):
    """Keras's ``AdamW(learning_rate=0.001, weight_decay=0.004, ...)``: decoupled weight decay."""

    _class = optim.AdamW

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004, **kwargs: Any) -> None:
        super().__init__(learning_rate, weight_decay=weight_decay, **kwargs)


class Nadam(Optimizer):
    """Keras's ``Nadam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)``."""

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def _build(self, params: Any) -> optim.Optimizer:
        return optim.NAdam(params, lr=self.learning_rate, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                           **self._decay())


class Adagrad(Optimizer):
    """Keras's ``Adagrad(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7)``."""

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **kwargs: Any) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), float(epsilon)

    def _build(self, params: Any) -> optim.Optimizer:
        return optim.Adagrad(params, lr=self.learning_rate, eps=self.epsilon,
                             initial_accumulator_value=self.initial_accumulator_value, **self._decay())


_BY_NAME = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW, "nadam": Nadam, "adagrad": Adagrad}


def _keras_class(identifier: Any) -> type[Optimizer] | None:
    """The Keras optimizer class a name stands for (case, ``_`` and ``-`` ignored, as nurinet's
    names are), or None."""
    return _BY_NAME.get(name_key(identifier)) if isinstance(identifier, str) else None


def get(identifier: Any) -> Any:
    """Keras's ``keras.optimizers.get``: a Keras optimizer from its name (with Keras's defaults),
    or the object itself."""
    if not isinstance(identifier, str):
        return identifier
    cls = _keras_class(identifier)
    if cls is None:
        raise ValueError(f"keras.optimizers.get: unknown optimizer {identifier!r}; known: {sorted(_BY_NAME)}")
    return cls()


def by_keras_name(identifier: Any) -> Any:
    """What ``compile(optimizer=...)`` of a Keras model gets: a Keras name (``"rmsprop"``) means Keras's
    optimizer with Keras's defaults (learning rate 1e-3, not PyTorch's 1e-2); any other value (an
    object, or a name only nurinet knows) is passed on unchanged."""
    cls = _keras_class(identifier)
    return identifier if cls is None else cls()
