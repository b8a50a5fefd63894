"""Keras's "Simple MNIST convnet" (keras.io/examples/vision/mnist_convnet), keras -> nurinet.keras.

Run:  python examples/tutorials/keras_mnist_convnet.py [--epochs N] [--mnist DIR]

The example's code is Keras's with the import lines changed only: ``import keras`` became
``from nurinet import keras`` and ``from keras import layers`` became
``from nurinet.keras import layers``. ``nurinet.keras`` has Keras's layer names over nurinet
(channels-last images, weights built from the input shape, Keras's initializers;
``Sequential`` is a ``nurinet.training.Model``, its ``evaluate`` returning ``[loss, accuracy]``
as Keras's does); docs/porting.md, "From Keras", lists what is there and what differs.

Harness edits (to run offline and to be tested): ``keras.datasets.mnist.load_data()`` (a
download) is replaced by the bundled digits upsampled to 28x28, as uint8 0..255 (or MNIST's test
set split 8,000/2,000 with --mnist DIR; see _data.py); the code is wrapped in ``main(argv)`` with
``--epochs`` (default 15, as the example), ``--steps-per-epoch`` (for the tests), ``--seed``,
``--model-path``; ``fit``'s history is kept; the trained model is saved with ``model.save`` and
reloaded with ``keras.models.load_model`` (not in the example) to check the round trip.
"""
# ruff: noqa: I001

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nurinet
from nurinet import keras  # (import keras)
from nurinet.keras import layers  # (from keras import layers)

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
    input_shape = (28, 28, 1)

    # Load the data and split it between train and test sets
    (x_train, y_train), (x_test, y_test) = keras_mnist_load_data(args.mnist)

    # Scale images to the [0, 1] range
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    # Make sure images have shape (28, 28, 1)
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    print("x_train shape:", x_train.shape)
    print(x_train.shape[0], "train samples")
    print(x_test.shape[0], "test samples")

    # convert class vectors to binary class matrices
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)

    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )

    model.summary()

    batch_size = 128
    epochs = args.epochs

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1,
                        steps_per_epoch=args.steps_per_epoch)

    score = model.evaluate(x_test, y_test, verbose=0)
    print("Test loss:", score[0])
    print("Test accuracy:", score[1])

    # Harness: save, reload, evaluate again.
    model.save(args.model_path)
    reloaded = keras.models.load_model(args.model_path)
    reloaded_score = reloaded.evaluate(x_test, y_test, verbose=0)
    print("Reloaded model's test accuracy:", reloaded_score[1])
    return {"history": history.history, "score": score, "reloaded_score": reloaded_score}


if __name__ == "__main__":
    main()
