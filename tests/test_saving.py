"""Saving as users save: PyTorch's habit (``save(model.state_dict())``), Keras's habit
(``Model.save``, ``load_model``, ``save_weights``, ``load_weights``), checkpoints, a user's own
classes, and file modes."""

import json
import os
import sys
import textwrap
import warnings

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet.io import (
    CorruptFileError,
    load_checkpoint,
    register_layer,
    save_checkpoint,
)
from nurinet.io.registry import _USER
from nurinet.training import Model, ModelCheckpoint, load_model


class TwoLayerNet(nn.Module):
    """A user's own network that keeps its constructor arguments (PyTorch's convention)."""

    def __init__(self, n_in: int, n_hidden: int = 8) -> None:
        super().__init__()
        self.n_in, self.n_hidden = n_in, n_hidden
        self.hidden = nn.Linear(n_in, n_hidden)
        self.out = nn.Linear(n_hidden, 2)

    def forward(self, x):
        return self.out(self.hidden(x).relu())


class ForgetsItsArguments(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.layer = nn.Linear(width, width)


def data(n: int = 48):
    generator = np.random.default_rng(0)
    x = generator.normal(size=(n, 4)).astype(np.float32)
    return x, (x.sum(axis=1) > 0).astype(np.int64)


def compiled_model(**compile_args) -> Model:
    nt.manual_seed(0)
    model = Model(nn.Sequential(nn.Linear(4, 8, activation="relu"), nn.Linear(8, 2)))
    settings = {"optimizer": "adam", "loss": "cross_entropy", "metrics": ["accuracy"], "lr": 1e-2}
    model.compile(**{**settings, **compile_args})
    return model


def outputs(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    return model(nt.tensor(x)).array


# ----- PyTorch's habit ----------------------------------------------------------------------------
def test_a_state_dict_saves_and_loads_into_load_state_dict(tmp_path) -> None:
    model, other = TwoLayerNet(4), TwoLayerNet(4)
    nt.save(model.state_dict(), tmp_path / "weights.safetensors")
    loaded = nt.load(tmp_path / "weights.safetensors")
    assert isinstance(loaded, dict) and list(loaded) == list(model.state_dict())
    assert all(isinstance(v, nt.Tensor) for v in loaded.values())
    other.load_state_dict(loaded)
    x = data()[0]
    assert np.array_equal(outputs(model, x), outputs(other, x))


def test_a_state_dict_of_arrays_saves_too(tmp_path) -> None:
    nt.save({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.int64(3)}, tmp_path / "a.safetensors")
    loaded = nt.load(tmp_path / "a.safetensors")
    assert loaded["w"].array.tolist() == [[0, 1, 2], [3, 4, 5]] and loaded["n"].array == 3


def test_a_nested_dict_saves_and_what_cannot_be_stored_is_named(tmp_path) -> None:
    # A nested dict is PyTorch's general checkpoint (tests/test_saving_structures.py has more).
    nt.save({"model": np.zeros(2), "optimizer": {"lr": 0.1}}, tmp_path / "x.safetensors")
    assert nt.load(tmp_path / "x.safetensors")["optimizer"] == {"lr": 0.1}
    with pytest.raises(TypeError, match=r"obj\['optimizer'\]\['hook'\]: it is a function"):
        nt.save({"model": np.zeros(2), "optimizer": {"hook": lambda p: p}}, tmp_path / "y.safetensors")
    assert not (tmp_path / "y.safetensors").exists()


def test_the_habit_matches_pytorchs(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    reference = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    nt.save(model.state_dict(), tmp_path / "nurinet.safetensors")
    torch.save(reference.state_dict(), tmp_path / "torch.pt")
    ours, theirs = nt.load(tmp_path / "nurinet.safetensors"), torch.load(tmp_path / "torch.pt")
    assert list(ours) == list(theirs)  # the same keys, in the same order
    # nurinet's file loads into the PyTorch model, which then computes what nurinet computes.
    reference.load_state_dict({k: torch.from_numpy(np.array(v.array)) for k, v in ours.items()})
    x = data()[0]
    expected = reference(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(outputs(model, x), expected, rtol=1e-5, atol=1e-6)


# ----- a user's own classes ----------------------------------------------------------------------
def test_a_user_class_saves_without_registration_and_loads_when_allowed(tmp_path) -> None:
    model = TwoLayerNet(4, n_hidden=5)
    path = tmp_path / "net.safetensors"
    nt.save(model, path)
    with pytest.raises(CorruptFileError, match=r"only nurinet's own modules.*classes=\[TwoLayerNet\]"):
        nt.load(path)
    x = data()[0]
    for allowed in ({"classes": [TwoLayerNet]}, {"allowed_modules": [TwoLayerNet.__module__]}):
        loaded = nt.load(path, **allowed)
        assert type(loaded) is TwoLayerNet and loaded.n_hidden == 5
        assert np.array_equal(outputs(loaded, x), outputs(model, x))
    with nt.io.allowing(classes=[TwoLayerNet]):  # the context manager, for nested loads
        assert type(nt.load(path)) is TwoLayerNet


def test_a_user_class_registered_after_saving_loads(tmp_path) -> None:
    nt.save(TwoLayerNet(4), tmp_path / "net.safetensors")
    register_layer(TwoLayerNet, name="TestTwoLayerNet")
    try:
        assert type(nt.load(tmp_path / "net.safetensors")) is TwoLayerNet
    finally:
        _USER.pop("TestTwoLayerNet")


def test_a_user_class_that_forgets_its_arguments_gets_a_clear_error(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"argument 'width' is not kept as attribute self\.width"):
        nt.save(ForgetsItsArguments(3), tmp_path / "x.safetensors")


def test_an_allowed_package_is_the_only_one_imported(tmp_path, monkeypatch) -> None:
    (tmp_path / "planted_user_layers.py").write_text(textwrap.dedent("""
        import pathlib
        pathlib.Path(__file__).with_name("IMPORTED").write_text("yes")
        from nurinet.nn import Linear
        system = print
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = {"class": "Linear", "module": "planted_user_layers",
              "config": {"in_features": 1, "out_features": 1}}
    path = tmp_path / "planted.safetensors"
    nt.save(nn.Linear(1, 1), path)
    _rewrite_architecture(path, config)
    with pytest.raises(CorruptFileError, match="only nurinet's own modules"):
        nt.load(path, allowed_modules=["mypackage"], classes=[TwoLayerNet])
    assert not (tmp_path / "IMPORTED").exists() and "planted_user_layers" not in sys.modules
    # Allowed, its module is imported, and only a layer class is accepted from it.
    assert type(nt.load(path, allowed_modules=["planted_user_layers"])) is nn.Linear
    _rewrite_architecture(path, {**config, "class": "system"})
    with pytest.raises(CorruptFileError, match="is not a layer"):
        nt.load(path, allowed_modules=["planted_user_layers"])


def _rewrite_architecture(path, architecture) -> None:
    """Replace a model file's architecture (a hand-crafted file, checksum recomputed)."""
    tensors, metadata = nt.io.load_file(path)
    metadata.pop("nurinet.sha256")
    metadata["nurinet.architecture"] = json.dumps(architecture)
    nt.io.save_file(tensors, path, metadata)


# ----- Keras's habit -----------------------------------------------------------------------------
def test_model_save_and_load_model_continue_training_exactly(tmp_path) -> None:
    x, y = data()
    model = compiled_model()
    model.fit(x, y, epochs=2, verbose=0)
    model.save(tmp_path / "model.safetensors")
    loaded = load_model(tmp_path / "model.safetensors")
    assert type(loaded.optimizer).__name__ == "Adam" and loaded.optimizer.param_groups[0]["lr"] == 1e-2
    assert [m.name for m in loaded.compiled_metrics] == ["accuracy"]
    assert loaded.optimizer.state_dict()["state"].keys() == model.optimizer.state_dict()["state"].keys()
    after = [m.fit(x, y, epochs=1, verbose=0, shuffle=False).history for m in (model, loaded)]
    assert after[0] == after[1]
    assert np.array_equal(outputs(model, x), outputs(loaded, x))


def test_load_model_without_compile_and_nurinet_load_return_the_model(tmp_path) -> None:
    model = compiled_model()
    model.save(tmp_path / "model.safetensors")
    assert load_model(tmp_path / "model.safetensors", compile=False).loss_fn is None
    plain = nt.load(tmp_path / "model.safetensors")
    assert type(plain) is Model and plain.loss_fn is None
    with pytest.raises(ValueError, match=r"weights only.*load_weights"):
        model.save_weights(tmp_path / "w.safetensors")
        load_model(tmp_path / "w.safetensors")


def test_a_loss_module_and_a_loss_function_are_stored(tmp_path) -> None:
    for loss in (nn.CrossEntropyLoss(), nt.F.cross_entropy):
        compiled_model(loss=loss).save(tmp_path / "m.safetensors")
        loaded = load_model(tmp_path / "m.safetensors")
        assert loaded.loss_fn is not None and loaded.evaluate(*data(), verbose=0)["loss"] > 0


def test_a_callable_setting_warns_and_loads_uncompiled(tmp_path) -> None:
    model = compiled_model(loss=lambda out, target: nt.F.cross_entropy(out, target))
    with pytest.warns(UserWarning, match="function of your own.*uncompiled"):
        model.save(tmp_path / "m.safetensors")
    with pytest.warns(UserWarning, match="without its compile settings"):
        loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.loss_fn is None
    assert np.array_equal(outputs(loaded, data()[0]), outputs(model, data()[0]))


def test_save_weights_and_load_weights(tmp_path) -> None:
    model, other = compiled_model(), Model(nn.Sequential(nn.Linear(4, 8, activation="relu"), nn.Linear(8, 2)))
    model.save_weights(tmp_path / "w.safetensors")
    other.load_weights(tmp_path / "w.safetensors")
    assert np.array_equal(outputs(model, data()[0]), outputs(other, data()[0]))
    other.load_weights(tmp_path / "w.safetensors")  # a model file and a checkpoint hold weights too
    model.save(tmp_path / "m.safetensors")
    other.load_weights(tmp_path / "m.safetensors")
    wrong = Model(nn.Sequential(nn.Linear(4, 9), nn.Linear(9, 2), nn.Linear(2, 2)))
    with pytest.raises(ValueError, match=r"(?s)do not fit Model.*network\.2\.weight.*network\.0\.weight"):
        wrong.load_weights(tmp_path / "w.safetensors")


def test_the_user_class_rule_holds_for_model_save(tmp_path) -> None:
    model = Model(TwoLayerNet(4))
    model.compile(optimizer="sgd", loss="cross_entropy", lr=0.1)
    model.save(tmp_path / "m.safetensors")
    with pytest.raises(CorruptFileError, match="TwoLayerNet"):
        load_model(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors", classes=[TwoLayerNet])
    assert type(loaded.network) is TwoLayerNet and type(loaded.optimizer).__name__ == "SGD"
    with pytest.raises(ValueError, match="not kept as attribute"):
        Model(ForgetsItsArguments(2)).save(tmp_path / "x.safetensors")


# ----- checkpoints -------------------------------------------------------------------------------
def test_a_model_checkpoint_file_loads_with_nurinet_load_and_load_model(tmp_path) -> None:
    x, y = data()
    model = compiled_model()
    full = ModelCheckpoint(str(tmp_path / "full-{epoch}.safetensors"))
    weights = ModelCheckpoint(str(tmp_path / "weights.safetensors"), save_weights_only=True)
    model.fit(x, y, epochs=2, verbose=0, callbacks=[full, weights])
    state = nt.random.default_generator.get_state()
    assert type(nt.load(full.saved[-1])) is Model
    assert nt.random.default_generator.get_state() == state  # loading a model draws nothing
    resumed = load_model(full.saved[-1])
    assert type(resumed.optimizer).__name__ == "Adam" and resumed.optimizer.state
    assert load_checkpoint(full.saved[-1])["epoch"] == 2
    other = compiled_model()
    other.load_state_dict(nt.load(weights.saved[-1]))
    assert np.array_equal(outputs(other, x), outputs(model, x))


def test_a_save_checkpoint_file_loads_with_nurinet_load(tmp_path) -> None:
    model = TwoLayerNet(4)
    save_checkpoint(tmp_path / "c.safetensors", model, epoch=3)
    assert type(nt.load(tmp_path / "c.safetensors", classes=[TwoLayerNet])) is TwoLayerNet


# ----- untrusted files ---------------------------------------------------------------------------
@pytest.mark.parametrize("record", [
    {"stored": True, "optimizer": {"class": "os.system", "hyperparameters": {}}, "optimizer_state": False,
     "loss": {"name": "mse"}, "metrics": [], "from_logits": None},
    {"stored": True, "optimizer": {"class": "Adam", "hyperparameters": {}}, "optimizer_state": False,
     "loss": {"name": "mse"}, "metrics": [{"class": "TopKCategoricalAccuracy", "config": {"k": 10**12}}],
     "from_logits": None},
    {"stored": True, "optimizer": {"class": "Adam", "hyperparameters": {}}, "optimizer_state": False,
     "loss": {"layer": {"class": "Linear", "module": "nurinet.nn.linear",
                        "config": {"in_features": 16384, "out_features": 16384}}},
     "metrics": [], "from_logits": None},
    "[" * 1000,
])
def test_crafted_compile_settings_are_refused(tmp_path, record) -> None:
    model = compiled_model()
    text = record if isinstance(record, str) else json.dumps(record)
    save_checkpoint(tmp_path / "evil.safetensors", model, extra={"nurinet.compile": text})
    with pytest.raises(CorruptFileError, match="evil.safetensors"):
        load_model(tmp_path / "evil.safetensors")


def test_a_damaged_state_dict_file_is_refused(tmp_path) -> None:
    path = tmp_path / "w.safetensors"
    nt.save({"w": np.ones(100, np.float32)}, path)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="SHA-256"):
        nt.load(path)
    with pytest.raises(CorruptFileError):
        TwoLayerNet(4).load_state_dict(nt.load(path))


# ----- file modes --------------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_saved_files_get_the_users_umask(tmp_path) -> None:
    old = os.umask(0o027)
    try:
        nt.save(TwoLayerNet(4), tmp_path / "m.safetensors")
        with open(tmp_path / "plain", "wb"):
            pass
    finally:
        os.umask(old)
    mode = os.stat(tmp_path / "m.safetensors").st_mode & 0o777
    assert mode == os.stat(tmp_path / "plain").st_mode & 0o777 == 0o640
    os.chmod(tmp_path / "m.safetensors", 0o600)  # a file replaced keeps its mode
    nt.save(TwoLayerNet(4), tmp_path / "m.safetensors")
    assert os.stat(tmp_path / "m.safetensors").st_mode & 0o777 == 0o600


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_the_mode_is_pytorchs(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    nt.save(TwoLayerNet(4).state_dict(), tmp_path / "a.safetensors")
    torch.save({"w": torch.zeros(2)}, tmp_path / "b.pt")
    assert os.stat(tmp_path / "a.safetensors").st_mode == os.stat(tmp_path / "b.pt").st_mode


def test_loading_warns_about_nothing_for_a_plain_model(tmp_path) -> None:
    compiled_model().save(tmp_path / "m.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model(tmp_path / "m.safetensors")


class Classifier(Model):
    """A user's Model subclass with its own forward and constructor arguments."""

    def __init__(self, n_in: int) -> None:
        super().__init__()
        self.n_in = n_in
        self.layer = nn.Linear(n_in, 2)

    def forward(self, x):
        return self.layer(x)


def test_a_model_subclass_of_the_users_saves_and_loads_compiled(tmp_path) -> None:
    model = Classifier(4)
    model.compile(optimizer="adam", loss="cross_entropy", lr=1e-2)
    model.fit(*data(), epochs=1, verbose=0)
    model.save(tmp_path / "c.safetensors")
    loaded = load_model(tmp_path / "c.safetensors", classes=[Classifier])
    assert type(loaded) is Classifier and loaded.n_in == 4 and loaded.optimizer.state
    assert np.array_equal(outputs(loaded, data()[0]), outputs(model, data()[0]))


def test_the_quickstarts_calls_run_as_written(tmp_path) -> None:
    """PyTorch's quickstart: ``torch.save(model.state_dict(), "model.pth")`` then
    ``model.load_state_dict(torch.load("model.pth", weights_only=True))``."""
    model = TwoLayerNet(4)
    nt.save(model.state_dict(), tmp_path / "model.pth")
    other = TwoLayerNet(4)
    other.load_state_dict(nt.load(tmp_path / "model.pth", weights_only=True, map_location="cpu"))
    assert np.array_equal(outputs(model, data()[0]), outputs(other, data()[0]))
    assert type(nt.load(tmp_path / "model.pth", map_location="cpu")) is dict
    with pytest.raises(TypeError, match="device name"):
        nt.load(tmp_path / "model.pth", map_location=lambda storage, location: storage)


def test_a_checkpoint_callback_file_loads_compiled(tmp_path) -> None:
    from nurinet.training import CheckpointCallback

    model = compiled_model()
    callback = CheckpointCallback(str(tmp_path / "c.safetensors"))
    model.fit(*data(), epochs=1, verbose=0, callbacks=[callback])
    resumed = load_model(callback.saved[-1])
    assert type(resumed.optimizer).__name__ == "Adam" and resumed.optimizer.state
