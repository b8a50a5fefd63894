"""Fault injection on saving, loading and configurations: nothing silent, nothing lost, nothing
written where it should not be.

Each test plays a fault or a hostile input: a diverging run, a process killed mid-save, a crafted
model file, a configuration that names a path or a setting of the wrong type. See issue #20.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet.cli import main as cli
from nurinet.io import (
    CorruptFileError,
    load,
    load_checkpoint,
    load_file,
    save,
    save_checkpoint,
)
from nurinet.io import atomic as atomic_module
from nurinet.io.atomic import (
    atomic_open,
    atomic_write_bytes,
    remove_stale_temporary_files,
)
from nurinet.io.checkpoint import all_finite, first_non_finite
from nurinet.training import (
    Callback,
    CheckpointCallback,
    Model,
    ModelCheckpoint,
    TerminateOnNaN,
)
from nurinet.training import config as cfg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}


# ----- a diverging run never destroys its last good checkpoint ------------------------------------
# NumPy's own overflow warnings are what a diverging run prints; they are not under test here.
NUMPY_OVERFLOW = pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered:RuntimeWarning")
def regression(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)).astype(np.float32)


def small_model(optimizer: str = "sgd") -> Model:
    nt.manual_seed(0)
    m = Model(nn.Sequential(nn.Linear(4, 8, activation="relu"), nn.Linear(8, 1)))
    m.compile(optimizer=optimizer, loss="mse", lr=0.01)
    return m


class Diverge(Callback):
    """From epoch ``at`` on, the learning rate is absurd: the weights reach inf, then NaN."""

    def __init__(self, at: int = 2) -> None:
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == self.at:
            for group in self.model.optimizer.param_groups:
                group["lr"] = 1e30


def fit_diverging(m: Model, callbacks: list, epochs: int = 5) -> None:
    m.fit(*regression(), batch_size=16, epochs=epochs, verbose=0, shuffle=False,
          callbacks=[Diverge(), *callbacks])


def finite_weights(state: dict) -> bool:
    return all(np.isfinite(v).all() for v in state.values())


@NUMPY_OVERFLOW
@pytest.mark.parametrize("kind", ["ModelCheckpoint", "ModelCheckpoint-weights", "CheckpointCallback"])
def test_diverging_run_keeps_its_last_good_checkpoint(tmp_path, kind):
    path = tmp_path / "last.safetensors"
    callback = {"ModelCheckpoint": lambda: ModelCheckpoint(path),
                "ModelCheckpoint-weights": lambda: ModelCheckpoint(path, save_weights_only=True),
                "CheckpointCallback": lambda: CheckpointCallback(path)}[kind]()
    guard = TerminateOnNaN()
    m = small_model()
    with pytest.warns(RuntimeWarning, match=r"not writing .*last\.safetensors.*parameter '(network\.)?0\.weight'"):
        fit_diverging(m, [guard, callback])
    assert guard.stopped is not None and guard.stopped[0] == 2
    assert callback.saved == [str(path)] * 2 and callback.skipped == [str(path)]
    assert not finite_weights(m.state_dict())  # the run did diverge
    if kind == "ModelCheckpoint-weights":
        weights, _ = load_file(path)
        assert finite_weights(weights)
        return
    info = load_checkpoint(path)  # the epoch-2 checkpoint, intact and loadable
    assert info["epoch"] == 2 and finite_weights(info["model"].state_dict())


@NUMPY_OVERFLOW
def test_save_non_finite_writes_anyway(tmp_path):
    path = tmp_path / "nan.safetensors"
    m = small_model()
    fit_diverging(m, [TerminateOnNaN(), ModelCheckpoint(path, save_non_finite=True)])
    assert not finite_weights(load_checkpoint(path)["model"].state_dict())


@NUMPY_OVERFLOW
def test_terminate_on_nan_restores_the_last_finite_weights(tmp_path):
    seen = []

    class Record(Callback):  # the weights each batch's loss was computed with
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(self.model.state_dict())

    guard = TerminateOnNaN(restore_last_finite=True)
    path = tmp_path / "w.safetensors"
    m = small_model()  # plain SGD: no optimizer state to go NaN
    checkpoints = CheckpointCallback(path)
    m.fit(*regression(), batch_size=16, epochs=5, verbose=0, shuffle=False,
          callbacks=[Record(), Diverge(), guard, checkpoints])
    assert guard.restored and guard.stopped == (2, 1)
    restored = m.state_dict()
    assert finite_weights(restored)
    # The weights of the last batch before the one that failed, exactly.
    for key, value in seen[-2].items():
        np.testing.assert_array_equal(restored[key], value)
    # The stopping epoch's checkpoint holds those finite weights.
    info = load_checkpoint(path)
    assert info["epoch"] == 3 and checkpoints.skipped == []
    for key, value in info["model"].state_dict().items():
        np.testing.assert_array_equal(value, restored[key])


@NUMPY_OVERFLOW
def test_terminate_on_nan_without_the_option_keeps_nothing():
    guard = TerminateOnNaN()
    m = small_model()
    fit_diverging(m, [guard])
    assert not guard.restored and guard._finite is None and guard._candidate is None


def test_first_non_finite_names_the_parameter_or_optimizer_state():
    m = small_model("adam")
    m.fit(*regression(16), epochs=1, verbose=0)
    assert first_non_finite(m.network, m.optimizer) is None
    state = next(iter(m.optimizer.state.values()))
    state["exp_avg"][...] = np.nan
    assert first_non_finite(m.network, m.optimizer) == "optimizer state 'exp_avg' of parameter '0.weight'"
    m.network[1].bias.array[0] = np.inf
    assert first_non_finite(m.network, m.optimizer) == "parameter '1.bias'"


def test_all_finite_is_exact_when_the_sum_overflows():
    big = np.full(4, 3e38, np.float32)  # each finite, their sum inf
    assert all_finite(big) and all_finite(np.arange(3)) and not all_finite(np.array([1.0, np.nan]))


def test_refused_best_checkpoint_does_not_raise_the_bar(tmp_path):
    path = tmp_path / "best.safetensors"
    ckpt = ModelCheckpoint(path, monitor="loss", save_best_only=True)
    m = small_model()
    ckpt.set_model(m)
    ckpt.on_train_begin()
    ckpt.on_epoch_end(0, {"loss": 2.0})
    m.network[0].weight.array[0, 0] = np.nan
    with pytest.warns(RuntimeWarning):
        ckpt.on_epoch_end(1, {"loss": 1.0})
    assert ckpt.best == 2.0 and ckpt.saved == [str(path)]
    m.network[0].weight.array[0, 0] = 0.0
    ckpt.on_epoch_end(2, {"loss": 1.5})
    assert ckpt.best == 1.5 and len(ckpt.saved) == 2


# ----- temporary files of crashed saves are removed by the next save ------------------------------
def temporaries(directory) -> list[str]:
    return sorted(name for name in os.listdir(directory) if ".nurinet-tmp-" in name)


KILLED_MID_SAVE = textwrap.dedent("""
    import os, signal, sys
    from nurinet.io.atomic import atomic_open
    with atomic_open(sys.argv[1]) as f:
        f.write(b"partial" * 1000)
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and process ids are POSIX")
def test_kill_9_mid_save_leaves_the_old_file_and_the_next_save_cleans_up(tmp_path):
    target = tmp_path / "model.safetensors"
    atomic_write_bytes(target, b"good")
    done = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE, str(target)], env=ENV, timeout=120,
                          check=False)
    assert done.returncode == -signal.SIGKILL
    assert target.read_bytes() == b"good"
    [orphan] = temporaries(tmp_path)
    assert orphan.startswith(".model.safetensors.nurinet-tmp-")
    atomic_write_bytes(tmp_path / "other.bin", b"x")  # any save in the same directory
    assert temporaries(tmp_path) == []
    assert target.read_bytes() == b"good"


LIVE_WRITER = textwrap.dedent("""
    import sys
    from nurinet.io.atomic import atomic_open
    with atomic_open(sys.argv[1]) as f:
        f.write(b"new")
        print("writing", flush=True)
        sys.stdin.readline()
""")


@pytest.mark.skipif(os.name != "posix", reason="process ids are POSIX")
def test_a_live_process_temporary_file_is_never_removed(tmp_path):
    target = tmp_path / "shared.bin"
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(target)], env=ENV, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert writer.stdout.readline().strip() == "writing"
        [theirs] = temporaries(tmp_path)
        os.utime(tmp_path / theirs, (0, 0))  # however old it looks
        atomic_write_bytes(tmp_path / "mine.bin", b"x")
        assert temporaries(tmp_path) == [theirs]
        writer.stdin.write("go\n")
        writer.stdin.flush()
        assert writer.wait(timeout=120) == 0
    finally:
        writer.kill()
    assert target.read_bytes() == b"new" and temporaries(tmp_path) == []


def test_exception_between_write_and_rename_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "m.bin"
    atomic_write_bytes(target, b"old")

    def crash(*args, **kwargs):
        raise OSError("crash before the rename (simulated)")

    monkeypatch.setattr(atomic_module.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and temporaries(tmp_path) == []


def fake_temporary(directory, host: str, pid: int, age: float = 0.0) -> str:
    name = f".x.safetensors.nurinet-tmp-{host}-{pid}-abc123"
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(b"partial")
    if age:
        os.utime(path, (time.time() - age, time.time() - age))
    return name


def test_which_temporary_files_are_stale(tmp_path):
    here, me = atomic_module._HOST, os.getpid()
    other = "0123abcd" if here != "0123abcd" else "fedc4321"
    own_leftover = fake_temporary(tmp_path, here, me)  # same pid, but no save of ours in flight
    fresh_foreign = fake_temporary(tmp_path, other, 12345)
    old_foreign = fake_temporary(tmp_path, other, 12346, age=2 * atomic_module.STALE_AFTER_SECONDS)
    (tmp_path / ".x.tmp").write_bytes(b"")  # other names are never touched
    (tmp_path / "report.nurinet-tmp-notes").write_bytes(b"")
    removed = remove_stale_temporary_files(tmp_path)
    assert sorted(os.path.basename(p) for p in removed) == sorted([own_leftover, old_foreign])
    assert sorted(os.listdir(tmp_path)) == sorted([fresh_foreign, ".x.tmp", "report.nurinet-tmp-notes"])


def test_saves_in_flight_in_this_process_are_kept(tmp_path):
    results = {}

    with atomic_open(tmp_path / "a.bin") as f:
        f.write(b"a")
        mine = temporaries(tmp_path)
        worker = threading.Thread(target=lambda: results.update(
            removed=remove_stale_temporary_files(tmp_path)))
        worker.start()
        worker.join()
        atomic_write_bytes(tmp_path / "b.bin", b"b")  # a nested save in the same directory
        assert temporaries(tmp_path) == mine
    assert results["removed"] == [] and (tmp_path / "a.bin").read_bytes() == b"a"


# ----- hostile model files -----------------------------------------------------------------------
def write_file(path, header, data: bytes = b"") -> str:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
    return str(path)


def model_header(architecture) -> dict:
    text = architecture if isinstance(architecture, str) else json.dumps(architecture)
    return {"__metadata__": {"nurinet.format": "model", "nurinet.architecture": text}}


def layer(cls: str, **config) -> dict:
    return {"class": cls, "config": config}


BIG_LINEAR = layer("Linear", in_features=16384, out_features=16384)
NESTED = ('{"class":"Sequential","config":{"layers":{"__dict__":{"0":{"__layer__":' * 1000
          + '{"class":"ReLU"}' + "}}}}}" * 1000)
HOSTILE_HEADERS = {
    "a 256-byte file declaring Linear(16384, 16384)": (model_header(BIG_LINEAR), "268,435,456"),
    "the same inside a Sequential": (model_header(layer("Sequential", layers={"__dict__": {
        "0": {"__layer__": BIG_LINEAR}}})), "layer '0'"),
    "a shape whose product overflows int64": (
        {"w": {"dtype": "F32", "shape": [2**62, 2**62, 16], "data_offsets": [0, 0]}}, "do not fit"),
    "a float shape": ({"w": {"dtype": "F32", "shape": [2.0, 2], "data_offsets": [0, 16]}}, "shape"),
    "a negative dimension": ({"w": {"dtype": "F32", "shape": [-2, -2], "data_offsets": [0, 16]}}, "shape"),
    "a bool dimension": ({"w": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, "shape"),
    "offsets out of range": ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [1000, 1016]}}, "starts at"),
    "offsets reversed": ({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, "do not fit"),
    "an unknown dtype": ({"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, "dtype"),
    "a dtype that is a list": ({"w": {"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}}, "dtype"),
    "an entry with extra fields": ({"w": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0],
                                          "x": [[[[1]]]]}}, "unknown fields"),
    "metadata that is not a map": ({"__metadata__": [1, 2]}, "__metadata__"),
    "architecture that is not JSON": (model_header("{not json"), "not valid JSON"),
    "architecture nested 5,000 deep": (model_header("[" * 5000 + "]" * 5000), "nested too deep"),
    "1,000 nested Sequentials": (model_header(NESTED), "nested too deep"),
    "architecture nested 300 deep (under the parser's limit)": (
        model_header("[" * 300 + "]" * 300), "nested more than 200"),
    "a header nested 5,000 deep": (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested too deep"),
    "an integer of 5,000 digits": (b'{"w": {"dtype": "F32", "shape": [' + b"9" * 5000
                                   + b'], "data_offsets": [0, 0]}}', "not valid JSON"),
    "a header that is a list": (b"[1, 2, 3]", "not a JSON object"),
    "a header that is not UTF-8": (b'{"\xff": 1}', "not valid JSON"),
    "a layer that is not a mapping": (model_header([1, 2]), "is not a layer"),
    "an unknown tagged value": (model_header(layer("Linear", in_features={"__weird__": 1},
                                                   out_features=1)), "tagged value"),
    "a sub-array dtype of 40 GB": (model_header(layer("Linear", in_features=1, out_features=1, dtype={
        "__dtype__": "(100000,100000)f4"})), "dtype"),
    "a huge BatchNorm": (model_header(layer("BatchNorm1d", num_features=10**9)), "1,000,000,000"),
    "a huge unsaved positional table": (model_header(layer("SinusoidalPositionalEncoding", d_model=4096,
                                                           max_len=10**6)), "not saved"),
    "ten million copies of an encoder layer": (model_header(layer(
        "TransformerEncoder", encoder_layer={"__layer__": layer("TransformerEncoderLayer", d_model=4, nhead=1,
                                                                dim_feedforward=4)},
        num_layers=10**7)), "declares at least"),
    "a reference model with a billion classes": (model_header(layer("LeNet5", num_classes=10**9)),
                                                 "num_classes"),
    "a reference model that draws too much": (model_header(layer("LeNet5", num_classes=60000)),
                                              "drew more initial values"),
    "sizes given as floats": (model_header(layer("Autoencoder", sizes=[30000.0, 30000.0])),
                              "drew more initial values"),
    "arguments no constructor takes": (model_header(layer("Linear", in_features=-5, out_features=2)),
                                       "cannot be built"),
}

# The file kinds nurinet.load reads besides models: a checkpoint (its model), a user's own class.
CHECKPOINT_RECORD = {"version": "1", "epoch": 1, "training": True, "optimizer": None, "scheduler": None,
                     "default_generator": None, "generators": {}, "extra": {}}
HOSTILE_HEADERS.update({
    "a checkpoint declaring Linear(16384, 16384)": ({"__metadata__": {
        "nurinet.format": "checkpoint",
        "nurinet.checkpoint": json.dumps({**CHECKPOINT_RECORD, "architecture": BIG_LINEAR})}}, "268,435,456"),
    "a user class nobody allowed": (model_header({"class": "Net", "module": "mypackage.nets", "config": {}}),
                                    "classes=[Net]"),
    "a user class name that is not a name": (model_header({"class": "Net()", "module": "mypackage",
                                                           "config": {}}), "not a class name"),
})


@pytest.mark.parametrize("name", list(HOSTILE_HEADERS))
def test_hostile_header_is_refused_quickly_with_one_error_type(tmp_path, name):
    header, message = HOSTILE_HEADERS[name]
    path = write_file(tmp_path / "hostile.safetensors", header)
    start = time.perf_counter()
    with pytest.raises(CorruptFileError) as caught:
        load(path)
    elapsed = time.perf_counter() - start
    assert "hostile.safetensors" in str(caught.value) and message in str(caught.value)
    assert elapsed < 1.0, f"{name}: refused after {elapsed:.2f} s"


HOSTILE_IN_A_FRESH_PROCESS = textwrap.dedent("""
    import json, resource, struct, sys
    import nurinet
    from nurinet.io import CorruptFileError, load
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for path in sys.argv[1:]:
        try:
            load(path)
        except CorruptFileError:
            pass
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
""")


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB is Linux's")
def test_hostile_headers_allocate_nothing_they_declare(tmp_path):
    paths = [write_file(tmp_path / f"{i}.safetensors", HOSTILE_HEADERS[name][0])
             for i, name in enumerate(HOSTILE_HEADERS)]
    done = subprocess.run([sys.executable, "-c", HOSTILE_IN_A_FRESH_PROCESS, *paths], env=ENV,
                          capture_output=True, text=True, timeout=120, check=True)
    grown_mib = int(done.stdout.strip())
    assert grown_mib < 100, f"loading the hostile files grew the peak memory by {grown_mib} MiB"


def test_the_draw_guard_is_gone_after_loads_in_many_threads(tmp_path):
    from nurinet.random import default_generator

    hostile = write_file(tmp_path / "hostile.safetensors", HOSTILE_HEADERS["a reference model that draws too "
                                                                          "much"][0])
    good = tmp_path / "good.safetensors"
    save(nn.Sequential(nn.Linear(30, 20), nn.Linear(20, 3)), good)
    real, state = default_generator.np, default_generator.get_state()
    outcomes = []

    def attempt(path):
        try:
            outcomes.append(type(load(path)).__name__)
        except CorruptFileError:
            outcomes.append("refused")

    workers = [threading.Thread(target=attempt, args=(p,)) for p in [hostile, good] * 4]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(outcomes) == ["Sequential"] * 4 + ["refused"] * 4
    assert default_generator.np is real and default_generator.get_state() == state


def test_a_checksum_failure_is_a_corrupt_file(tmp_path):
    path = tmp_path / "m.safetensors"
    save(nn.Linear(3, 2), path)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="SHA-256"):
        load(path)


def test_declared_sizes_are_checked_against_the_tensors_before_building(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["__metadata__"]["nurinet.architecture"] = header["__metadata__"]["nurinet.architecture"] \
        .replace('"out_features":2', '"out_features":200000')
    del header["__metadata__"]["nurinet.sha256"]  # a crafted file simply leaves the checksum out
    write_file(path, json.dumps(header).encode(), raw[8 + n:])
    built = []
    monkeypatch.setattr("nurinet.io.registry.module_from_config", lambda *a: built.append(a))
    with pytest.raises(CorruptFileError, match=r"layer '2' \(Linear\) declares at least 800,000"):
        load(path)
    assert built == []  # nothing was built


def checkpoint_with(tmp_path, edit) -> str:
    path = tmp_path / "ck.safetensors"
    m = small_model("adam")
    m.fit(*regression(16), epochs=1, verbose=0)
    save_checkpoint(path, m.network, m.optimizer, epoch=1)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    del header["__metadata__"]["nurinet.sha256"]
    record = json.loads(header["__metadata__"]["nurinet.checkpoint"])
    edited = edit(record)
    header["__metadata__"]["nurinet.checkpoint"] = edited if isinstance(edited, str) else json.dumps(edited)
    return write_file(path, json.dumps(header).encode(), raw[8 + n:])


def _edit(**changes):
    return lambda record: {**record, **changes}


@pytest.mark.parametrize(("edit", "message"), [
    (lambda record: "{not json", "not valid JSON"),
    (lambda record: [record], "not a mapping"),
    (lambda record: {k: v for k, v in record.items() if k != "generators"}, "missing"),
    (_edit(extra={"x": {"__tensor__": "nowhere"}}), "'nowhere'"),
    (_edit(default_generator={"state": 5}), "default generator"),
    (_edit(architecture=layer("Sequential", layers={"__dict__": {"0": {"__layer__": BIG_LINEAR}}})),
     "268,435,456"),
    (lambda record: json.dumps(record)[:-1] + ', "deep": ' + "[" * 3000 + "]" * 3000 + "}", "nested"),
], ids=["not-json", "not-a-mapping", "missing-key", "missing-tensor", "bad-generator", "huge-layer",
        "deep"])
def test_hostile_checkpoint_record_is_a_corrupt_file(tmp_path, edit, message):
    path = checkpoint_with(tmp_path, edit)
    with pytest.raises(CorruptFileError, match=message) as caught:
        load_checkpoint(path)
    assert "ck.safetensors" in str(caught.value)


def test_every_builtin_layer_nurinet_saves_still_loads(tmp_path):
    """No false alarm: the dry count is a lower bound and the draw budget has room."""
    from tests.test_io import _buildable_layers

    loaded = 0
    for param in _buildable_layers():
        cls, args = param.values
        path = tmp_path / f"{cls.__name__}.safetensors"
        try:
            save(cls(**args), path)
        except (TypeError, ValueError):
            continue  # layers that cannot be described are test_io's business
        assert type(load(path)) is cls
        loaded += 1
    assert loaded > 60


def test_layers_inside_other_layers_arguments_still_load(tmp_path):
    from nurinet.models import GAN, DCGANDiscriminator, DCGANGenerator, SiameseNetwork

    embedding = nn.Sequential(nn.Linear(6, 8, activation="prelu"), nn.ModuleList([nn.Linear(8, 4)]))
    models = [SiameseNetwork(embedding), nn.Sequential(SiameseNetwork(embedding), nn.ReLU()),
              Model(nn.ModuleDict({"a": nn.Linear(3, 3), "b": nn.Sequential(nn.LayerNorm(3))})),
              GAN(DCGANGenerator(latent_dim=4, width=8), DCGANDiscriminator(width=8))]
    for i, model in enumerate(models):
        save(model, tmp_path / f"{i}.safetensors")
        loaded = load(tmp_path / f"{i}.safetensors")
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(loaded.state_dict()[key], value)


# ----- untrusted configurations ------------------------------------------------------------------
def iris_config(**changes) -> dict:
    config = {"name": "iris_run", "seed": 0,
              "data": {"dataset": "iris", "val_fraction": 0.2, "test_fraction": 0.2, "stratify": True},
              "model": {"input_size": 4, "layers": [{"type": "Dense", "units": 8, "activation": "relu"},
                                                    {"type": "Output", "units": 3, "loss": "cross_entropy"}]},
              "updater": {"name": "adam", "lr": 0.01},
              "training": {"epochs": 1, "batch_size": 16, "metrics": ["accuracy"], "verbose": 0}}
    config.update(changes)
    return config


@pytest.mark.parametrize("name", ["/tmp/evil", "../evil", "../../etc", "a/b", "a\\b", ".hidden", "..", ".",
                                  "", "x" * 101, "new\nline", "C:evil", 5, ["a"]])
def test_hostile_run_names_are_refused(name):
    with pytest.raises(ValueError, match=r"name = .*a run name is"):
        cfg.check_run_name(name)
    with pytest.raises(ValueError, match="name = "):
        cfg.build(iris_config(name=name))


@pytest.mark.parametrize("name", ["digits_mlp", "run-1.2", "A", "x" * 100, "_private"])
def test_plain_run_names_are_accepted(name):
    assert cfg.check_run_name(name) == name


def test_run_names_from_file_names_are_made_plain():
    assert cfg.run_name({}, "/some/dir/my config!.json") == "my_config_"
    assert cfg.run_name({}, "..json") == "json" and cfg.run_name({}, "...") == "run"
    assert cfg.run_name({"name": "given"}, "x.json") == "given"


@pytest.mark.parametrize(("changes", "setting"), [
    ({"training": {"epochs": "3"}}, "training.epochs = '3' (str)"),
    ({"training": {"batch_size": "32"}}, "training.batch_size = '32' (str)"),
    ({"training": {"batch_size": 0}}, "training.batch_size = 0"),
    ({"training": {"shuffle": "yes"}}, "training.shuffle"),
    ({"training": {"verbose": "loud"}}, "training.verbose"),
    ({"training": {"metrics": "accuracy"}}, "training.metrics"),
    ({"training": {"metrics": ["nope"]}}, "training.metrics: unknown metric 'nope'"),
    ({"training": [1, 2]}, "training = [1, 2] (list)"),
    ({"callbacks": {"type": "EarlyStopping"}}, "callbacks = {'type': 'EarlyStopping'} (dict): must be a list"),
    ({"seed": "0"}, "seed = '0' (str)"),
    ({"updater": "adam"}, "updater = 'adam' (str)"),
    ({"updater": {"name": "adam", "lr": "0.01"}}, "updater (adam): Adam: lr must be a number"),
    ({"data": {"dataset": "iris", "val_fraction": 2}}, "data.val_fraction = 2"),
    ({"data": {"dataset": 5}}, "data.dataset = 5"),
])
def test_configuration_type_errors_name_the_setting(changes, setting):
    with pytest.raises(ValueError, match=re.escape(setting)):
        cfg.build(iris_config(**changes))


def test_configuration_texts_too_deep_or_too_large_are_refused():
    with pytest.raises(ValueError, match="nested"):
        cfg.load_config("{" + '"a":{' * 150 + "}" * 151)
    with pytest.raises(ValueError, match="nested too deep|nested more"):
        cfg.load_config('{"a": ' + "[" * 5000 + "]" * 5000 + "}")
    yaml = pytest.importorskip("yaml")
    assert yaml
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8))
    with pytest.raises(ValueError, match="YAML aliases"):
        cfg.load_config(laughs)


def test_missing_configuration_file_is_a_file_not_found():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cfg.load_config("no/such/config.yaml")


def run_cli(tmp_path, monkeypatch, config, *extra) -> int:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "conf.json"
    path.write_text(json.dumps(config) if isinstance(config, dict) else config)
    return cli(["train", str(path), "--quiet", *extra])


def files_outside(tmp_path) -> list[str]:
    parent = os.path.dirname(tmp_path)
    return sorted(set(os.listdir(parent)) - {os.path.basename(tmp_path)})


@pytest.mark.parametrize("name", ["../escape", "/tmp/nurinet-escape-test", "a/../../b"])
def test_cli_refuses_a_name_that_leaves_runs(tmp_path, monkeypatch, capsys, name):
    before = files_outside(tmp_path)
    assert run_cli(tmp_path, monkeypatch, iris_config(name=name)) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "name = " in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 2  # the message, and how to see the traceback
    assert files_outside(tmp_path) == before and not os.path.exists("/tmp/nurinet-escape-test")
    assert not (tmp_path / "runs").exists()


def test_cli_prints_configuration_errors_as_one_message(tmp_path, monkeypatch, capsys):
    assert run_cli(tmp_path, monkeypatch, iris_config(training={"epochs": "3"})) == 2
    err = capsys.readouterr().err
    assert "training.epochs = '3' (str): must be a whole number" in err and "Traceback" not in err
    assert run_cli(tmp_path, monkeypatch, "{broken json") == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert cli(["train", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run_cli(tmp_path, monkeypatch, iris_config(), "--resume", str(tmp_path / "none.safetensors")) == 2
    with pytest.raises(ValueError, match="training.epochs"):  # --debug: the exception itself
        run_cli(tmp_path, monkeypatch, iris_config(training={"epochs": "3"}), "--debug")


def test_cli_keeps_callback_files_inside_the_output_directory(tmp_path, monkeypatch, capsys):
    escape = iris_config(callbacks=[{"type": "CSVLogger", "filename": "../../log.csv"}])
    assert run_cli(tmp_path, monkeypatch, escape) == 2
    assert "callbacks[0].filename = '../../log.csv'" in capsys.readouterr().err
    absolute = iris_config(callbacks=[{"type": "ModelCheckpoint", "filepath": str(tmp_path / "m.st")}])
    assert run_cli(tmp_path, monkeypatch, absolute) == 2
    inside = iris_config(callbacks=[{"type": "CSVLogger", "filename": "log.csv"}])
    assert run_cli(tmp_path, monkeypatch, inside) == 0
    run_dir = tmp_path / "runs" / "iris_run"
    assert sorted(os.listdir(run_dir)) == ["checkpoint.safetensors", "log.csv", "model.safetensors"]
    assert not (tmp_path / "log.csv").exists()
    assert math.isfinite(load_checkpoint(run_dir / "checkpoint.safetensors")["extra"]["logs"]["loss"])
