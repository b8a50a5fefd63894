"""nurinet.keras's functional API (issue 21): keras.Input, layers called on KerasTensors, keras.Model.

Keras is not installed, so the replayed forward is compared with the same layers applied by
hand; the MNIST-style example of Keras's functional API guide runs on the bundled digits.
"""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
from nurinet import keras
from nurinet.data import load_digits
from nurinet.keras import layers
from nurinet.training import Model as TrainingModel
from nurinet.training import load_model


def _digits():
    x, y = load_digits()
    return np.asarray(x, np.float32), np.asarray(y)


def _mlp(name="mnist_model"):
    inputs = keras.Input(shape=(64,))
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def test_functional_guide_example_learns(capsys):
    nurinet.manual_seed(0)
    x_train, y_train = _digits()
    # --- Keras's functional API guide, 784 -> 64 features (the 8x8 digits) ---
    inputs = keras.Input(shape=(64,))
    x = layers.Dense(64, activation="relu")(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")
    model.summary()
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer=keras.optimizers.RMSprop(), metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=64, epochs=3, validation_split=0.2, verbose=0)
    test_scores = model.evaluate(x_train, y_train, verbose=0)
    # --- end of the example ---
    out = capsys.readouterr().out
    assert 'Model: "mnist_model"' in out and "Total params: 8,970" in out
    assert isinstance(model, TrainingModel)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.6
    assert test_scores[1] > 0.8
    assert model.from_logits is True


def test_shapes_are_inferred():
    inputs = keras.Input(shape=(28, 28, 1))
    assert inputs.shape == (None, 28, 28, 1) and inputs.dtype == np.float32
    x = layers.Conv2D(8, 3, activation="relu")(inputs)
    assert x.shape == (None, 26, 26, 8)
    x = layers.MaxPooling2D(2)(x)
    assert x.shape == (None, 13, 13, 8)
    flat = layers.Flatten()(x)
    assert flat.shape == (None, 13 * 13 * 8)
    joined = layers.Concatenate()([flat, layers.Dense(5)(flat)])
    assert joined.shape == (None, 13 * 13 * 8 + 5)
    model = keras.Model(inputs, joined)
    assert model.output_shape == (None, 1357) and model.input_shape == (None, 28, 28, 1)
    assert keras.Input(shape=(3,), batch_size=4).shape == (4, 3)


def test_pooling_layers_take_keras_default_names():
    inputs = keras.Input(shape=(4, 4, 1))
    pooled = layers.AveragePooling2D(name="avg")(layers.MaxPooling2D()(inputs))
    model = keras.Model(inputs, layers.Flatten()(pooled))
    assert layers.MaxPooling2D().name is None
    assert [name for name, _ in model.named_children()] == ["max_pooling2d", "avg", "flatten"]


def test_replay_equals_the_layers_applied_by_hand():
    nurinet.manual_seed(1)
    inputs = keras.Input(shape=(6,))
    d1, d2, d3 = layers.Dense(4, activation="tanh"), layers.Dense(4), layers.Dense(3)
    h = d1(inputs)
    residual = layers.Add()([h, d2(h)])
    outputs = d3(layers.Concatenate()([residual, h]))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).standard_normal((5, 6)).astype(np.float32)
    h_ = d1(x)
    expected = d3(nurinet.cat([h_ + d2(h_), h_], -1))
    np.testing.assert_allclose(model(x).array, expected.array, rtol=1e-6)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense", "Add", "Concatenate", "Dense"]
    assert model.layers[:2] == [d1, d2] and model.layers[-1] is d3 and model.get_layer("add") is model.layers[2]
    np.testing.assert_allclose(model.predict(x), expected.array, rtol=1e-6)


def test_shared_layer_shares_its_weights():
    a, b = keras.Input(shape=(5,)), keras.Input(shape=(5,))
    shared = layers.Dense(3)
    model = keras.Model([a, b], layers.Add()([shared(a), shared(b)]))
    assert sum(p.numel() for p in model.parameters()) == 5 * 3 + 3
    assert list(model.state_dict()) == ["dense.kernel", "dense.bias"]
    xa, xb = np.ones((2, 5), np.float32), np.full((2, 5), 2.0, np.float32)
    out = model([xa, xb])
    np.testing.assert_allclose(out.array, (shared(xa) + shared(xb)).array, rtol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(shared.kernel.grad.array, np.full((5, 3), 2 * 1.0 + 2 * 2.0), rtol=1e-6)
    np.testing.assert_allclose(model(xa, xb).array, out.array)  # positional inputs too


@pytest.mark.parametrize(("layer", "combine"), [
    (layers.Add(), lambda a, b: a + b), (layers.Subtract(), lambda a, b: a - b),
    (layers.Multiply(), lambda a, b: a * b), (layers.Average(), lambda a, b: (a + b) / 2),
    (layers.Maximum(), np.maximum), (layers.Minimum(), np.minimum),
    (layers.Concatenate(axis=-1), lambda a, b: np.concatenate([a, b], -1)),
    (layers.Concatenate(axis=1), lambda a, b: np.concatenate([a, b], 1)),
])
def test_merge_layers(layer, combine):
    rng = np.random.default_rng(2)
    a, b = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(2))
    x1, x2 = keras.Input(shape=(4,)), keras.Input(shape=(4,))
    model = keras.Model([x1, x2], layer([x1, x2]))
    np.testing.assert_allclose(model.predict([a, b]), combine(a, b), rtol=1e-6)


def test_merge_shape_mismatch_names_layer_and_shapes():
    a, b = keras.Input(shape=(4,)), keras.Input(shape=(5,))
    with pytest.raises(ValueError, match=r"Add.*\(None, 4\).*\(None, 5\)"):
        layers.Add()([a, b])
    with pytest.raises(ValueError, match=r"Concatenate\(axis=2\) needs inputs that agree"):
        layers.Concatenate(axis=2)([keras.Input(shape=(2, 3)), keras.Input(shape=(3, 3))])


def test_multi_input_multi_output_trains_and_predicts():
    nurinet.manual_seed(3)
    x, y = _digits()
    left, right = keras.Input(shape=(32,), name="left"), keras.Input(shape=(32,), name="right")
    merged = layers.Concatenate()([layers.Dense(32, activation="relu")(left),
                                   layers.Dense(32, activation="relu")(right)])
    digit = layers.Dense(10)(merged)
    ink = layers.Dense(1)(merged)
    model = keras.Model(inputs=[left, right], outputs=[digit, ink])
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"],
                  loss_weights=[1.0, 0.1], metrics=[["accuracy"], None])
    ink_target = x.mean(axis=1, keepdims=True)
    history = model.fit([x[:, :32], x[:, 32:]], [y, ink_target], epochs=3, batch_size=64, verbose=0,
                        validation_split=0.2)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert "val_loss" in history.history and history.history["val_dense_2_accuracy"][-1] > 0.6
    scores, ink_pred = model.predict([x[:, :32], x[:, 32:]])
    assert scores.shape == (len(x), 10) and ink_pred.shape == (len(x), 1)
    assert (scores.argmax(1) == y).mean() > 0.8
    assert isinstance(model.evaluate([x[:, :32], x[:, 32:]], [y, ink_target]), list)


def test_dict_inputs_and_outputs():
    nurinet.manual_seed(4)
    a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(2,), name="b")
    both = layers.Concatenate()([a, b])
    model = keras.Model({"a": a, "b": b}, {"sum": layers.Dense(1)(both), "diff": layers.Dense(1)(both)})
    rng = np.random.default_rng(5)
    xa, xb = rng.standard_normal((64, 3)).astype(np.float32), rng.standard_normal((64, 2)).astype(np.float32)
    targets = {"sum": xa.sum(1, keepdims=True) + xb.sum(1, keepdims=True),
               "diff": xa.sum(1, keepdims=True) - xb.sum(1, keepdims=True)}
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss={"sum": "mse", "diff": "mse"},
                  metrics={"sum": keras.metrics.MeanAbsoluteError()})
    history = model.fit({"a": xa, "b": xb}, targets, epochs=30, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.05 * history.history["loss"][0]
    assert history.history["sum_mae"][-1] < 0.2
    predicted = model.predict({"b": xb, "a": xa})
    assert set(predicted) == {"sum", "diff"}
    np.testing.assert_allclose(predicted["sum"], targets["sum"], atol=0.2)


def test_errors_say_what_is_wrong():
    a, other = keras.Input(shape=(4,)), keras.Input(shape=(4,))
    out = layers.Dense(2)(layers.Add()([a, other]))
    with pytest.raises(ValueError, match="graph disconnected"):
        keras.Model(a, out)
    with pytest.raises(TypeError, match="KerasTensors"):
        keras.Model(a, np.zeros((1, 2)))
    with pytest.raises(TypeError, match="both inputs and outputs"):
        keras.Model(inputs=a)
    dense = layers.Dense(3)
    dense(a)
    with pytest.raises(ValueError, match=r"Dense\(units=3.*\(None, 5\).*built for inputs of 4 features"):
        dense(keras.Input(shape=(5,)))
    with pytest.raises(TypeError, match="mixed with a ndarray"):
        layers.Add()([a, np.zeros((1, 4), np.float32)])
    model = keras.Model([a, other], out)
    with pytest.raises(ValueError, match=r"input 1 expects shape \(None, 4\), got \(2, 3\)"):
        model([np.zeros((2, 4), np.float32), np.zeros((2, 3), np.float32)])
    with pytest.raises(ValueError, match="pass a list of 2 arrays"):
        model.predict([np.zeros((2, 4), np.float32)])
    with pytest.raises(TypeError, match="Sequential takes keras.Input"):
        keras.Sequential([out])


def test_save_and_load_model_round_trip(tmp_path):
    nurinet.manual_seed(6)
    x, y = _digits()
    inputs = keras.Input(shape=(64,))
    h = layers.Dense(16, activation="relu")(inputs)
    h = layers.BatchNormalization()(h)
    outputs = layers.Dense(10, activation="softmax", name="probs")(layers.Add()([h, layers.Dense(16)(h)]))
    model = keras.Model(inputs, outputs, name="digits")
    model.compile(optimizer=keras.optimizers.RMSprop(), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    path = tmp_path / "functional.nrn"
    model.save(path)
    reloaded = load_model(path)
    assert type(reloaded) is keras.Model and reloaded.name == "digits"
    assert list(reloaded.state_dict()) == list(model.state_dict())
    assert reloaded.get_layer("probs").name == "probs" and "probs.kernel" in reloaded.state_dict()
    np.testing.assert_allclose(reloaded.predict(x[:32]), model.predict(x[:32]), rtol=1e-5, atol=1e-6)
    assert reloaded.evaluate(x, y) == pytest.approx(model.evaluate(x, y))
    reloaded.fit(x, y, epochs=1, verbose=0)  # compiled again, optimizer state included


def test_multi_input_model_round_trips(tmp_path):
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(3,))
    shared = layers.Dense(2)
    model = keras.Model([a, b], [shared(a), layers.Multiply()([shared(a), shared(b)])])
    path = tmp_path / "two.nrn"
    model.save(path)
    reloaded = load_model(path)
    data = [np.ones((2, 3), np.float32), np.arange(6, dtype=np.float32).reshape(2, 3)]
    for got, want in zip(reloaded.predict(data), model.predict(data)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert sum(p.numel() for p in reloaded.parameters()) == 8


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = layers.Dense(32, activation="relu")
        self.head = layers.Dense(10)

    def call(self, inputs):
        return self.head(self.hidden(inputs))


def test_subclassing_api(tmp_path):
    nurinet.manual_seed(7)
    x, y = _digits()
    model = _Subclassed()
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])  # waits for the first batch: the layers are not built yet
    model.fit(x, y, epochs=3, verbose=0)
    assert model.evaluate(x, y)[1] > 0.6  # chance: 0.1
    with pytest.raises(ValueError, match="save_weights"):
        model.save(tmp_path / "sub.nrn")
    model.save_weights(tmp_path / "sub.safetensors")
    other = _Subclassed()
    other.build((None, 64))
    other.load_weights(tmp_path / "sub.safetensors")
    np.testing.assert_allclose(other.predict(x[:8]), model.predict(x[:8]), rtol=1e-6)


def test_models_nest_as_layers():
    nurinet.manual_seed(8)
    encoder_in = keras.Input(shape=(6,))
    encoder = keras.Model(encoder_in, layers.Dense(3)(encoder_in), name="encoder")
    head = keras.Sequential([keras.Input(shape=(3,)), layers.Dense(2)])
    inputs = keras.Input(shape=(6,))
    outputs = head(encoder(inputs))
    model = keras.Model(inputs, outputs)
    assert outputs.shape == (None, 2)
    x = np.random.default_rng(9).standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_allclose(model(x).array, head(encoder(x)).array, rtol=1e-6)
    assert sum(p.numel() for p in model.parameters()) == 6 * 3 + 3 + 3 * 2 + 2


def test_keras_losses_follow_from_logits():
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], np.float32)
    labels = np.array([0, 2])
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    expected = -np.log(proba[[0, 1], labels]).mean()
    from_logits = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    from_proba = keras.losses.SparseCategoricalCrossentropy()(labels, proba)
    assert from_logits.item() == pytest.approx(expected, rel=1e-5)
    assert from_proba.item() == pytest.approx(expected, rel=1e-5)


def test_keras_optimizers_have_keras_defaults():
    params = [nurinet.Parameter(np.zeros(2, np.float32))]
    rmsprop = keras.optimizers.RMSprop()(params)
    group = rmsprop.param_groups[0]
    assert (group["lr"], group["alpha"], group["eps"]) == (0.001, 0.9, 1e-7)
    adam = keras.optimizers.Adam(learning_rate=0.01, beta_1=0.8)(params).param_groups[0]
    assert (adam["lr"], adam["betas"], adam["eps"]) == (0.01, (0.8, 0.999), 1e-7)
    assert keras.metrics.SparseCategoricalAccuracy is nurinet.training.SparseCategoricalAccuracy


def test_sequential_takes_keras_loss_objects():
    x, y = _digits()
    model = keras.Sequential([keras.Input(shape=(64,)), layers.Dense(10)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert model.from_logits is True
    model.fit(x[:64], y[:64], epochs=1, verbose=0)


class _WithDropout(keras.Model):
    def __init__(self):
        super().__init__(name="with_dropout")
        self.dense = layers.Dense(4, input_shape=(4,))
        self.dropout = layers.Dropout(0.5)

    def call(self, inputs, training=None):
        return self.dropout(self.dense(inputs), training=training)


def test_subclass_call_gets_training_flag():
    model = _WithDropout()
    x = np.ones((64, 4), np.float32)
    model.train()
    assert (model(x).array == 0).any()  # dropout on while training
    model.eval()
    np.testing.assert_allclose(model(x).array, model.dense(x).array)
    assert model.layers == [model.dense, model.dropout]


def test_keras_guide_multi_input_multi_output_with_names():
    # Keras's guide "Models with multiple inputs and outputs", with Dense layers in place of the
    # Embedding/LSTM text encoders: inputs and outputs given by name.
    nurinet.manual_seed(10)
    num_tags, num_departments, n = 12, 4, 256
    title_input = keras.Input(shape=(20,), name="title")
    body_input = keras.Input(shape=(30,), name="body")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = layers.Dense(16, activation="relu")(title_input)
    body_features = layers.Dense(8, activation="relu")(body_input)
    x = layers.Concatenate()([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(num_departments, name="department")(x)
    model = keras.Model(inputs=[title_input, body_input, tags_input], outputs=[priority_pred, department_pred])
    model.compile(optimizer=keras.optimizers.RMSprop(1e-2),
                  loss={"priority": keras.losses.BinaryCrossentropy(from_logits=True),
                        "department": keras.losses.CategoricalCrossentropy(from_logits=True)},
                  loss_weights={"priority": 1.0, "department": 0.2},
                  metrics={"department": ["accuracy"]})
    rng = np.random.default_rng(11)
    title_data = rng.standard_normal((n, 20)).astype(np.float32)
    body_data = rng.standard_normal((n, 30)).astype(np.float32)
    tags_data = rng.integers(0, 2, size=(n, num_tags)).astype("float32")
    priority_targets = (title_data[:, :1] > 0).astype("float32")
    department_targets = keras.utils.to_categorical(body_data[:, :4].argmax(1), num_departments)
    history = model.fit({"title": title_data, "body": body_data, "tags": tags_data},
                        {"priority": priority_targets, "department": department_targets},
                        epochs=5, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    assert history.history["department_accuracy"][-1] > 0.4
    assert model.get_layer("priority") is model.layers[-2]
    assert [k for k in model.state_dict() if k.startswith("priority")] == ["priority.kernel", "priority.bias"]


@pytest.mark.parametrize("name, lr", [("rmsprop", 1e-3), ("sgd", 1e-2), ("adagrad", 1e-3), ("adam", 1e-3)])
def test_optimizer_names_mean_keras_optimizers_with_keras_defaults(name, lr):
    for model in (keras.Sequential([layers.Dense(2)]),
                  keras.Model(inputs := keras.Input(shape=(3,)), layers.Dense(2)(inputs))):
        model.build((None, 3)) if isinstance(model, keras.Sequential) else None
        model.compile(optimizer=name, loss="mse")
        model.fit(np.zeros((4, 3), np.float32), np.zeros((4, 2), np.float32), epochs=1, verbose=0)
        assert model.optimizer.param_groups[0]["lr"] == pytest.approx(lr)


@pytest.mark.parametrize("layer", [layers.Add(), layers.Concatenate(), layers.Multiply(), layers.Maximum()])
def test_merge_layers_refuse_mixed_dtypes(layer):
    a = nurinet.tensor(np.ones((2, 3), np.float32))
    b = nurinet.tensor(np.ones((2, 3), np.float64))
    with pytest.raises(TypeError, match=rf"{type(layer).__name__} needs inputs of one dtype.*float32.*float64"):
        layer([a, b])
