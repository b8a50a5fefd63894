"""Training checkpoints: exact resumption, every piece of state, damaged files."""

import json
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn, optim
from nurinet.io import (
    SafetensorsError,
    load_checkpoint,
    save,
    save_checkpoint,
)
from nurinet.training import CheckpointCallback, Model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RESUME_SCRIPT = """
import sys
import numpy as np
import nurinet as nt
from nurinet import nn
from nurinet.optim.lr_scheduler import StepLR
from nurinet.training import Model
from nurinet.training.callbacks import Callback
from nurinet.io import load_checkpoint, save_checkpoint

class StepScheduler(Callback):
    def __init__(self, scheduler):
        super().__init__()
        self.scheduler = scheduler

    def on_epoch_end(self, epoch, logs=None):
        self.scheduler.step()

def setup(seed):
    nt.manual_seed(seed)
    x, y = nt.data.load_digits(normalize=True)
    model = Model(nn.Sequential(nn.Linear(64, 24, activation="relu"), nn.Dropout(0.25), nn.Linear(24, 10)))
    model.compile("adam", "cross_entropy", lr=1e-2)
    scheduler = StepLR(model.optimizer, step_size=1, gamma=0.7)
    return model, scheduler, x[:256], y[:256]

mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "resume":
    model, scheduler, x, y = setup(seed=123)  # different initial weights: all must come from the file
    shuffle = nt.Generator(999)
    info = load_checkpoint(path, model, model.optimizer, scheduler=scheduler, generators={"shuffle": shuffle})
    start = info["epoch"]
else:
    model, scheduler, x, y = setup(seed=0)
    shuffle, start = nt.Generator(7), 0
stop = 2 if mode == "first_half" else 4
model.fit(x, y, batch_size=32, epochs=stop, initial_epoch=start, verbose=0, generator=shuffle,
          callbacks=[StepScheduler(scheduler)])
if mode == "first_half":
    save_checkpoint(path, model, model.optimizer, epoch=stop, scheduler=scheduler,
                    generators={"shuffle": shuffle}, extra={"note": "half way"})
np.savez(out, **model.state_dict())
"""


def run_script(tmp_path, *args):
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, str(script), *map(str, args)], check=True, env=env, timeout=300)


def test_resume_in_a_new_process_is_bit_identical(tmp_path):
    pytest.importorskip("nurinet.optim.lr_scheduler")
    ck = tmp_path / "ck.safetensors"
    run_script(tmp_path, "straight", ck, tmp_path / "straight.npz")
    run_script(tmp_path, "first_half", ck, tmp_path / "half.npz")
    run_script(tmp_path, "resume", ck, tmp_path / "resumed.npz")
    straight, half, resumed = (np.load(tmp_path / f"{n}.npz") for n in ("straight", "half", "resumed"))
    assert list(straight) == list(resumed)
    for key in straight:
        assert straight[key].dtype == np.float32
        np.testing.assert_array_equal(resumed[key], straight[key])
    assert not np.array_equal(half["network.0.weight"], straight["network.0.weight"])


def trained(seed=0):
    nt.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
    opt = optim.Adam(model.parameters(), lr=0.05, betas=(0.8, 0.95))
    x = nt.randn(8, 3)
    for _ in range(3):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
    return model, opt


def test_every_piece_of_state_round_trips(tmp_path):
    model, opt = trained()
    gen = nt.Generator(3)
    gen.np.random(5)
    nt.manual_seed(11)
    nt.rand(2)
    extra = {"history": [0.5, 0.25], "best": {"epoch": 2, "score": 0.9}, "mask": np.arange(4),
             "pair": (1, "a"), 7: "int key"}
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, model, opt, epoch=3, generators={"g": gen}, extra=extra)
    expected_default, expected_gen = nt.rand(4).array, gen.np.random(4)

    model2, opt2 = trained(seed=5)
    gen2 = nt.Generator(0)
    nt.manual_seed(0)
    info = load_checkpoint(path, model2, opt2, generators={"g": gen2})
    assert info["epoch"] == 3 and info["model"] is model2
    assert info["extra"]["history"] == [0.5, 0.25] and info["extra"]["best"] == {"epoch": 2, "score": 0.9}
    assert info["extra"]["pair"] == (1, "a") and info["extra"][7] == "int key"
    np.testing.assert_array_equal(info["extra"]["mask"], np.arange(4))
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        np.testing.assert_array_equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for position, values in s1["state"].items():
        for name, value in values.items():
            np.testing.assert_array_equal(s2["state"][position][name], value)
    np.testing.assert_array_equal(nt.rand(4).array, expected_default)
    np.testing.assert_array_equal(gen2.np.random(4), expected_gen)


def test_scheduler_state_and_rebuilt_model(tmp_path):
    lr_scheduler = pytest.importorskip("nurinet.optim.lr_scheduler")
    model, opt = trained()
    scheduler = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        scheduler.step()
    save_checkpoint(tmp_path / "ck.safetensors", model, opt, epoch=1, scheduler=scheduler)
    model2, opt2 = trained(seed=4)
    scheduler2 = lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    info = load_checkpoint(tmp_path / "ck.safetensors", None, opt2, scheduler=scheduler2)
    assert scheduler2.state_dict() == scheduler.state_dict()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == 0.025
    rebuilt = info["model"]
    assert isinstance(rebuilt, nn.Sequential) and rebuilt is not model2
    x = nt.randn(2, 3)
    np.testing.assert_array_equal(rebuilt(x).array, model(x).array)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    model, opt = trained()
    save_checkpoint(tmp_path / "ck.safetensors", model, opt, epoch=1)

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    load_checkpoint(tmp_path / "ck.safetensors", *trained(seed=1))


@pytest.fixture
def checkpoint(tmp_path):
    model, opt = trained()
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, model, opt, epoch=4)
    return path


def test_damaged_checkpoints_are_rejected_naming_the_file(checkpoint):
    raw = checkpoint.read_bytes()
    flipped = bytearray(raw)
    flipped[len(raw) - 3] ^= 0x40
    checkpoint.write_bytes(bytes(flipped))
    with pytest.raises(SafetensorsError, match=r"ck\.safetensors.*SHA-256"):
        load_checkpoint(checkpoint, *trained())
    checkpoint.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(SafetensorsError, match=r"ck\.safetensors.*(truncated|header claims)"):
        load_checkpoint(checkpoint, *trained())
    (n,) = struct.unpack("<Q", raw[:8])
    header = raw[8:8 + n].replace(rb'\"epoch\":4', rb'\"epoch\":9')
    assert header != raw[8:8 + n]
    checkpoint.write_bytes(raw[:8] + header + raw[8 + n:])
    with pytest.raises(SafetensorsError, match=r"ck\.safetensors.*SHA-256"):
        load_checkpoint(checkpoint, *trained())


def test_checkpoint_errors(tmp_path, checkpoint):
    model, opt = trained()
    with pytest.raises(ValueError, match="no generator named 'shuffle'"):
        load_checkpoint(checkpoint, model, opt, generators={"shuffle": nt.Generator(0)})
    save_checkpoint(tmp_path / "weights_only.safetensors", model, epoch=0)
    with pytest.raises(ValueError, match="holds no optimizer state"):
        load_checkpoint(tmp_path / "weights_only.safetensors", model, opt)
    save(model, tmp_path / "model.safetensors")
    with pytest.raises(SafetensorsError, match="not a nurinet checkpoint.*nurinet.load"):
        load_checkpoint(tmp_path / "model.safetensors", model)
    with pytest.raises(TypeError, match="cannot store extra.bad"):
        save_checkpoint(tmp_path / "x.safetensors", model, extra={"bad": object()})
    with pytest.raises(ValueError, match="do not fit the model"):
        load_checkpoint(checkpoint, nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2)))
    with pytest.raises(ValueError, match="every must be a positive integer"):
        CheckpointCallback(tmp_path / "c.safetensors", every=0)


def test_checkpoint_callback_during_fit(tmp_path):
    nt.manual_seed(0)
    x, y = nt.data.make_blobs(64, centers=3, generator=nt.Generator(0))
    model = Model(nn.Sequential(nn.Linear(2, 8, activation="relu"), nn.Linear(8, 3)))
    model.compile("sgd", "cross_entropy", lr=0.1, momentum=0.9)
    shuffle = nt.Generator(1)
    callback = CheckpointCallback(tmp_path / "ep{epoch}.safetensors", every=2,
                                  generators={"shuffle": shuffle}, extra={"run": "blobs"})
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, generator=shuffle, callbacks=[callback])
    assert [os.path.basename(p) for p in callback.saved] == ["ep2.safetensors", "ep3.safetensors"]
    info = load_checkpoint(tmp_path / "ep3.safetensors", None, generators={"shuffle": nt.Generator(0)})
    assert info["epoch"] == 3 and info["extra"]["run"] == "blobs"
    assert set(info["extra"]["logs"]) == {"loss"}
    record = json.loads(_metadata(tmp_path / "ep3.safetensors")["nurinet.checkpoint"])
    assert record["optimizer"]["param_groups"][0]["momentum"] == 0.9


def _metadata(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n])["__metadata__"]


def test_generators_held_by_layers_are_restored(tmp_path):
    def make():
        nt.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.5, generator=nt.Generator(42)))

    model = make()
    x = nt.ones(3, 4)
    model(x)  # move the dropout generator along
    save_checkpoint(tmp_path / "ck.safetensors", model, epoch=1)
    expected = model(x).array
    restored = make()
    load_checkpoint(tmp_path / "ck.safetensors", restored)
    np.testing.assert_array_equal(restored(x).array, expected)
