"""Data for the ported tutorials: no downloads.

The tutorials read FashionMNIST / MNIST through torchvision or keras.datasets, which download them.
Here the default is nurinet's bundled 8x8 digits (1,797 images, UCI "Optical Recognition of
Handwritten Digits"), upsampled to MNIST's 28x28 frame so that the tutorials' layer sizes
(28*28 inputs, fc1 9216) stay as written: each pixel is repeated 3x3 (24x24) and the image is
padded with 2 zero pixels on each side (MNIST centres a 20x20 digit in 28x28 the same way), with
the pixels scaled from 0..16 to [0, 1]. A fixed permutation (seed 0) keeps 80% (1,438) to train and
20% (359) to test.

``--mnist DIR`` reads MNIST's 10,000-image test set (``t10k-*-idx*-ubyte.gz``, the only MNIST files
kept for development) from DIR instead and splits it with seed 0 into 8,000 images to train and
2,000 to test.
"""

from __future__ import annotations

import numpy as np


def load_images(mnist_dir=None, seed=0):
    """``(x_train, y_train, x_test, y_test)``: float32 images ``(N, 1, 28, 28)`` in [0, 1] and
    int64 labels."""
    if mnist_dir:
        from nurinet.data import load_mnist

        x, y = load_mnist(mnist_dir, kind="t10k", normalize=True, flatten=False)
        n_train = 8000
    else:
        from nurinet.data import load_digits

        x, y = load_digits(flatten=False, normalize=False)
        x = np.asarray(x, dtype=np.float32).reshape(-1, 8, 8) / 16.0
        x = np.kron(x, np.ones((3, 3), dtype=np.float32))
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None]
        n_train = round(0.8 * len(x))
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


class ImageDataset:
    """What ``torchvision.datasets.MNIST(..., transform=ToTensor())`` gives: ``(image, label)`` with
    the image a ``(1, 28, 28)`` float32 tensor of the framework ``lib`` (nurinet or torch) and the
    label an int."""

    def __init__(self, lib, images, labels, mean=None, std=None):
        if mean is not None:  # transforms.Normalize((mean,), (std,))
            images = ((images - mean) / std).astype(np.float32)
        self.lib, self.images, self.labels = lib, images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.lib.from_numpy(self.images[index]), int(self.labels[index])


def datasets(lib, mnist_dir=None, seed=0, mean=None, std=None):
    """The training and test datasets, as torchvision's (``mean``/``std``: ``Normalize``'s)."""
    x_train, y_train, x_test, y_test = load_images(mnist_dir, seed)
    return (ImageDataset(lib, x_train, y_train, mean, std),
            ImageDataset(lib, x_test, y_test, mean, std))


def keras_mnist_load_data(mnist_dir=None, seed=0):
    """What ``keras.datasets.mnist.load_data()`` gives: ``((x_train, y_train), (x_test, y_test))``
    with uint8 images ``(N, 28, 28)`` in 0..255 and uint8 labels."""
    x_train, y_train, x_test, y_test = load_images(mnist_dir, seed)

    def to_uint8(x):
        return np.round(x[:, 0] * 255).astype(np.uint8)

    return (to_uint8(x_train), y_train.astype(np.uint8)), (to_uint8(x_test), y_test.astype(np.uint8))
