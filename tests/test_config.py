"""Training configurations: building, the demo parity, training_config round trips, ``nurinet train``."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nurinet as nt
from nurinet import demo, nn
from nurinet.io import load, load_checkpoint, register_layer, save
from nurinet.io.registry import _USER
from nurinet.training import config as cfg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO, "examples", "configs")
JSON_CONFIG = os.path.join(CONFIGS, "digits_mlp.json")
YAML_CONFIG = os.path.join(CONFIGS, "digits_mlp.yaml")


def small(**overrides):
    config = {
        "seed": 3,
        "model": {"input_size": 4, "layers": [
            {"type": "Dense", "units": 8, "activation": "tanh"},
            {"type": "Dropout", "p": 0.2},
            {"type": "LayerNorm"},
            {"type": "Output", "units": 3, "activation": "softmax", "loss": "cross_entropy"}]},
        "updater": {"name": "sgd", "lr": 0.1, "momentum": 0.5},
        "training": {"epochs": 2, "batch_size": 8, "metrics": ["accuracy"]},
    }
    config.update(overrides)
    return config


def test_json_and_yaml_examples_describe_the_same_run():
    yaml = pytest.importorskip("yaml")
    with open(YAML_CONFIG) as f:
        from_yaml = yaml.safe_load(f)
    assert cfg.load_config(JSON_CONFIG) == from_yaml == cfg.load_config(YAML_CONFIG)


def test_config_route_matches_the_python_route():
    """The demo MLP from the configuration file trains to exactly the demo's accuracy."""
    by_config = cfg.run(JSON_CONFIG, epochs=2, verbose=0)
    by_python = demo.run(epochs=2, verbose=0)
    assert by_config["accuracy"] == by_python["accuracy"] > 0.8
    np.testing.assert_array_equal(by_config["confusion_matrix"], by_python["confusion_matrix"])


def test_build_small_model():
    built = cfg.build(small())
    network = built.model.network
    assert [type(m).__name__ for m in network] == ["Linear", "Dropout", "LayerNorm", "OutputLayer"]
    assert network[2].normalized_shape == (8,) and network[3].in_features == 8
    assert built.model.optimizer.param_groups[0]["momentum"] == 0.5
    assert built.fit_args == {"epochs": 2, "batch_size": 8, "shuffle": True, "verbose": 1}
    x, y = nt.data.make_blobs(32, centers=3, n_features=4, generator=nt.Generator(0))
    built.model.fit(x, y, verbose=0, **{k: v for k, v in built.fit_args.items() if k != "verbose"})
    assert built.model.predict(x).shape == (32, 3)


def test_seed_makes_initial_weights_reproducible():
    a, b = cfg.build(small()).model, cfg.build(small()).model
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(va, vb)
    c = cfg.build(small(seed=4)).model
    assert not np.array_equal(a.state_dict()["network.0.weight"], c.state_dict()["network.0.weight"])


def test_training_config_round_trip():
    built = cfg.build(small())
    config = built.model.training_config()
    assert config["model"] == small()["model"] | {"layers": [
        {"type": "Dense", "units": 8, "activation": "tanh"}, {"type": "Dropout", "p": 0.2},
        {"type": "LayerNorm", "normalized_shape": {"__tuple__": [8]}, "eps": 1e-05,
         "elementwise_affine": True, "bias": True, "dtype": {"__dtype__": "float32"}},
        {"type": "Output", "units": 3, "activation": "softmax", "loss": "cross_entropy"}]}
    assert {"name": "sgd", "lr": 0.1, "momentum": 0.5}.items() <= config["updater"].items()
    assert config["training"] == small()["training"] and config["seed"] == 3
    json.dumps(config)  # plain JSON
    rebuilt = cfg.build(config).model
    assert repr(rebuilt) == repr(built.model)
    assert rebuilt.training_config() == config
    for a, b in zip(rebuilt.state_dict().values(), built.model.state_dict().values()):
        np.testing.assert_array_equal(a, b)  # same seed, same architecture: same initial weights


def test_model_to_config_of_a_python_model():
    model = nt.training.Model(nn.Sequential(nn.Linear(5, 4, activation=nt.F.relu, bias=False),
                                            nn.ReLU(), nn.Linear(4, 2)))
    model.compile("adam", "cross_entropy", lr=0.01)
    config = cfg.model_to_config(model)
    assert config["model"]["layers"] == [
        {"type": "Dense", "units": 4, "activation": "relu", "bias": False}, {"type": "ReLU"},
        {"type": "Dense", "units": 2}]
    assert config["model"]["input_size"] == 5 and config["updater"]["name"] == "adam"
    with pytest.raises(ValueError, match="Output layer that names the loss"):
        cfg.build(config)


def test_configured_model_saves_and_loads(tmp_path):
    model = cfg.build(small()).model
    save(model, tmp_path / "m.safetensors")
    loaded = load(tmp_path / "m.safetensors").eval()
    x = nt.randn(3, 4)
    model.eval()
    np.testing.assert_array_equal(loaded(x).array, model(x).array)


def test_user_layer_in_a_config():
    @register_layer(name="TestConfigScale")
    class Scale(nn.Module):
        def __init__(self, in_features, factor=2.0):
            super().__init__()
            self.in_features, self.factor = in_features, factor

        def forward(self, x):
            return x * self.factor

    try:
        config = small()
        config["model"]["layers"].insert(1, {"type": "TestConfigScale", "factor": 3.0, "activation": "relu"})
        network = cfg.build(config).model.network
        assert isinstance(network[1], Scale) and network[1].in_features == 8
        assert isinstance(network[2], nn.Activation) and network[2].name == "relu"
    finally:
        _USER.pop("TestConfigScale")


def test_schedule_and_callbacks_sections(tmp_path):
    pytest.importorskip("nurinet.optim.lr_scheduler")
    built = cfg.build(small(schedule={"name": "StepLR", "step_size": 1, "gamma": 0.5},
                            callbacks=[{"type": "checkpoint", "path": str(tmp_path / "c.safetensors")}]))
    assert type(built.scheduler).__name__ == "StepLR"
    x, y = nt.data.make_blobs(16, centers=3, n_features=4, generator=nt.Generator(0))
    built.model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=built.callbacks)
    assert built.model.optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    assert load_checkpoint(tmp_path / "c.safetensors", built.model)["epoch"] == 2


@pytest.mark.parametrize(("change", "message"), [
    ({"optimizer": {}}, "unknown configuration section.*optimizer"),
    ({"training": {"epoch": 3}}, "unknown 'training' setting.*epoch"),
    ({"updater": {"lr": 0.1}}, "'updater' section needs a 'name'"),
    ({"updater": {"name": "adamm"}}, "unknown optimizer 'adamm'"),
    ({"model": {"layers": []}}, "has no layers"),
    ({"model": {"layers": [{"units": 3}]}}, r"layers\[0\] must be a mapping with a 'type'"),
    ({"model": {"layers": [{"type": "Dense", "units": 3}]}}, "input width .* unknown"),
    ({"model": {"input_size": 2, "layers": [{"type": "Dense"}]}}, "needs 'units'"),
    ({"model": {"input_size": 2, "layers": [{"type": "Dense", "units": 2, "act": "relu"}]}},
     r"layers\[0\] \(Dense\): unknown setting\(s\) \['act'\]"),
    ({"model": {"input_size": 2, "layers": [{"type": "Nope"}]}}, "unknown layer type 'Nope'"),
    ({"model": {"input_size": 2, "layers": [{"type": "Dense", "units": 2}]}}, "Output layer"),
    ({"schedule": {"name": "nope"}}, "unknown schedule 'nope'"),
    ({"callbacks": [{"type": "nope"}]}, r"callbacks\[0\]: unknown callback type"),
])
def test_config_errors(change, message):
    with pytest.raises(ValueError, match=message):
        cfg.build(small(**change))


def test_regularization_section():
    regularizers = pytest.importorskip("nurinet.nn.regularizers")
    built = cfg.build(small(regularization={"l2": 0.01, "constraint": {"type": "MaxNorm", "max_value": 0.5}}))
    network = built.model.network
    assert set(network[0]._regularizers) == {"weight"} and network[0]._regularizers["weight"].l2 == 0.01
    assert "weight" in network[3]._constraints and "bias" not in network[3]._constraints
    x, y = nt.data.make_blobs(16, centers=3, n_features=4, generator=nt.Generator(0))
    history = built.model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert history.history["regularization"][0] > 0
    norms = np.linalg.norm(network[0].weight.array, axis=1)
    assert np.all(norms <= 0.5 + 1e-5)
    assert regularizers.regularization_loss(network).item() > 0
    with pytest.raises(ValueError, match="unknown constraint 'nope'"):
        cfg.build(small(regularization={"constraint": {"type": "nope"}}))
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['l3'\]"):
        cfg.build(small(regularization={"l3": 1.0}))


def test_missing_optional_sections_are_rejected(monkeypatch):
    monkeypatch.setitem(sys.modules, "nurinet.nn.regularizers", None)
    with pytest.raises(ValueError, match="needs nurinet.nn.regularizers"):
        cfg.build(small(regularization={"l2": 1e-4}))
    monkeypatch.setitem(sys.modules, "nurinet.optim.lr_scheduler", None)
    with pytest.raises(ValueError, match="needs nurinet.optim.lr_scheduler"):
        cfg.build(small(schedule={"name": "StepLR", "step_size": 1}))


def test_load_config_sources_and_errors(tmp_path, monkeypatch):
    assert cfg.load_config('{"seed": 1}') == {"seed": 1}
    with pytest.raises(ValueError, match="not valid JSON"):
        cfg.load_config("{seed: }")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must be a mapping"):
        cfg.load_config(str(tmp_path / "list.json"))
    cfg.save_config(small(), tmp_path / "s.json")
    assert cfg.load_config(str(tmp_path / "s.json")) == small()
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(ImportError, match="needs PyYAML"):
        cfg.load_config(YAML_CONFIG)


def test_yaml_save_and_load(tmp_path):
    pytest.importorskip("yaml")
    cfg.save_config(small(), tmp_path / "s.yaml")
    assert cfg.load_config(str(tmp_path / "s.yaml")) == small()
    with pytest.raises(ValueError, match="not valid YAML"):
        cfg.load_config("a: [1, 2")


def test_nurinet_train_command(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-m", "nurinet.cli", "train", JSON_CONFIG, "--epochs", "1",
                           "--output-dir", str(tmp_path / "run"), "--quiet"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout and "confusion matrix" in done.stdout
    assert "Total params: 85,002" in done.stdout
    info = load_checkpoint(tmp_path / "run" / "checkpoint.safetensors")
    assert info["epoch"] == 1 and info["extra"]["config"]["name"] == "digits_mlp"
    model = load(tmp_path / "run" / "model.safetensors")
    assert isinstance(model.network[4], nn.OutputLayer)
    bad = subprocess.run([sys.executable, "-m", "nurinet.cli", "train", str(tmp_path / "missing.json")],
                         capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path, check=False)
    assert bad.returncode != 0


def test_train_command_resumes_exactly(tmp_path, capsys):
    from nurinet.cli import main

    config = small(data={"dataset": "iris", "val_fraction": 0.2, "test_fraction": 0.2, "stratify": True},
                   schedule={"name": "StepLR", "step_size": 1, "gamma": 0.5})
    config["model"]["input_size"] = 4
    path = tmp_path / "iris.json"
    cfg.save_config(config, path)
    assert main(["train", str(path), "--epochs", "3", "--output-dir", str(tmp_path / "a"), "--quiet"]) == 0
    assert main(["train", str(path), "--epochs", "1", "--output-dir", str(tmp_path / "b"), "--quiet"]) == 0
    assert main(["train", str(path), "--epochs", "3", "--output-dir", str(tmp_path / "b"), "--quiet",
                 "--resume", str(tmp_path / "b" / "checkpoint.safetensors")]) == 0
    assert "test accuracy" in capsys.readouterr().out
    straight, resumed = load(tmp_path / "a" / "model.safetensors"), load(tmp_path / "b" / "model.safetensors")
    for key, value in straight.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value)
    # The same through the Python route, checking that only the missing epochs ran.
    cfg.run(config, epochs=1, verbose=0, checkpoint=tmp_path / "c.safetensors")
    result = cfg.run(config, epochs=3, verbose=0, resume=tmp_path / "c.safetensors")
    assert len(result["history"].history["loss"]) == 2
    for key, value in straight.state_dict().items():
        np.testing.assert_array_equal(result["model"].state_dict()[key], value)


@pytest.mark.parametrize("updater", ["nag", "Nesterovs", "none", "momentum"])
def test_updater_names_survive_model_to_config(updater):
    """A preset updater is written back as its class and settings, and builds the same optimizer."""
    first = cfg.build(small(updater={"name": updater, "lr": 0.1})).model
    again = cfg.build(cfg.model_to_config(first)).model
    assert type(again.optimizer) is type(first.optimizer)
    saved = {k: v for k, v in first.optimizer.param_groups[0].items() if k != "params"}
    assert {k: again.optimizer.param_groups[0][k] for k in saved} == saved


def test_callbacks_by_keras_names_build_their_own_classes(tmp_path):
    """Issue 15: these names failed ("unknown callback type"), and ModelCheckpoint was another class."""
    from nurinet import training

    built = cfg.build(small(callbacks=[
        {"type": "EarlyStopping", "monitor": "loss"}, {"type": "CSVLogger", "filename": str(tmp_path / "l.csv")},
        {"type": "ReduceLROnPlateau", "monitor": "loss"}, {"type": "TerminateOnNaN"},
        {"type": "ModelCheckpoint", "filepath": str(tmp_path / "m.safetensors")}]))
    assert [type(cb) for cb in built.callbacks] == [
        training.EarlyStopping, training.CSVLogger, training.ReduceLROnPlateau, training.TerminateOnNaN,
        training.ModelCheckpoint]
