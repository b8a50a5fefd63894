"""Saving a model with activity regularization, every way nurinet offers (issue 19).

A layer's ``activity_regularizer`` (``nn.Linear``, the convolutions) is part of its
architecture: before the fix ``nurinet.save``, ``Model.save`` and a configuration of a
convolution refused it (``TypeError: cannot save Linear.activity_regularizer``), and
``model_to_config`` silently dropped a Dense layer's. Each route must give back a model
with the same outputs and the same regularization term as the original.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import nurinet
from nurinet import Tensor, nn
from nurinet.io import CorruptFileError, layer_config, module_from_config
from nurinet.io.safetensors import load_file, save_file
from nurinet.nn.regularizers import (
    L1,
    L1L2,
    L2,
    REGULARIZERS,
    KLSparsity,
    Regularizer,
    add_activity_penalties,
    deserialize_regularizer,
    serialize_regularizer,
)
from nurinet.training import Model, load_model
from nurinet.training.config import (
    build,
    build_network,
    load_config,
    model_to_config,
    save_config,
)


def _layer_network() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 5), nn.ActivityRegularization(l1=0.03, l2=0.02), nn.Linear(5, 3))


def _argument_network() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 5, activation="tanh", activity_regularizer=L1L2(0.01, 0.05)),
                         nn.Linear(5, 4, activity_regularizer=L1(0.02)),
                         nn.Linear(4, 3, activity_regularizer=L2(0.1)))


def _sparse_network() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 5, activation="sigmoid", activity_regularizer=KLSparsity(0.1, 2.0)),
                         nn.ActivityRegularization(l2=0.5), nn.Linear(5, 3))


NETWORKS = {"layer": _layer_network, "argument": _argument_network, "kl_sparsity": _sparse_network}


def _conv_network() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 2, 3, activity_regularizer=L1(0.01)), nn.ReLU(),
                         nn.ActivityRegularization(l1=0.001, l2=0.002), nn.Flatten(),
                         nn.Linear(2 * 4 * 4, 3, activity_regularizer=L2(0.05)))


def _input(shape: tuple[int, ...] = (8, 6)) -> np.ndarray:
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


def _output_and_penalty(model: nn.Module, x: np.ndarray) -> tuple[np.ndarray, float]:
    out = model(Tensor(x))
    penalty = add_activity_penalties(model)
    assert penalty is not None, "the model recorded no activity penalty"
    return out.numpy(), float(penalty.item())


def _assert_same(original: nn.Module, loaded: nn.Module, x: np.ndarray) -> None:
    out, penalty = _output_and_penalty(original, x)
    out2, penalty2 = _output_and_penalty(loaded, x)
    np.testing.assert_allclose(out2, out, rtol=1e-6, atol=1e-7)
    assert penalty > 0
    assert penalty2 == pytest.approx(penalty, rel=1e-6)


def _regularizers(model: nn.Module) -> list:
    found = []
    for module in model.modules():
        if getattr(module, "activity_regularizer", None) is not None:
            found.append(serialize_regularizer(module.activity_regularizer))
        if isinstance(module, nn.ActivityRegularization):
            found.append({"layer": [module.l1, module.l2]})
    return found


# ----- the regularizers themselves ---------------------------------------------------------------
@pytest.mark.parametrize("regularizer, stored", [
    (L1(0.02), {"class": "L1", "config": {"l1": 0.02}}),
    (L2(0.1), {"class": "L2", "config": {"l2": 0.1}}),
    (L1L2(0.01, 0.05), {"class": "L1L2", "config": {"l1": 0.01, "l2": 0.05}}),
    (KLSparsity(0.1, 2.0), {"class": "KLSparsity", "config": {"rho": 0.1, "beta": 2.0}}),
])
def test_serialize_regularizer_round_trips(regularizer, stored):
    assert serialize_regularizer(regularizer) == stored
    assert json.loads(json.dumps(stored)) == stored
    rebuilt = deserialize_regularizer(stored)
    assert type(rebuilt) is type(regularizer)
    assert rebuilt.get_config() == regularizer.get_config()
    w = Tensor(np.linspace(0.05, 0.9, 12, dtype=np.float32).reshape(3, 4))
    assert float(rebuilt.activity_penalty(w).item()) == pytest.approx(float(regularizer.activity_penalty(w).item()))


def test_deserialize_regularizer_refuses_bad_data():
    with pytest.raises(ValueError, match="unknown regularizer"):
        deserialize_regularizer({"class": "NoSuchPenalty", "config": {}})
    with pytest.raises(ValueError, match="cannot rebuild"):
        deserialize_regularizer({"class": "L1", "config": {"l3": 1.0}})
    with pytest.raises(ValueError, match="l1"):
        deserialize_regularizer({"class": "L1", "config": {"l1": -1.0}})
    with pytest.raises(ValueError, match="class"):
        deserialize_regularizer(["L1"])


class _Scaled(Regularizer):
    """A user's regularizer: unknown by name until registered."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def __call__(self, param: Tensor) -> Tensor:
        return (param * param).sum() * self.scale


def test_a_user_regularizer_is_saved_once_registered(tmp_path):
    net = nn.Sequential(nn.Linear(6, 3, activity_regularizer=_Scaled(0.3)))
    with pytest.raises(TypeError, match="REGULARIZERS.register"):
        nurinet.save(net, tmp_path / "user.safetensors")
    REGULARIZERS.register("ScaledForTest", _Scaled)
    try:
        nurinet.save(net, tmp_path / "user.safetensors")
        loaded = nurinet.load(tmp_path / "user.safetensors")
        assert isinstance(loaded[0].activity_regularizer, _Scaled)
        _assert_same(net, loaded, _input())
    finally:
        REGULARIZERS.pop("ScaledForTest")


# ----- every route --------------------------------------------------------------------------------
@pytest.mark.parametrize("make", NETWORKS.values(), ids=NETWORKS.keys())
def test_nurinet_save_and_load(tmp_path, make):
    net = make()
    path = tmp_path / "net.safetensors"
    nurinet.save(net, path)
    loaded = nurinet.load(path)
    assert _regularizers(loaded) == _regularizers(net)
    _assert_same(net, loaded, _input())


def test_nurinet_save_and_load_a_convolution(tmp_path):
    net = _conv_network()
    nurinet.save(net, tmp_path / "conv.safetensors")
    loaded = nurinet.load(tmp_path / "conv.safetensors")
    assert _regularizers(loaded) == _regularizers(net)
    _assert_same(net, loaded, _input((4, 1, 6, 6)))


@pytest.mark.parametrize("make", NETWORKS.values(), ids=NETWORKS.keys())
def test_layer_config_round_trip(make):
    net = make()
    config = json.loads(json.dumps(layer_config(net)))
    rebuilt = module_from_config(config)
    rebuilt.load_state_dict(net.state_dict())
    _assert_same(net, rebuilt, _input())


@pytest.mark.parametrize("make", NETWORKS.values(), ids=NETWORKS.keys())
def test_model_save_and_load_model(tmp_path, make):
    nurinet.manual_seed(0)
    model = Model(make())
    model.compile(optimizer="sgd", loss="mse", lr=0.05)
    x, y = _input((16, 6)), _input((16, 3))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "model.ckpt"
    model.save(path)
    loaded = load_model(path)
    assert _regularizers(loaded) == _regularizers(model)
    _assert_same(model, loaded, x)
    # The regularization term Model.evaluate logs is the same too.
    logs, logs2 = model.evaluate(x, y, batch_size=16), loaded.evaluate(x, y, batch_size=16)
    assert logs["regularization"] > 0
    assert logs2["regularization"] == pytest.approx(logs["regularization"], rel=1e-6)
    assert logs2["loss"] == pytest.approx(logs["loss"], rel=1e-6)
    # nurinet.load reads the same checkpoint (uncompiled).
    _assert_same(model, nurinet.load(path), x)


@pytest.mark.parametrize("make", NETWORKS.values(), ids=NETWORKS.keys())
def test_save_weights_and_load_weights(tmp_path, make):
    nurinet.manual_seed(1)
    model = Model(make())
    model.save_weights(tmp_path / "weights.safetensors")
    nurinet.manual_seed(2)
    other = Model(make())  # the same code, other initial weights
    other.load_weights(tmp_path / "weights.safetensors")
    _assert_same(model, other, _input())


@pytest.mark.parametrize("make", NETWORKS.values(), ids=NETWORKS.keys())
def test_state_dict_and_load_state_dict(tmp_path, make):
    nurinet.manual_seed(3)
    net = make()
    nurinet.save(net.state_dict(), tmp_path / "state.safetensors")
    nurinet.manual_seed(4)
    other = make()
    other.load_state_dict(nurinet.load(tmp_path / "state.safetensors"))
    _assert_same(net, other, _input())
    nurinet.manual_seed(5)
    third = make()
    third.load_state_dict(net.state_dict())  # in memory
    _assert_same(net, third, _input())


@pytest.mark.parametrize("make", [*NETWORKS.values(), _conv_network], ids=[*NETWORKS.keys(), "conv"])
def test_configuration_round_trip(tmp_path, make):
    net = make()
    config = model_to_config(net)
    save_config(config, tmp_path / "net.json")
    rebuilt = build_network(load_config(tmp_path / "net.json")["model"])
    assert _regularizers(rebuilt) == _regularizers(net)
    rebuilt.load_state_dict(net.state_dict())
    x = _input((4, 1, 6, 6)) if make is _conv_network else _input()
    _assert_same(net, rebuilt, x)


def test_a_configuration_names_activity_regularizers():
    config = {"seed": 0,
              "model": {"input_size": 6, "layers": [
                  {"type": "Dense", "units": 5, "activation": "sigmoid",
                   "activity_regularizer": {"type": "KLSparsity", "rho": 0.05, "beta": 3}},
                  {"type": "Dense", "units": 4, "activity_regularizer": "l2"},
                  {"type": "ActivityRegularization", "l1": 0.01},
                  {"type": "Output", "units": 3, "loss": "mse"}]},
              "updater": {"name": "sgd", "lr": 0.1}, "training": {"metrics": []}}
    built = build(config)
    layers = list(built.model.network.children())
    assert serialize_regularizer(layers[0].activity_regularizer) == \
        {"class": "KLSparsity", "config": {"rho": 0.05, "beta": 3.0}}
    assert serialize_regularizer(layers[1].activity_regularizer) == {"class": "L2", "config": {"l2": 0.01}}
    written = model_to_config(built.model)["model"]["layers"]
    assert written[0]["activity_regularizer"] == {"type": "KLSparsity", "rho": 0.05, "beta": 3.0}
    assert written[1]["activity_regularizer"] == {"type": "L2", "l2": 0.01}
    with pytest.raises(ValueError, match="unknown regularizer"):
        build_network({"input_size": 2, "layers": [
            {"type": "Dense", "units": 2, "activity_regularizer": {"type": "L7"}}]})
    with pytest.raises(ValueError, match="activity_regularizer"):
        build_network({"input_size": 2, "layers": [
            {"type": "Dense", "units": 2, "activity_regularizer": {"type": "L1", "l9": 1}}]})


# ----- a file that names a regularizer is still untrusted ----------------------------------------
def _tampered(tmp_path, edit) -> str:
    path = tmp_path / "net.safetensors"
    nurinet.save(_argument_network(), path)
    tensors, metadata = load_file(str(path))
    architecture = json.loads(metadata["nurinet.architecture"])
    edit(architecture["config"]["layers"]["__dict__"]["0"]["__layer__"]["config"]["activity_regularizer"])
    metadata["nurinet.architecture"] = json.dumps(architecture)
    out = tmp_path / "tampered.safetensors"
    save_file(tensors, str(out), metadata)
    return str(out)


@pytest.mark.parametrize("edit, message", [
    (lambda stored: stored["__regularizer__"].update({"class": "os.system"}), "regularizer"),
    (lambda stored: stored["__regularizer__"].update({"config": {"l1": {"__layer__": {}}}}), "regularizer"),
    (lambda stored: stored["__regularizer__"].update({"extra": 1}), "regularizer"),
    (lambda stored: stored.update({"__regularizer__": "L1"}), "tagged value"),
])
def test_a_tampered_regularizer_is_a_corrupt_file(tmp_path, edit, message):
    with pytest.raises(CorruptFileError, match=message):
        nurinet.load(_tampered(tmp_path, edit))


def test_a_regularizer_with_bad_arguments_is_refused(tmp_path):
    path = _tampered(tmp_path, lambda stored: stored["__regularizer__"]["config"].update({"l1": -1.0}))
    with pytest.raises(ValueError, match="l1"):
        nurinet.load(path)
