"""Keras's "Simple MNIST convnet" (keras.io/examples/vision/mnist_convnet), keras -> nurinet.

Run:  python examples/tutorials/keras_mnist_convnet.py [--epochs N] [--mnist DIR]

Edits beyond the names (keras -> nurinet.training.Model, layers -> nurinet.nn):
1. nurinet has no Keras-named layers (``Input``, ``Conv2D``, ``MaxPooling2D``, ``Dense``): the
   layers are PyTorch's, ``nn.Conv2d(1, 32, kernel_size=(3, 3))`` + ``nn.ReLU()``,
   ``nn.MaxPool2d(kernel_size=(2, 2))``, ``nn.Flatten()``, ``nn.Dropout(0.5)``,
   ``nn.Linear(1600, num_classes)`` + ``nn.Softmax(dim=1)``, wrapped as
   ``Model(nn.Sequential(...))``. Each layer is given its input size (1, 32 and 64 channels, 1600
   features), which Keras infers; ``activation="relu"``/``"softmax"`` become separate layers
   (``nn.Conv2d`` takes no ``activation=``; ``nn.Linear`` does, but the softmax is written as a
   layer so that both look alike); ``keras.Input(shape=input_shape)`` has no counterpart.
2. Images are channels-first: ``np.expand_dims(x, -1)`` (N, 28, 28, 1) became
   ``np.expand_dims(x, 1)`` (N, 1, 28, 28), and ``input_shape`` is ``(1, 28, 28)``.
3. ``keras.utils.to_categorical(y, num_classes)`` became ``np.eye(num_classes)[y]`` (nurinet has
   no ``to_categorical``).
4. ``model.summary()`` needs the input shape: ``model.summary(input_shape)``.
5. ``model.evaluate`` returns a dict by default (``return_dict=True``), Keras a list
   (``[loss, accuracy]``): ``score = model.evaluate(..., return_dict=False)``.
Harness edits (to run offline and to be tested): ``keras.datasets.mnist.load_data()`` (a
download) is replaced by the bundled digits upsampled to 28x28, as uint8 0..255 (or MNIST's test
set split 8,000/2,000 with --mnist DIR; see _data.py); the code is wrapped in ``main(argv)`` with
``--epochs`` (default 15, as the example), ``--seed``, ``--model-path``; the trained model is saved
with ``model.save`` and reloaded with ``load_model`` (not in the example) to check the round trip.
"""
# ruff: noqa: I001

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nurinet
from nurinet import nn  # (keras.layers)
from nurinet.training import Model, load_model  # (keras.Sequential, keras.models.load_model)

from _data import keras_mnist_load_data  # (keras.datasets.mnist.load_data)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--steps-per-epoch", type=int, default=None, help="(tests)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mnist", metavar="DIR", default=None)
    parser.add_argument("--model-path", default="mnist_convnet.nrn")
    args = parser.parse_args(argv)
    nurinet.manual_seed(args.seed)

    # Model / data parameters
    num_classes = 10
    input_shape = (1, 28, 28)  # edit 2

    # Load the data and split it between train and test sets
    (x_train, y_train), (x_test, y_test) = keras_mnist_load_data(args.mnist)

    # Scale images to the [0, 1] range
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    # Make sure images have shape (1, 28, 28)
    x_train = np.expand_dims(x_train, 1)  # edit 2
    x_test = np.expand_dims(x_test, 1)
    print("x_train shape:", x_train.shape)
    print(x_train.shape[0], "train samples")
    print(x_test.shape[0], "test samples")

    # convert class vectors to binary class matrices
    y_train = np.eye(num_classes, dtype="float32")[y_train]  # edit 3
    y_test = np.eye(num_classes, dtype="float32")[y_test]

    model = Model(nn.Sequential(  # edit 1
        nn.Conv2d(1, 32, kernel_size=(3, 3)), nn.ReLU(),
        nn.MaxPool2d(kernel_size=(2, 2)),
        nn.Conv2d(32, 64, kernel_size=(3, 3)), nn.ReLU(),
        nn.MaxPool2d(kernel_size=(2, 2)),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(1600, num_classes), nn.Softmax(dim=1),
    ))

    model.summary(input_shape)  # edit 4

    batch_size = 128
    epochs = args.epochs

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1,
                        steps_per_epoch=args.steps_per_epoch)

    score = model.evaluate(x_test, y_test, verbose=0, return_dict=False)  # edit 5
    print("Test loss:", score[0])
    print("Test accuracy:", score[1])

    # Harness: save, reload, evaluate again.
    model.save(args.model_path)
    reloaded = load_model(args.model_path)
    reloaded_score = reloaded.evaluate(x_test, y_test, verbose=0, return_dict=False)
    print("Reloaded model's test accuracy:", reloaded_score[1])
    return {"history": history.history, "score": score, "reloaded_score": reloaded_score}


if __name__ == "__main__":
    main()
