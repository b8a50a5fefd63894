"""nurinet.keras (issue 21): Keras's simple MNIST convnet ports with the layer names only.

The example is Keras's (keras.io/examples/vision/mnist_convnet) with ``keras`` -> ``nurinet.keras``
in the imports, run on the bundled 8x8 digits upsampled to 28x28 for 2 epochs. The layers are
checked against nurinet.nn's channels-first equivalents given the same weights.
"""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
from nurinet import keras, nn
from nurinet.data import load_digits
from nurinet.keras import layers
from nurinet.training import load_model


def _digits_28():
    x, y = load_digits(flatten=False, normalize=False)
    x = np.asarray(x, dtype=np.float32).reshape(-1, 8, 8)
    x = np.kron(x, np.ones((3, 3), dtype=np.float32))
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    x = np.round(x / 16.0 * 255).astype(np.uint8)  # what keras.datasets.mnist gives: uint8 0..255
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], np.asarray(y)[order].astype(np.uint8)
    n = round(0.8 * len(x))
    return (x[:n], y[:n]), (x[n:], y[n:])


def _keras_example_model(num_classes=10, input_shape=(28, 28, 1)):
    return keras.Sequential(
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


def test_not_imported_by_import_nurinet():
    import subprocess
    import sys

    code = "import sys, nurinet; print('nurinet.keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_keras_mnist_convnet_example_trains(tmp_path, capsys):
    nurinet.manual_seed(0)
    # --- Keras's example from here on, keras -> nurinet.keras (epochs=2; the digits' loader) ---
    num_classes = 10
    input_shape = (28, 28, 1)

    (x_train, y_train), (x_test, y_test) = _digits_28()

    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    print("x_train shape:", x_train.shape)

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
    epochs = 2

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)

    score = model.evaluate(x_test, y_test, verbose=0)
    print("Test loss:", score[0])
    print("Test accuracy:", score[1])
    # --- end of the example ---
    out = capsys.readouterr().out
    assert "Total params: 34,826" in out
    assert isinstance(score, list) and len(score) == 2
    loss = history.history["loss"]
    assert loss[1] < loss[0]
    assert "val_accuracy" in history.history
    assert score[1] > 0.5

    path = tmp_path / "convnet.nrn"
    model.save(path)
    reloaded = load_model(path)
    assert type(reloaded) is keras.Sequential
    assert reloaded.evaluate(x_test, y_test, verbose=0) == pytest.approx(score)
    np.testing.assert_allclose(reloaded.predict(x_test[:16]), model.predict(x_test[:16]), rtol=1e-5,
                               atol=1e-6)


def test_parameter_count_is_keras_documented():
    model = _keras_example_model()
    assert sum(int(np.prod(p.shape)) for p in model.parameters()) == 34_826
    assert [tuple(w.shape) for w in model.layers[0].get_weights()] == [(3, 3, 1, 32), (32,)]
    assert [tuple(w.shape) for w in model.layers[-1].get_weights()] == [(1600, 10), (10,)]


def test_keras_default_initializers():
    nurinet.manual_seed(1)
    dense = layers.Dense(300)
    dense.build((None, 200))
    limit = np.sqrt(6 / (200 + 300))
    kernel = dense.kernel.array
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.9 * limit
    assert np.all(dense.bias.array == 0)
    conv = layers.Conv2D(8, 3)
    conv.build((None, 5, 5, 4))
    limit = np.sqrt(6 / (9 * 4 + 9 * 8))
    assert np.abs(conv.kernel.array).max() <= limit and np.all(conv.bias.array == 0)


def test_dense_equals_linear():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    dense = layers.Dense(3, activation="tanh")
    out = dense(x).array  # built on the first call
    linear = nn.Linear(6, 3, activation="tanh")
    linear.weight.array[...] = dense.kernel.array.T
    linear.bias.array[...] = rng.standard_normal(3)
    dense.bias.array[...] = linear.bias.array
    np.testing.assert_allclose(dense(x).array, linear(x).array, rtol=1e-5, atol=1e-6)
    assert out.shape == (4, 3)


@pytest.mark.parametrize(("strides", "padding"), [((1, 1), "valid"), ((1, 1), "same"), ((2, 2), "valid")])
def test_conv2d_equals_channels_first_conv(strides, padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 7, 3)).astype(np.float32)  # channels-last
    conv = layers.Conv2D(5, kernel_size=(3, 3), strides=strides, padding=padding, activation="relu")
    conv.build(x.shape)
    conv.bias.array[...] = rng.standard_normal(5)
    ref = nn.Conv2d(3, 5, kernel_size=3, stride=strides, padding=1 if padding == "same" else 0)
    ref.weight.array[...] = conv.kernel.array.transpose(3, 2, 0, 1)
    ref.bias.array[...] = conv.bias.array
    expected = np.maximum(ref(x.transpose(0, 3, 1, 2)).array, 0).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(conv(x).array, expected, rtol=1e-5, atol=1e-5)


def test_padding_same_output_shapes():
    x = np.zeros((2, 28, 28, 1), np.float32)
    assert layers.Conv2D(4, 3, padding="same")(x).shape == (2, 28, 28, 4)
    assert layers.Conv2D(4, 3, strides=2, padding="same")(x).shape == (2, 14, 14, 4)
    assert layers.Conv2D(4, 5, strides=3, padding="same")(x).shape == (2, 10, 10, 4)  # ceil(28 / 3)
    assert layers.MaxPooling2D(3, padding="same")(x).shape == (2, 10, 10, 1)
    assert layers.AveragePooling2D(3, strides=2, padding="same")(x).shape == (2, 14, 14, 1)


def test_pooling_and_flatten_are_channels_last():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    pooled = layers.MaxPooling2D()(x).array
    expected = nn.MaxPool2d(2)(x.transpose(0, 3, 1, 2)).array.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(pooled, expected)
    averaged = layers.AveragePooling2D(pool_size=(3, 3))(x).array
    expected = nn.AvgPool2d(3)(x.transpose(0, 3, 1, 2)).array.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(averaged, expected, rtol=1e-6)
    # "same" average pooling leaves the padding out of the mean: ones stay ones
    ones = np.ones((1, 5, 5, 2), np.float32)
    np.testing.assert_allclose(layers.AveragePooling2D(2, padding="same")(ones).array, 1.0)
    np.testing.assert_array_equal(layers.Flatten()(x).array, x.reshape(2, -1))  # (H, W, C) order


def test_activation_dropout_batchnorm():
    x = np.linspace(-2, 2, 24, dtype=np.float32).reshape(2, 2, 2, 3)
    np.testing.assert_allclose(layers.Activation("relu")(x).array, np.maximum(x, 0))
    drop = layers.Dropout(0.5)
    drop.eval()
    np.testing.assert_array_equal(drop(x).array, x)
    bn = layers.BatchNormalization()
    out = bn(x).array  # training: batch statistics over N, H, W per channel
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    assert bn.gamma.shape == (3,) and bn.moving_mean.shape == (3,)
    assert not np.allclose(bn.moving_mean.array, 0)  # updated with momentum 0.99
    bn.eval()
    assert bn(x).shape == x.shape


def test_wrong_input_rank_names_layer_and_layout():
    conv = layers.Conv2D(4, 3)
    with pytest.raises(ValueError, match=r"Conv2D expects a 4-D input \(N, H, W, C\)"):
        conv(np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"MaxPooling2D expects a 4-D input \(N, H, W, C\)"):
        layers.MaxPooling2D()(np.zeros((28, 28, 1), np.float32))
    model = _keras_example_model()
    with pytest.raises(ValueError, match=r"Conv2D expects a 4-D input \(N, H, W, C\)"):
        model.predict(np.zeros((3, 28, 28), np.float32))


def test_lazy_build_without_input(tmp_path):
    nurinet.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = keras.utils.to_categorical((x[:, 0] > 0).astype(int))
    model = keras.Sequential([layers.Dense(8, activation="relu"), layers.Dense(2, activation="softmax")])
    assert not model.built and len(list(model.parameters())) == 0
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert model.built and model.layers[0].kernel.shape == (5, 8)
    model.summary()  # no argument once built
    assert isinstance(model.evaluate(x, y), list)
    assert isinstance(model.evaluate(x, y, return_dict=True), dict)
    model.save(tmp_path / "m.nrn")
    reloaded = load_model(tmp_path / "m.nrn")
    np.testing.assert_allclose(reloaded.predict(x), model.predict(x), rtol=1e-5, atol=1e-6)


def test_save_load_round_trip_with_same_padding_and_batchnorm(tmp_path):
    nurinet.manual_seed(0)
    model = keras.Sequential([
        keras.Input(shape=(8, 8, 2)),
        layers.Conv2D(4, 3, padding="same", use_bias=False),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.AveragePooling2D(),
        layers.Flatten(),
        layers.Dense(3, activation="softmax", kernel_initializer="he_normal"),
    ])
    model.compile(loss="categorical_crossentropy", optimizer="sgd")
    x = np.random.default_rng(0).standard_normal((10, 8, 8, 2)).astype(np.float32)
    model.fit(x, keras.utils.to_categorical(np.arange(10) % 3), epochs=1, verbose=0)
    path = tmp_path / "m.nrn"
    model.save(path)
    reloaded = load_model(path)
    np.testing.assert_allclose(reloaded.predict(x), model.predict(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(reloaded.layers[1].moving_mean.array, model.layers[1].moving_mean.array)


def test_to_categorical():
    np.testing.assert_array_equal(keras.utils.to_categorical([0, 2, 1]), np.eye(3)[[0, 2, 1]])
    assert keras.utils.to_categorical(np.array([[1], [0]]), 4).shape == (2, 4)
    assert keras.utils.to_categorical([1], 3).dtype == np.float32
    with pytest.raises(ValueError, match="labels must be in"):
        keras.utils.to_categorical([3], 3)
