"""``Model.save`` / ``load_model`` keep compile's training options: ``gradient_accumulation_steps``,
``use_ema`` / ``ema_momentum`` and a learning-rate schedule (by name, given back with
``custom_objects`` as in Keras), and training continues after loading as if uninterrupted."""

import json

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet.io import CorruptFileError
from nurinet.training import Model, load_model
from nurinet.training.saving import COMPILE_KEY, compile_record

RNG = np.random.default_rng(5)
X = RNG.normal(size=(30, 4))
Y = RNG.integers(0, 3, 30)


def warmup(step: int) -> float:
    """A learning-rate schedule of the user's: a linear warm-up, then constant."""
    return 0.05 * min(1.0, (step + 1) / 4)


class Halving:
    """A callable schedule object of the user's."""

    def __call__(self, step: int) -> float:
        return 0.1 * 0.5 ** (step // 3)


def mlp(seed: int = 0, **compile_kwargs: object) -> Model:
    nt.manual_seed(seed)
    model = Model(nn.Sequential(nn.Linear(4, 8, activation="tanh"), nn.Linear(8, 3)))
    model.double()
    compile_kwargs.setdefault("lr", 0.01)
    model.compile("adam", "cross_entropy", **compile_kwargs)
    return model


def weights_of(model: Model) -> list[np.ndarray]:
    return [p.array.copy() for p in model.parameters()]


def assert_same_weights(a: Model, b: Model, tol: float) -> None:
    for wa, wb in zip(weights_of(a), weights_of(b), strict=True):
        assert wa.dtype == wb.dtype == np.float64
        np.testing.assert_allclose(wa, wb, rtol=0, atol=tol)


def fit_one_epoch(model: Model) -> None:
    model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)


def test_the_options_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = mlp(gradient_accumulation_steps=3, use_ema=True, ema_momentum=0.9, lr=warmup)
    fit_one_epoch(model)
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors", custom_objects={"warmup": warmup})
    assert loaded.optimizer_steps.accumulation_steps == 3
    assert loaded.ema_momentum == 0.9
    assert loaded.optimizer_steps.schedule is warmup
    assert loaded.optimizer_steps.iterations == model.optimizer_steps.iterations == 3  # 8 batches: 3 steps


def test_the_defaults_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = mlp()
    model.save(tmp_path / "m.safetensors")
    record = compile_record(model)
    assert record is not None
    assert (record["gradient_accumulation_steps"], record["use_ema"], record["schedule"]) == (1, False, None)
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.optimizer_steps.accumulation_steps == 1
    assert loaded.ema_momentum is None
    assert loaded.optimizer_steps.schedule is None


def test_a_file_without_the_options_loads_with_the_defaults(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A file written before these options were saved."""
    from nurinet.io import save_checkpoint

    model = mlp()
    record = compile_record(model)
    for key in ("gradient_accumulation_steps", "use_ema", "ema_momentum", "schedule", "iterations"):
        del record[key]
    save_checkpoint(tmp_path / "old.safetensors", model, model.optimizer, extra={COMPILE_KEY: json.dumps(record)})
    loaded = load_model(tmp_path / "old.safetensors")
    assert loaded.optimizer_steps.accumulation_steps == 1 and loaded.ema_momentum is None


@pytest.mark.parametrize("options", [
    {"gradient_accumulation_steps": 3},
    {"lr": warmup},
    {"gradient_accumulation_steps": 3, "learning_rate": warmup},
])
def test_training_continues_after_loading_as_if_uninterrupted(tmp_path, options) -> None:  # type: ignore[no-untyped-def]
    straight = mlp(**options)
    straight.fit(X, Y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    resumed = mlp(**options)
    fit_one_epoch(resumed)
    resumed.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors", custom_objects={"warmup": warmup})
    fit_one_epoch(loaded)
    assert_same_weights(loaded, straight, 1e-10)
    assert loaded.optimizer_steps.iterations == straight.optimizer_steps.iterations


def test_ema_training_continues_after_loading_as_with_a_second_fit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The average lives for one ``fit`` (it is copied into the weights at its end), so two fits
    of one epoch are what a save and a load in between can reproduce."""
    twice = mlp(use_ema=True, ema_momentum=0.8)
    fit_one_epoch(twice)
    fit_one_epoch(twice)
    resumed = mlp(use_ema=True, ema_momentum=0.8)
    fit_one_epoch(resumed)
    resumed.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    fit_one_epoch(loaded)
    assert_same_weights(loaded, twice, 1e-10)
    without_ema = mlp()
    fit_one_epoch(without_ema)
    fit_one_epoch(without_ema)
    assert not np.allclose(weights_of(without_ema)[0], weights_of(twice)[0], atol=1e-6)


def test_an_unknown_schedule_is_named_on_load(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = mlp(lr=warmup)
    model.save(tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match=r"test_saving_compile_options\.warmup.*custom_objects=\{'warmup'"):
        load_model(tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="warmup"):
        load_model(tmp_path / "m.safetensors", custom_objects={"other": warmup})
    uncompiled = load_model(tmp_path / "m.safetensors", compile=False)
    assert uncompiled.loss_fn is None


@pytest.mark.parametrize("key", ["warmup", "test_saving_compile_options.warmup"])
def test_custom_objects_give_the_schedule_back(tmp_path, key) -> None:  # type: ignore[no-untyped-def]
    model = mlp(lr=warmup)
    fit_one_epoch(model)
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors", custom_objects={key: warmup})
    assert loaded.optimizer_steps.schedule is warmup
    fit_one_epoch(loaded)
    assert loaded.optimizer.param_groups[0]["lr"] == warmup(loaded.optimizer_steps.iterations - 1)


def test_a_schedule_object_is_saved_by_its_class_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    schedule = Halving()
    model = mlp(lr=schedule)
    model.save(tmp_path / "m.safetensors")
    assert compile_record(model)["schedule"]["callable"].endswith("test_saving_compile_options.Halving")
    with pytest.raises(ValueError, match="Halving"):
        load_model(tmp_path / "m.safetensors")
    assert load_model(tmp_path / "m.safetensors", custom_objects={"Halving": schedule}) \
        .optimizer_steps.schedule is schedule


def test_custom_objects_must_hold_callables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = mlp(lr=warmup)
    model.save(tmp_path / "m.safetensors")
    with pytest.raises(TypeError, match="custom_objects"):
        load_model(tmp_path / "m.safetensors", custom_objects={"warmup": 0.1})
    with pytest.raises(TypeError, match="custom_objects"):
        load_model(tmp_path / "m.safetensors", custom_objects=[warmup])


def test_crafted_options_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nurinet.io import save_checkpoint

    model = mlp()
    for bad in ({"gradient_accumulation_steps": 0}, {"ema_momentum": 2.0, "use_ema": True},
                {"iterations": -1}, {"schedule": {"callable": 3}}, {"use_ema": "yes"}):
        record = {**compile_record(model), **bad}
        path = tmp_path / "bad.safetensors"
        save_checkpoint(path, model, model.optimizer, extra={COMPILE_KEY: json.dumps(record)})
        with pytest.raises(CorruptFileError):
            load_model(path)
