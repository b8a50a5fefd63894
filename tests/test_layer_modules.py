"""Saved layers record their defining module; loading imports only nurinet's own modules.

Also: files written before the module was recorded still load, ``Model.get_config`` means
constructor arguments (``training_config`` the training configuration), and ``io`` imports
nothing above ``nn``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import nurinet as nt
import nurinet.io
from nurinet import nn
from nurinet.io import (
    CorruptFileError,
    layer_config,
    load,
    module_from_config,
    register_layer,
    save,
    save_file,
)
from nurinet.io.registry import _USER, layer_class_of
from nurinet.training import Model

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _layer(cls: str, **config) -> dict:
    """A layer as files wrote it before the defining module was recorded."""
    return {"class": cls, "config": config}


def _nested(config: dict) -> dict:
    return {"__layer__": config}


# A Model(Sequential(Linear(4, 6, relu), OutputLayer(6, 3))) in the layout nurinet wrote
# before this change: class names only, no "module".
OLD_MODEL = _layer("Model", network=_nested(_layer("Sequential", layers={"__dict__": {
    "0": _nested(_layer("Linear", in_features=4, out_features=6, bias=True, dtype={"__dtype__": "float32"},
                        activation=_nested(_layer("Activation", activation={"__activation__": "relu"})))),
    "1": _nested(_layer("OutputLayer", in_features=6, units=3, activation="softmax", loss="cross_entropy",
                        bias=True)),
}})))
OLD_MODEL_SHAPES = {"network.0.weight": (6, 4), "network.0.bias": (6,), "network.1.weight": (3, 6),
                    "network.1.bias": (3,)}


def write_model_file(path: Path, architecture: dict, shapes: dict[str, tuple[int, ...]]) -> Path:
    """A model file as ``nurinet.save`` writes it, with the given architecture JSON."""
    tensors = {name: np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) / 10
               for name, shape in shapes.items()}
    save_file(tensors, path, {"nurinet.format": "model", "nurinet.version": "1",
                              "nurinet.architecture": json.dumps(architecture),
                              "nurinet.training": "false"})
    return path


def modules_named(config: dict) -> list[str]:
    """Every ``"module"`` recorded in an architecture, the outermost layer's first."""
    found = [config["module"]] if "module" in config else []
    for value in config.get("config", {}).values():
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, dict) and "__layer__" in item:
                found += modules_named(item["__layer__"])
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return found


# ----- the saved layout ---------------------------------------------------------------------------
def test_saved_layers_record_their_defining_module() -> None:
    model = Model(nn.Sequential(nn.Linear(4, 6, activation="relu"), nn.OutputLayer(6, 3, "softmax")))
    config = layer_config(model)
    assert list(config) == ["class", "module", "config"]
    assert config["class"] == "Model" and config["module"] == "nurinet.training.model"
    assert sorted(modules_named(config)) == ["nurinet.nn.activation", "nurinet.nn.container", "nurinet.nn.linear",
                                             "nurinet.nn.output", "nurinet.training.model"]


def test_model_get_config_is_its_constructor_arguments() -> None:
    network = nn.Sequential(nn.Linear(4, 3))
    model = Model(network)
    assert model.get_config() == {"network": network}
    assert Model().get_config() == {"network": None}
    rebuilt = module_from_config(json.loads(json.dumps(layer_config(model))))
    assert type(rebuilt) is Model and repr(rebuilt) == repr(model)


def test_model_training_config_is_the_configuration() -> None:
    model = Model(nn.Sequential(nn.Linear(4, 3), nn.OutputLayer(3, 2, "softmax")))
    model.compile("sgd", "cross_entropy", lr=0.1)
    config = model.training_config()
    assert config["model"]["layers"][-1]["type"] == "Output" and config["updater"]["name"] == "sgd"


def test_a_registered_model_subclass_round_trips(tmp_path) -> None:
    """A registered subclass keeps its own constructor's arguments, not Model's get_config."""

    @register_layer(name="TestScaledModel")
    class ScaledModel(Model):
        def __init__(self, width: int, scale: float = 1.0) -> None:
            super().__init__(nn.Linear(width, 2))
            self.scale = scale

        def forward(self, x):
            return self.network(x) * self.scale

    try:
        model = ScaledModel(3, scale=2.5)
        config = layer_config(model)
        assert config == {"class": "TestScaledModel", "config": {"width": 3, "scale": 2.5}}  # no "module"
        save(model, tmp_path / "m.safetensors")
        loaded = load(tmp_path / "m.safetensors")
        assert type(loaded) is ScaledModel and loaded.scale == 2.5
        x = nt.ones(1, 3)
        np.testing.assert_array_equal(loaded(x).numpy(), model.eval()(x).numpy())
    finally:
        _USER.pop("TestScaledModel")


def test_user_layers_are_saved_by_registered_name_and_round_trip(tmp_path) -> None:
    @register_layer(name="TestShift")
    class Shift(nn.Module):
        def __init__(self, by: float) -> None:
            super().__init__()
            self.by = by

        def forward(self, x):
            return x + self.by

    try:
        model = nn.Sequential(nn.Linear(2, 2), Shift(0.5))
        inner = layer_config(model)["config"]["layers"]["__dict__"]["1"]["__layer__"]
        assert inner == {"class": "TestShift", "config": {"by": 0.5}}
        save(model, tmp_path / "u.safetensors")
        loaded = load(tmp_path / "u.safetensors")
        assert isinstance(loaded[1], Shift) and loaded[1].by == 0.5
    finally:
        _USER.pop("TestShift")


# ----- files saved before the module was recorded -------------------------------------------------
def test_a_file_in_the_old_layout_loads(tmp_path) -> None:
    path = write_model_file(tmp_path / "old.safetensors", OLD_MODEL, OLD_MODEL_SHAPES)
    model = load(path)
    assert type(model) is Model and isinstance(model.network[1], nn.OutputLayer)
    assert not model.training
    np.testing.assert_array_equal(model.network[0].weight.numpy(),
                                  np.arange(24, dtype=np.float32).reshape(6, 4) / 10)
    assert modules_named(layer_config(model))[0] == "nurinet.training.model"  # saved anew: the new layout


def test_an_old_file_of_a_reference_model_loads(tmp_path) -> None:
    from nurinet.models import Autoencoder

    reference = Autoencoder(sizes=[6, 4, 2])
    shapes = {k: v.shape for k, v in reference.state_dict().items()}
    path = write_model_file(tmp_path / "old.safetensors", _layer("Autoencoder", sizes=[6, 4, 2]), shapes)
    assert type(load(path)) is Autoencoder


def test_the_dry_count_still_guards_the_new_layout(tmp_path) -> None:
    """Model is a container for the count (its network's layers are placed under network.)."""
    model = Model(nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)))
    architecture = layer_config(model)
    linear = architecture["config"]["network"]["__layer__"]["config"]["layers"]["__dict__"]["1"]["__layer__"]
    linear["config"]["out_features"] = 200_000
    path = write_model_file(tmp_path / "big.safetensors", architecture,
                            {k: v.shape for k, v in model.state_dict().items()})
    with pytest.raises(CorruptFileError, match=r"layer 'network\.1' \(Linear\) declares at least 800,000"):
        load(path)


# ----- modules a file may not choose --------------------------------------------------------------
@pytest.mark.parametrize(("module", "cls"), [
    ("os", "system"), ("subprocess", "Popen"), ("builtins", "eval"), ("nurinetx.layers", "Linear"),
    ("nurinet", "Linear"), ("nurinet..nn", "Linear"), ("nurinet.nn.linear ", "Linear"),
    ("nurinet.nn.linear", "_private"), ("nurinet.nn.linear", "__class__"), ("nurinet.__main__", "Linear"),
])
def test_a_file_naming_another_module_is_refused(tmp_path, module, cls) -> None:
    path = write_model_file(tmp_path / "evil.safetensors", {"class": cls, "module": module, "config": {}}, {})
    with pytest.raises(CorruptFileError, match="evil.safetensors"):
        load(path)
    with pytest.raises(CorruptFileError):
        module_from_config({"class": cls, "module": module, "config": {}})


@pytest.mark.parametrize(("module", "cls"), [("nurinet.io.atomic", "os"), ("nurinet.autograd.tensor", "Tensor")])
def test_a_nurinet_name_that_is_not_a_layer_is_refused(tmp_path, module, cls) -> None:
    path = write_model_file(tmp_path / "odd.safetensors", {"class": cls, "module": module, "config": {}}, {})
    with pytest.raises(CorruptFileError, match="is not a layer"):
        load(path)


def test_a_file_never_imports_a_module_of_its_choosing(tmp_path, monkeypatch) -> None:
    (tmp_path / "planted_layers.py").write_text(textwrap.dedent("""
        import pathlib
        pathlib.Path(__file__).with_name("IMPORTED").write_text("yes")
        from nurinet.nn import Linear
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    linear = {"class": "Linear", "config": {"in_features": 1, "out_features": 1}}
    shapes = {"weight": (1, 1), "bias": (1,)}
    planted = write_model_file(tmp_path / "planted.safetensors", {**linear, "module": "planted_layers"}, shapes)
    with pytest.raises(CorruptFileError, match="only nurinet's own modules"):
        load(planted)
    # Under nurinet's name it is not found (imports look in nurinet's own directory): by name instead.
    posing = write_model_file(tmp_path / "posing.safetensors", {**linear, "module": "nurinet.planted_layers"},
                              shapes)
    assert type(load(posing)) is nn.Linear
    assert not (tmp_path / "IMPORTED").exists() and "planted_layers" not in sys.modules


def test_a_moved_nurinet_class_is_found_by_name() -> None:
    config = {"class": "Linear", "module": "nurinet.nn.gone", "config": {"in_features": 2, "out_features": 1}}
    assert layer_class_of(config) is nn.Linear


# ----- io imports nothing above nn ----------------------------------------------------------------
ABOVE_NN = ("nurinet.training", "nurinet.models", "nurinet.config", "nurinet.rl", "nurinet.distributed",
            "nurinet.onnx", "nurinet.sklearn", "nurinet.plots", "nurinet.cli", "nurinet.demo", "nurinet.summary")


def _imported_names(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):  # every import, those inside functions included
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return names


def test_io_imports_nothing_above_nn() -> None:
    offenders = []
    for source in sorted(Path(nurinet.io.__file__).parent.glob("*.py")):
        for name in _imported_names(ast.parse(source.read_text())):
            if name.startswith(ABOVE_NN):
                offenders.append(f"{source.name}: {name}")
    assert offenders == []


def test_io_loads_no_application_package_until_a_file_names_one(tmp_path) -> None:
    nn_only = tmp_path / "nn.safetensors"
    save(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.OutputLayer(4, 2, "softmax")), nn_only)
    old_nn_only = write_model_file(tmp_path / "old_nn.safetensors",
                                   _layer("Linear", in_features=2, out_features=1), {"weight": (1, 2), "bias": (1,)})
    old_model = write_model_file(tmp_path / "old_model.safetensors", OLD_MODEL, OLD_MODEL_SHAPES)
    script = textwrap.dedent("""
        import sys
        import nurinet
        def loaded():
            parts = [m.split(".") for m in sys.modules if m.startswith("nurinet.")]
            return sorted({p[1] for p in parts if p[1] in ("training", "models", "config")})
        for path in sys.argv[1:3]:
            nurinet.load(path)
        print(loaded())
        nurinet.load(sys.argv[3])
        print(loaded())
    """)
    done = subprocess.run([sys.executable, "-c", script, str(nn_only), str(old_nn_only), str(old_model)],
                          capture_output=True, text=True, env=ENV, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.split("\n")[:2]
    assert before == "[]", "loading files of nn layers imported an application package"
    assert "training" in after  # an old file naming Model imports the training package, by name


# ----- deprecated aliases and moved modules -------------------------------------------------------
def test_checkpoint_callback_is_a_deprecated_alias_in_io() -> None:
    from nurinet.training import CheckpointCallback
    from nurinet.training.checkpoint import CheckpointCallback as defined

    assert CheckpointCallback is defined
    with pytest.warns(DeprecationWarning, match="moved to nurinet.training.CheckpointCallback"):
        from nurinet.io import CheckpointCallback as from_io
    with pytest.warns(DeprecationWarning, match="nurinet.io.checkpoint.CheckpointCallback moved"):
        from nurinet.io.checkpoint import CheckpointCallback as from_io_checkpoint
    assert from_io is from_io_checkpoint is CheckpointCallback
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = nurinet.io.Nope


def test_nurinet_config_re_exports_the_moved_module() -> None:
    import nurinet.config
    import nurinet.training.config

    assert set(nurinet.training.config.__all__) <= set(nurinet.config.__all__)
    for name in nurinet.config.__all__:
        assert getattr(nurinet.config, name) is getattr(nurinet.training.config, name, nn.OutputLayer)
    assert nurinet.config.build is nurinet.training.config.build
