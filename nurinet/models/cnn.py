"""Small convolutional networks for image classification: LeNet-5, the classic MNIST CNN and a
small VGG-style network.

Each is an ``nn.Module`` taking images ``(N, C, H, W)`` and returning class scores
(logits, no softmax) ``(N, num_classes)``; train them with ``F.cross_entropy``.
"""

from __future__ import annotations

from typing import Any

from nurinet import nn
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.models._arguments import _KeepsArguments
from nurinet.random import Generator


def _check_image(model: nn.Module, x: Tensor, channels: int, size: tuple[int, int]) -> None:
    if x.ndim != 4 or x.shape[1] != channels or tuple(x.shape[2:]) != size:
        raise ValueError(
            f"{type(model).__name__} expects images of shape (N, {channels}, {size[0]}, {size[1]}), got shape "
            f"{x.shape}; build it with in_channels= and input_size= matching your images"
        )


def _size(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class LeNet5(_KeepsArguments):
    """LeNet-5 (LeCun et al. 1998) with average pooling, as in the original.

    ``conv 6@5x5 - act - avgpool 2 - conv 16@5x5 - act - avgpool 2 - fc 120 - act - fc 84 - act - fc
    num_classes``. For 28x28 inputs (MNIST) the first convolution pads by 2, which gives the
    32x32 geometry of the paper; for 32x32 inputs use ``padding=0``. 61,706 parameters for
    1x28x28 inputs and 10 classes.

    Args:
        num_classes: Number of output scores.
        in_channels: Channels of the input images.
        input_size: Height and width of the input images.
        padding: Zero padding of the first convolution.
        activation: "tanh" (the original) or "relu".

    Shape:
        - Input: ``(N, in_channels, H, W)`` with ``(H, W) = input_size``
        - Output: ``(N, num_classes)``
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int | tuple[int, int] = 28,
                 padding: int = 2, activation: str = "tanh") -> None:
        super().__init__()
        self._keep_arguments(locals())
        if activation not in ("tanh", "relu"):
            raise ValueError(f"LeNet5: activation must be 'tanh' or 'relu', got {activation!r}")
        act = nn.Tanh if activation == "tanh" else nn.ReLU
        self.in_channels, self.input_size = in_channels, _size(input_size)
        h, w = (((s + 2 * padding - 4) // 2 - 4) // 2 for s in self.input_size)
        if h < 1 or w < 1:
            raise ValueError(f"LeNet5: input_size {self.input_size} with padding {padding} is too small "
                             "(it needs at least 28x28 with padding 2, or 32x32 without)")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=padding), act(), nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5), act(), nn.AvgPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * h * w, 120), act(), nn.Linear(120, 84), act(), nn.Linear(84, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        _check_image(self, x, self.in_channels, self.input_size)
        return self.classifier(self.features(x))


class MnistCNN(_KeepsArguments):
    """The classic small MNIST CNN (the Keras ``mnist_cnn`` example).

    ``conv 32@3x3 - relu - conv 64@3x3 - relu - maxpool 2 - dropout 0.25 - flatten - fc 128 - relu -
    dropout 0.5 - fc num_classes``. 1,199,882 parameters for 1x28x28 inputs and 10 classes; about
    99% test accuracy on MNIST after a few epochs of Adam.

    The second ReLU runs after the max-pool, not before: the two commute (the maximum of rectified
    values is the rectified maximum, with the same window and the same gradient), and the ReLU then
    touches a quarter of the elements. Outputs, gradients and the parameter names are those of the
    order above.

    Args:
        num_classes: Number of output scores.
        in_channels: Channels of the input images.
        input_size: Height and width of the input images.
        generator: Source of the dropout masks (default: ``nurinet.manual_seed``'s generator).

    Shape:
        - Input: ``(N, in_channels, H, W)`` with ``(H, W) = input_size``
        - Output: ``(N, num_classes)``
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int | tuple[int, int] = 28,
                 generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        self.in_channels, self.input_size = in_channels, _size(input_size)
        h, w = ((s - 4) // 2 for s in self.input_size)
        if h < 1 or w < 1:
            raise ValueError(f"MnistCNN: input_size {self.input_size} is too small (at least 6x6)")
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.MaxPool2d(2), nn.ReLU(),
            nn.Dropout(0.25, generator=generator),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * h * w, 128), nn.ReLU(), nn.Dropout(0.5, generator=generator),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        _check_image(self, x, self.in_channels, self.input_size)
        return self.classifier(self.features(x))


class SmallVGG(_KeepsArguments):
    """A small VGG-style network (Simonyan and Zisserman 2014): two blocks of two 3x3 convolutions
    and a 2x2 max-pool, then a two-layer classifier.

    ``[conv 3x3 (pad 1) - (batchnorm) - relu] x 2 - maxpool 2`` with ``widths[0]`` then
    ``widths[1]`` channels, then ``flatten - fc hidden - relu - dropout - fc num_classes``. With
    ``batch_norm=True`` the convolutions have no bias (the normalization's shift replaces it).

    Args:
        num_classes: Number of output scores.
        in_channels: Channels of the input images.
        input_size: Height and width of the input images (multiples of 4 keep every pixel).
        widths: Channels of the two blocks.
        hidden: Width of the hidden classifier layer.
        batch_norm: Put a BatchNorm2d after each convolution.
        dropout: Dropout probability in the classifier.
        generator: Source of the dropout masks.

    Shape:
        - Input: ``(N, in_channels, H, W)`` with ``(H, W) = input_size``
        - Output: ``(N, num_classes)``
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, input_size: int | tuple[int, int] = 32,
                 widths: tuple[int, int] = (32, 64), hidden: int = 256, batch_norm: bool = False,
                 dropout: float = 0.5, generator: Generator | None = None) -> None:
        super().__init__()
        self._keep_arguments(locals())
        self.in_channels, self.input_size = in_channels, _size(input_size)
        h, w = (s // 4 for s in self.input_size)
        if h < 1 or w < 1:
            raise ValueError(f"SmallVGG: input_size {self.input_size} is too small (at least 4x4)")
        layers: list[Any] = []
        channels = in_channels
        for width in widths:
            for _ in range(2):
                layers.append(nn.Conv2d(channels, width, 3, padding=1, bias=not batch_norm))
                layers += [nn.BatchNorm2d(width), nn.ReLU()] if batch_norm else [nn.ReLU()]
                channels = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * h * w, hidden), nn.ReLU(), nn.Dropout(dropout, generator=generator),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = as_tensor(x)
        _check_image(self, x, self.in_channels, self.input_size)
        return self.classifier(self.features(x))
