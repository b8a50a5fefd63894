"""Keras's layer names over nurinet: ``nurinet.keras.Sequential``, ``Input``, ``layers``, ``utils``.

A Keras model ports by changing the imports (``keras`` -> ``nurinet.keras``), e.g. Keras's
"Simple MNIST convnet" (``examples/tutorials/keras_mnist_convnet.py``). The layers take
channels-last inputs ``(N, H, W, C)`` and keep Keras's weight layout (``nurinet/keras/layers.py``);
``Sequential`` is a :class:`nurinet.training.Model` (``nurinet/keras/models.py``). What is
there and what differs: ``docs/porting.md``, "From Keras". Not imported by ``import nurinet``.
"""

from nurinet.keras import layers, models, utils
from nurinet.keras.models import Input, Sequential

__all__ = ["Input", "Sequential", "layers", "models", "utils"]
