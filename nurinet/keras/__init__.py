"""Keras's layer names over nurinet: ``nurinet.keras.Sequential``, ``Input``, ``layers``, ``utils``.

A Keras model ports by changing the imports (``keras`` -> ``nurinet.keras``), e.g. Keras's
"Simple MNIST convnet" (``examples/tutorials/keras_mnist_convnet.py``). The layers take
channels-last inputs ``(N, H, W, C)`` and keep Keras's weight layout (``nurinet/keras/layers.py``);
``Sequential`` and the functional ``Model(inputs, outputs)`` are :class:`nurinet.training.Model`
objects (``nurinet/keras/models.py``, ``nurinet/keras/functional.py``); ``losses``,
``optimizers`` and ``metrics`` hold Keras's names for nurinet's. What is
there and what differs: ``docs/porting.md``, "From Keras". Not imported by ``import nurinet``.
"""

from nurinet.keras import layers, losses, metrics, models, optimizers, utils
from nurinet.keras.functional import Model
from nurinet.keras.models import Input, KerasTensor, Sequential

__all__ = ["Input", "KerasTensor", "Model", "Sequential", "layers", "losses", "metrics", "models", "optimizers",
           "utils"]
