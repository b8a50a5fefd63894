"""Saving as users save (issue #21): PyTorch's general checkpoint dict and other nested structures
through ``nurinet.save`` / ``nurinet.load``, stored as safetensors plus JSON, never pickled."""

import collections
import json
import math
import os
import struct

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet.io import CorruptFileError, save_file
from nurinet.io.safetensors import read_header
from nurinet.io.structure import MAX_NESTING
from nurinet.optim import SGD, Adam
from nurinet.optim.lr_scheduler import StepLR


def network() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def batches(count: int = 8) -> list[tuple[nt.Tensor, nt.Tensor]]:
    generator = np.random.default_rng(0)
    return [(nt.tensor(generator.normal(size=(16, 4)).astype(np.float32)),
             nt.tensor(generator.integers(0, 3, size=16))) for _ in range(count)]


def train(model: nn.Module, optimizer, scheduler, data) -> nt.Tensor:
    """The tutorial's loop: one optimizer step per batch, one scheduler step per batch."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    for x, y in data:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return loss


def assert_same(saved, loaded, where: str = "obj") -> None:
    """The same structure, types, dtypes and values (NaN equal to NaN)."""
    assert type(loaded) is type(saved), f"{where}: {type(loaded).__name__} != {type(saved).__name__}"
    if isinstance(saved, dict):
        assert list(loaded) == list(saved), where
        for key in saved:
            assert_same(saved[key], loaded[key], f"{where}[{key!r}]")
    elif isinstance(saved, (list, tuple)):
        assert len(loaded) == len(saved), where
        for i, (a, b) in enumerate(zip(saved, loaded)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(saved, (nt.Tensor, np.ndarray, np.generic)):
        a, b = (getattr(v, "array", v) for v in (saved, loaded))
        if isinstance(saved, nt.Tensor):
            assert loaded.requires_grad == saved.requires_grad, where
        assert np.asarray(b).dtype == np.asarray(a).dtype and np.array_equal(a, b, equal_nan=True), where
    elif isinstance(saved, float) and math.isnan(saved):
        assert math.isnan(loaded), where
    else:
        assert loaded == saved, where


# ----- the tutorial's checkpoint ------------------------------------------------------------------
def test_the_tutorials_checkpoint_resumes_training_exactly(tmp_path) -> None:
    data, path = batches(), tmp_path / "checkpoint.safetensors"
    nt.manual_seed(0)
    reference = network()
    reference_optimizer = Adam(reference.parameters(), lr=1e-2, betas=(0.8, 0.99))
    train(reference, reference_optimizer, StepLR(reference_optimizer, step_size=3), data)

    nt.manual_seed(0)
    model = network()
    optimizer = Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.99))
    scheduler = StepLR(optimizer, step_size=3)
    loss = train(model, optimizer, scheduler, data[:3])
    nt.save({"epoch": 3, "model_state_dict": model.state_dict(),
             "optimizer_state_dict": optimizer.state_dict(),
             "scheduler_state_dict": scheduler.state_dict(), "loss": loss}, path)

    nt.manual_seed(1)  # a fresh process would start from other weights
    model = network()
    optimizer = Adam(model.parameters(), lr=0.5)
    scheduler = StepLR(optimizer, step_size=3)
    checkpoint = nt.load(path, weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    scheduler.load_state_dict(checkpoint["scheduler_state_dict"])
    epoch, loss = checkpoint["epoch"], checkpoint["loss"]
    assert epoch == 3 and isinstance(loss, nt.Tensor) and loss.shape == ()
    train(model, optimizer, scheduler, data[epoch:])

    for (name, resumed), expected in zip(model.state_dict().items(), reference.state_dict().values()):
        assert np.array_equal(resumed, expected), name
    assert_same(reference_optimizer.state_dict(), optimizer.state_dict())


def test_the_checkpoint_comes_back_as_it_was_saved(tmp_path) -> None:
    model = network()
    optimizer = Adam(model.parameters(), lr=1e-3)
    train(model, optimizer, StepLR(optimizer, step_size=1), batches(2))
    checkpoint = {"epoch": 2, "model_state_dict": model.state_dict(),
                  "optimizer_state_dict": optimizer.state_dict(), "loss": 0.25}
    nt.save(checkpoint, tmp_path / "c.safetensors")
    loaded = nt.load(tmp_path / "c.safetensors")
    assert_same(checkpoint, loaded)  # state_dicts hold NumPy arrays: they come back as NumPy arrays
    assert loaded["optimizer_state_dict"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert next(iter(loaded["optimizer_state_dict"]["state"])) == (0, 0)


def test_the_tensors_are_named_by_key_path_for_any_safetensors_reader(tmp_path) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model = nn.Linear(2, 3)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(nt.ones(1, 2)).sum().backward()
    optimizer.step()
    nt.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, tmp_path / "c.st")
    tensors = safetensors_numpy.load_file(str(tmp_path / "c.st"))
    assert sorted(tensors) == ["model/bias", "model/weight", "optimizer/state/0,0/momentum_buffer",
                               "optimizer/state/0,1/momentum_buffer"]
    assert np.array_equal(tensors["model/weight"], model.weight.array)


# ----- what a structure may hold ------------------------------------------------------------------
def test_nested_lists_tuples_and_dicts_round_trip(tmp_path) -> None:
    saved = {
        "scalars": [None, True, False, 0, -7, 2**70, 0.1, -0.0, math.inf, -math.inf, math.nan, "", "é/ü"],
        "nested": ([1, (2, [3, {"four": (4.0,)}])], [], (), {}),
        "int and tuple keys": {1: "one", -2: "minus two", (0, 1): "a position", ("a", 3): None},
        "arrays": [np.arange(6, dtype=np.int8).reshape(2, 3), np.zeros((0, 4), np.float16),
                   np.array(True), np.array([1 + 2j], np.complex64), np.float64(0.5), np.int64(3)],
        "tensors": [nt.tensor([1.0, 2.0]), nt.tensor([[1.0]], requires_grad=True),
                    nn.Parameter(np.ones(2, np.float32)), nt.tensor(np.arange(3))],
        "order": {"z": 1, "a": 2, 3: 3},
        "a key/with a slash": np.ones(1, np.float32),
        "a key": {"with a slash": np.zeros(1, np.float32)},
    }
    nt.save(saved, tmp_path / "s.safetensors")
    assert_same(saved, nt.load(tmp_path / "s.safetensors"))


def test_anything_storable_is_stored_at_the_top_too(tmp_path) -> None:
    for i, saved in enumerate([[np.ones(2)], (1, "two"), nt.tensor([3.0]), 0.25, None, "text"]):
        nt.save(saved, tmp_path / f"{i}.safetensors")
        assert_same(saved, nt.load(tmp_path / f"{i}.safetensors"))


def test_mappings_and_tuple_subclasses_come_back_as_dicts_and_tuples(tmp_path) -> None:
    point = collections.namedtuple("Point", "x y")
    saved = collections.OrderedDict([("b", point(1, 2)), ("a", collections.OrderedDict(c=3))])
    nt.save({"outer": saved}, tmp_path / "s.safetensors")
    loaded = nt.load(tmp_path / "s.safetensors")["outer"]
    assert type(loaded) is dict and list(loaded) == ["b", "a"]
    assert type(loaded["b"]) is tuple and loaded["b"] == (1, 2) and loaded["a"] == {"c": 3}


def test_python_values_load_as_torch_loads_them(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    saved = {"epoch": 3, "loss": 0.25, "history": [1.0, 0.5], "shape": (2, 3), "name": "run",
             "best": None, "done": False, 5: "an int key", "nested": {"lr": [0.1, (0.9, 0.999)]}}
    torch.save(saved, tmp_path / "torch.pt")
    nt.save(saved, tmp_path / "nurinet.safetensors")
    theirs = torch.load(tmp_path / "torch.pt", weights_only=True)
    ours = nt.load(tmp_path / "nurinet.safetensors", weights_only=True)
    assert_same(theirs, ours)


def test_map_location_moves_the_tensors_and_leaves_the_arrays(tmp_path) -> None:
    nt.save({"t": [nt.tensor([1.0])], "a": np.ones(2)}, tmp_path / "s.safetensors")
    loaded = nt.load(tmp_path / "s.safetensors", map_location="cpu")
    assert isinstance(loaded["t"][0], nt.Tensor) and loaded["t"][0].device == "cpu"
    assert isinstance(loaded["a"], np.ndarray)


def test_a_structure_is_not_loaded_into_a_model(tmp_path) -> None:
    nt.save({"model_state_dict": nn.Linear(2, 2).state_dict(), "epoch": 1}, tmp_path / "c.st")
    with pytest.raises(ValueError, match=r"load it without model=.*load_state_dict"):
        nt.load(tmp_path / "c.st", model=nn.Linear(2, 2))


# ----- what cannot be stored ----------------------------------------------------------------------
class Thing:
    pass


@pytest.mark.parametrize(("saved", "message"), [
    ({"a": {1, 2}}, r"obj\['a'\]: it is a set.*sorted list"),
    ({"callbacks": [lambda: 0]}, r"obj\['callbacks'\]\[0\]: it is a function '.*<lambda>'"),
    ({"x": (1, Thing())}, r"obj\['x'\]\[1\]: it is an instance of .*Thing"),
    ({"model": nn.Linear(2, 2)}, r"obj\['model'\]: it is an instance of nurinet.*Linear.*state_dict"),
    ({"a": {1.5: 0}}, r"obj\['a'\]: its key 1.5 is a float; dict keys must be str or int"),
    ({"a": {None: 0}}, r"obj\['a'\]: its key None is a NoneType"),
    ({"a": {True: 0}}, r"obj\['a'\]: its key True is a bool"),
    ({"a": {((0, 1), 2): 0}}, r"its key \(\(0, 1\), 2\) is a tuple"),
    ({"a": [b"bytes"]}, r"obj\['a'\]\[0\]: it is a bytes"),
    ({"a": 1 + 2j}, r"obj\['a'\]: it is a complex"),
    ({"z": np.zeros(2, np.complex128)}, r"obj\['z'\]: its dtype complex128"),
    ({"s": np.array(["text"])}, r"obj\['s'\]: its dtype <U4"),
    ({"o": np.array([None, 1], dtype=object)}, r"obj\['o'\]: its dtype object"),
], ids=["set", "lambda", "object", "module", "float key", "None key", "bool key", "nested tuple key",
        "bytes", "complex", "complex128", "strings", "objects"])
def test_what_cannot_be_stored_is_named_before_writing(tmp_path, saved, message) -> None:
    path = tmp_path / "c.safetensors"
    path.write_bytes(b"the previous file")
    with pytest.raises(TypeError, match=message):
        nt.save(saved, path)
    assert path.read_bytes() == b"the previous file"
    assert os.listdir(tmp_path) == ["c.safetensors"]


def test_a_structure_that_contains_itself_or_is_too_deep_is_refused(tmp_path) -> None:
    loop: dict = {"a": [1]}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match=r"obj\['a'\]\[1\]: it contains itself"):
        nt.save(loop, tmp_path / "c.st")
    deep: list = []
    for _ in range(MAX_NESTING + 1):
        deep = [deep]
    with pytest.raises(ValueError, match=f"nested more than {MAX_NESTING}"):
        nt.save(deep, tmp_path / "c.st")
    shared = [1]
    nt.save({"a": shared, "b": shared}, tmp_path / "c.st")  # the same list twice is no loop
    assert nt.load(tmp_path / "c.st") == {"a": [1], "b": [1]}


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch) -> None:
    import nurinet.io.safetensors as safetensors_module

    path = tmp_path / "c.safetensors"
    nt.save({"epoch": 1, "w": [np.ones(3)]}, path)
    before = path.read_bytes()
    real_open = safetensors_module.atomic_open

    class FailingFile:
        def __init__(self, file) -> None:
            self.file, self.writes = file, 0

        def write(self, chunk) -> int:
            self.writes += 1
            if self.writes > 1:
                raise OSError("disk full")
            return self.file.write(chunk)

    def failing_open(target):
        class Context:
            def __enter__(self):
                self.inner = real_open(target)
                return FailingFile(self.inner.__enter__())

            def __exit__(self, *error):
                return self.inner.__exit__(*error)
        return Context()

    monkeypatch.setattr(safetensors_module, "atomic_open", failing_open)
    with pytest.raises(OSError, match="disk full"):
        nt.save({"epoch": 2, "w": [np.zeros(3)]}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["c.safetensors"]


# ----- older files and damaged files --------------------------------------------------------------
_OLD_STATE_DICT_HEADER = (
    b'{"weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"bias":{"dtype":"F32",'
    b'"shape":[2],"data_offsets":[24,32]},"__metadata__":{"nurinet.format":"state_dict",'
    b'"nurinet.version":"1","nurinet.sha256":'
    b'"78db7a158067d2060bfa2ca52e276701dd8c9c75d49276b8c81bceba20266462"}}       ')


def test_a_state_dict_file_written_before_structures_still_loads(tmp_path) -> None:
    """The bytes nurinet.save wrote for a state_dict before nested structures were stored."""
    weight, bias = np.arange(6, dtype=np.float32).reshape(2, 3), np.array([0.5, -1.0], np.float32)
    old = struct.pack("<Q", len(_OLD_STATE_DICT_HEADER)) + _OLD_STATE_DICT_HEADER
    (tmp_path / "old.safetensors").write_bytes(old + weight.tobytes() + bias.tobytes())
    loaded = nt.load(tmp_path / "old.safetensors", weights_only=True)
    assert list(loaded) == ["weight", "bias"] and all(isinstance(v, nt.Tensor) for v in loaded.values())
    assert np.array_equal(loaded["weight"].array, weight) and np.array_equal(loaded["bias"].array, bias)
    nt.save({"weight": weight, "bias": bias}, tmp_path / "new.safetensors")  # still written the same way
    assert (tmp_path / "new.safetensors").read_bytes() == (tmp_path / "old.safetensors").read_bytes()


def test_plain_safetensors_files_and_module_files_still_load(tmp_path) -> None:
    save_file({"x": np.ones(2, np.float32)}, tmp_path / "plain.st", checksum=False)
    assert np.array_equal(nt.load(tmp_path / "plain.st")["x"].array, np.ones(2))
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    nt.save(model, tmp_path / "model.st")
    assert isinstance(nt.load(tmp_path / "model.st"), nn.Sequential)


def crafted(tmp_path, description, tensors=None) -> str:
    path = str(tmp_path / "crafted.safetensors")
    text = description if isinstance(description, str) else json.dumps(description)
    save_file(tensors or {}, path, {"nurinet.format": "structure", "nurinet.version": "1",
                                    "nurinet.structure": text})
    return path


@pytest.mark.parametrize(("description", "message"), [
    ({"tensor": "missing", "as": "ndarray"}, "does not hold"),
    ({"tensor": "x", "as": "module"}, "tensor entry .* is malformed"),
    ({"tensor": "x", "as": "ndarray", "code": "os.system"}, "malformed"),
    ({"tensor": "x", "as": "scalar"}, "NumPy scalar 'x' has shape"),
    ({"keys": ["a"], "values": []}, "same length"),
    ({"keys": [[1]], "values": [0]}, "dict key"),
    ({"keys": [{"tuple": [{"tuple": [1]}]}], "values": [0]}, "dict key"),
    ({"class": "os.system", "args": ["ls"]}, "not a value nurinet writes"),
    ({"float": "1e999"}, "not a value nurinet writes"),
    ("[" * 300 + "]" * 300, "nested"),
    ("{not json", "not valid JSON"),
])
def test_a_damaged_structure_is_refused(tmp_path, description, message) -> None:
    path = crafted(tmp_path, description, {"x": np.ones(2, np.float32)})
    with pytest.raises(CorruptFileError, match=message):
        nt.load(path)


def test_a_structure_file_without_its_description_is_refused(tmp_path) -> None:
    path = str(tmp_path / "c.st")
    save_file({}, path, {"nurinet.format": "structure"})
    with pytest.raises(CorruptFileError, match="no 'nurinet.structure' metadata"):
        nt.load(path)


def test_the_description_is_json_in_the_header(tmp_path) -> None:
    nt.save({"epoch": 3, "w": np.ones(1, np.float32)}, tmp_path / "c.st")
    metadata = read_header(tmp_path / "c.st")[0]["__metadata__"]
    assert metadata["nurinet.format"] == "structure"
    assert json.loads(metadata["nurinet.structure"]) == {
        "keys": ["epoch", "w"], "values": [3, {"tensor": "w", "as": "ndarray"}]}


def test_weight_loaders_refuse_a_structure_file_naming_the_fix(tmp_path):
    from nurinet.training import Model, load_model

    path = tmp_path / "ckpt.safetensors"
    nt.save({"epoch": 1, "model_state_dict": nn.Linear(3, 2).state_dict()}, path)
    with pytest.raises(ValueError, match=r"nurinet\.load\(path\)"):
        Model(nn.Sequential(nn.Linear(3, 2))).load_weights(path)
    with pytest.raises(ValueError, match="saved structure"):
        load_model(path)
