"""Ready-made networks built from ``nurinet.nn`` layers."""

from nurinet.models.cnn import LeNet5, MnistCNN, SmallVGG
from nurinet.models.transformer import TransformerClassifier

__all__ = [
    "LeNet5",
    "MnistCNN",
    "SmallVGG",
    "TransformerClassifier",
]
