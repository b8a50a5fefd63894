"""Names that resolve: every public class of every kind found by name, from code and from a configuration.

Each kind (callbacks, schedulers, constraints, regularizers, optimizers, activations, layers) is
walked from its package's public names, so a class added later is resolved here without
editing this file, and every unknown-name error is checked to list the known names.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import numpy as np
import pytest

import nurinet as nt
import nurinet.models
import nurinet.optim
import nurinet.training
from nurinet import nn
from nurinet.autograd.tensor import Parameter
from nurinet.functional import activation_registry
from nurinet.io.registry import get_layer_class, layer_type_names
from nurinet.names import NameTable, name_key, unknown_name
from nurinet.nn import regularizers
from nurinet.optim import OPTIMIZERS, SGD, NoOp, Optimizer, get_optimizer, lr_scheduler
from nurinet.training import Callback, CheckpointCallback
from nurinet.training import config as cfg
from nurinet.training.callback_names import CALLBACKS, callback_names, get_callback


def snake_case(name: str) -> str:
    """``ReduceLROnPlateau`` -> ``reduce_lr_on_plateau``, ``CSVLogger`` -> ``csv_logger``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def spellings(name: str) -> list[str]:
    """The class name, its snake_case form, and an odd-cased, hyphenated form."""
    return [name, snake_case(name), snake_case(name).replace("_", "-").swapcase() + " "]


def public_classes(module, base, exclude=()) -> list[type]:
    """The public subclasses of ``base`` defined in ``module`` (read from its namespace, not
    its ``__all__``: a class that was not exported is caught too)."""
    return [obj for name, obj in sorted(vars(module).items())
            if isinstance(obj, type) and issubclass(obj, base) and obj is not base
            and obj not in exclude and not name.startswith("_") and obj.__module__ == module.__name__]


def package_modules(package) -> list:
    return [importlib.import_module(info.name)
            for info in pkgutil.iter_modules(package.__path__, package.__name__ + ".")]


def all_of(package, base) -> list[type]:
    return [getattr(package, name) for name in package.__all__
            if isinstance(getattr(package, name), type) and issubclass(getattr(package, name), base)
            and getattr(package, name) is not base]


def ids(classes) -> list[str]:
    return [cls.__name__ for cls in classes]


def small(**overrides) -> dict:
    config = {
        "seed": 0,
        "model": {"input_size": 4, "layers": [
            {"type": "Dense", "units": 6, "activation": "relu"},
            {"type": "Output", "units": 3, "activation": "softmax", "loss": "cross_entropy"}]},
        "updater": {"name": "sgd", "lr": 0.1},
        "training": {"epochs": 2, "batch_size": 8, "metrics": ["accuracy"]},
    }
    config.update(overrides)
    return config


def blobs() -> tuple:
    return nt.data.make_blobs(24, centers=3, n_features=4, generator=nt.Generator(0))


def assert_lists_every_name(error: pytest.ExceptionInfo, names: list[str]) -> None:
    message = str(error.value)
    missing = [name for name in names if name not in message]
    assert names and not missing, f"the error does not list {missing}: {message}"


# ----- the mechanism ----------------------------------------------------------------------------
def test_name_table_ignores_case_punctuation_and_a_suffix() -> None:
    table = NameTable("schedule", suffixes=("lr",))
    table.register("StepLR", int)
    assert all(table.get(name) is int for name in ("StepLR", "step_lr", "STEP-lr", "step", "Step LR"))
    assert name_key("Leaky_ReLU-6 x") == "leakyrelu6x"
    assert table.key("lr") == "lr"  # a suffix is never dropped to nothing


def test_name_table_clashes_pop_and_lazy_loading() -> None:
    loaded = []
    table = NameTable("activation", hint="Register your own.")
    table.add_loader(lambda t: loaded.append(t.register("relu", abs, "rectifier")))
    assert not loaded
    assert table.get("Rectifier") is abs and loaded == [abs]
    with pytest.raises(ValueError, match=r"an activation named 'RELU' exists already .*overwrite=True"):
        table.register("RELU", max)
    assert table.pop("rectifier") is abs and "rectifier" not in table and "relu" in table
    assert table.pop("nope", None) is None
    with pytest.raises(KeyError):
        table.pop("nope")
    with pytest.raises(TypeError, match="an activation name must be a string"):
        table.get(3)
    with pytest.raises(ValueError, match=r"^unknown activation 'x'; known activation names: relu\. "
                                         r"Register your own\.$"):
        table.get("x")
    assert str(unknown_name("layer type", "Y", ["a", "b"])) == \
        "unknown layer type 'Y'; known layer type names: a, b."


# ----- callbacks --------------------------------------------------------------------------------
TRAINING_CALLBACKS = all_of(nurinet.training, Callback)


def test_every_public_callback_class_is_exported() -> None:
    """A Callback written in any module of nurinet.training is in nurinet.training.__all__."""
    defined = {cls for module in package_modules(nurinet.training)
               for cls in public_classes(module, Callback)}
    assert defined and defined <= set(TRAINING_CALLBACKS), sorted(ids(defined - set(TRAINING_CALLBACKS)))


@pytest.mark.parametrize("cls", TRAINING_CALLBACKS, ids=ids(TRAINING_CALLBACKS))
def test_every_callback_resolves_by_name(cls) -> None:
    for spelling in spellings(cls.__name__):
        assert get_callback(spelling) is cls, spelling


def test_one_checkpoint_callback_name_means_one_class() -> None:
    """Both checkpoint callbacks live in nurinet.training.checkpoint, each under its own name."""
    assert CheckpointCallback in TRAINING_CALLBACKS
    assert CheckpointCallback.__module__ == nurinet.training.ModelCheckpoint.__module__
    assert get_callback("ModelCheckpoint") is nurinet.training.ModelCheckpoint
    assert get_callback("model_checkpoint") is nurinet.training.ModelCheckpoint
    assert get_callback("checkpoint") is get_callback("CheckpointCallback") is CheckpointCallback
    classes = [cls for _, cls in CALLBACKS.items()]
    assert len(classes) == len(set(classes))  # one name per class ("CheckpointCallback" is "checkpoint")


def test_unknown_callback_lists_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown callback type 'Nope'") as error:
        get_callback("Nope")
    assert_lists_every_name(error, callback_names())
    assert {"earlystopping", "csvlogger", "reducelronplateau", "terminateonnan",
            "modelcheckpoint", "checkpoint"} <= set(callback_names())


def callback_specs(tmp_path) -> list[dict]:
    """One configuration entry per callback type, with minimal valid arguments."""
    return [
        {"type": "EarlyStopping", "monitor": "loss", "patience": 3},
        {"type": "CSVLogger", "filename": str(tmp_path / "log.csv")},
        {"type": "reduce_lr_on_plateau", "monitor": "loss", "patience": 2},
        {"type": "TerminateOnNaN"},
        {"type": "ExponentialMovingAverage", "decay": 0.99},
        {"type": "ModelCheckpoint", "filepath": str(tmp_path / "weights-{epoch}.safetensors")},
        {"type": "CheckpointCallback", "path": str(tmp_path / "full.safetensors")},
        {"type": "checkpoint", "path": str(tmp_path / "short.safetensors")},
        {"type": "GradientMonitor", "every": 2},
        {"type": "History"},
        {"type": "ProgressBar", "verbose": 0},
        {"type": "TensorBoard", "log_dir": str(tmp_path / "tb")},
    ]


def test_every_callback_type_builds_from_a_configuration(tmp_path) -> None:
    specs = callback_specs(tmp_path)
    built = cfg.build(small(callbacks=specs))
    assert [type(cb) for cb in built.callbacks] == [get_callback(spec["type"]) for spec in specs]
    configurable = {type(cb) for cb in built.callbacks} | {nurinet.training.LearningRateScheduler}
    assert configurable == set(TRAINING_CALLBACKS), "a callback has no spec above"


def test_configured_callbacks_run_in_fit(tmp_path) -> None:
    names = ["EarlyStopping", "CSVLogger", "reduce_lr_on_plateau", "TerminateOnNaN", "ModelCheckpoint",
             "CheckpointCallback"]
    specs = [spec for spec in callback_specs(tmp_path) if spec["type"] in names]
    built = cfg.build(small(callbacks=specs))
    built.model.fit(*blobs(), epochs=2, batch_size=8, verbose=0, callbacks=built.callbacks)
    assert (tmp_path / "log.csv").read_text().count("\n") == 3  # header and two epochs
    assert (tmp_path / "weights-2.safetensors").exists() and (tmp_path / "full.safetensors").exists()


def test_learning_rate_scheduler_needs_a_function_that_a_configuration_cannot_hold() -> None:
    with pytest.raises(ValueError, match=r"callbacks\[0\] \(LearningRateScheduler\): .*'schedule'.*"
                                         r"takes schedule, verbose"):
        cfg.build(small(callbacks=[{"type": "LearningRateScheduler"}]))


@pytest.mark.parametrize(("spec", "message"), [
    ({"type": "EarlyStoping"},
     r"callbacks\[0\]: unknown callback type 'EarlyStoping'; known callback type names: .*earlystopping"),
    ({"type": "ModelCheckpoint", "path": "x"},
     r"callbacks\[0\] \(ModelCheckpoint\): missing .* 'filepath'; ModelCheckpoint takes filepath, monitor"),
    ({"type": "EarlyStopping", "patiense": 2},
     r"callbacks\[0\] \(EarlyStopping\): .* argument 'patiense'; EarlyStopping takes monitor, min_delta"),
    ({"patience": 2}, r"callbacks\[0\] must be a mapping with a 'type'"),
])
def test_configured_callback_errors(spec, message) -> None:
    with pytest.raises(ValueError, match=message):
        cfg.build(small(callbacks=[spec]))


# ----- schedulers -------------------------------------------------------------------------------
SCHEDULERS = [cls for cls in vars(lr_scheduler).values()
              if isinstance(cls, type) and cls.__module__ == lr_scheduler.__name__
              and not cls.__name__.startswith("_") and cls is not lr_scheduler.LRScheduler
              and callable(getattr(cls, "step", None)) and callable(getattr(cls, "state_dict", None))]


@pytest.mark.parametrize("cls", SCHEDULERS, ids=ids(SCHEDULERS))
def test_every_scheduler_resolves_by_name(cls) -> None:
    assert cls.__name__ in nurinet.optim.__all__
    for spelling in [*spellings(cls.__name__), re.sub("LR$", "", cls.__name__)]:
        assert lr_scheduler.get_scheduler(spelling) is cls, spelling
    assert nurinet.optim.get_scheduler is lr_scheduler.get_scheduler


# Minimal arguments from a configuration; None: the scheduler needs Python objects (functions,
# other schedulers), which a configuration cannot hold.
SCHEDULE_ARGS = {
    "StepLR": {"step_size": 1}, "MultiStepLR": {"milestones": [1]}, "ExponentialLR": {"gamma": 0.9},
    "CosineAnnealingLR": {"T_max": 2}, "CosineAnnealingWarmRestarts": {"T_0": 2}, "LinearLR": {},
    "OneCycleLR": {"max_lr": 0.2, "total_steps": 10}, "ReduceLROnPlateau": {"patience": 1},
    "LambdaLR": None, "SequentialLR": None,
}


@pytest.mark.parametrize("cls", SCHEDULERS, ids=ids(SCHEDULERS))
def test_every_scheduler_builds_from_a_configuration(cls) -> None:
    assert cls.__name__ in SCHEDULE_ARGS, f"give {cls.__name__} its minimal arguments here"
    args = SCHEDULE_ARGS[cls.__name__]
    if args is None:
        with pytest.raises(ValueError, match=rf"schedule \({cls.__name__}\): missing a required argument"):
            cfg.build(small(schedule={"name": cls.__name__}))
        return
    built = cfg.build(small(schedule={"name": snake_case(cls.__name__), **args}))
    assert type(built.scheduler) is cls
    built.model.fit(*blobs(), epochs=2, batch_size=8, verbose=0, callbacks=built.callbacks)


def test_unknown_schedule_lists_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown schedule 'warmup'") as error:
        cfg.build(small(schedule={"name": "warmup"}))
    assert_lists_every_name(error, lr_scheduler.SCHEDULERS.names())
    with pytest.raises(ValueError, match=r"schedule \(StepLR\): .*'step_size'; StepLR takes optimizer, step_size"):
        cfg.build(small(schedule={"name": "StepLR", "stepsize": 1}))
    with pytest.raises(ValueError, match="'schedule' section needs a 'name'"):
        cfg.build(small(schedule={"step_size": 1}))


# ----- constraints and regularizers -------------------------------------------------------------
CONSTRAINTS = public_classes(regularizers, regularizers.Constraint)
REGULARIZERS = public_classes(regularizers, regularizers.Regularizer)
CONSTRAINT_ARGS = {"MaxValue": {"max_value": 1.0}, "Clip": {"min_value": -1.0, "max_value": 1.0}}


@pytest.mark.parametrize("cls", CONSTRAINTS, ids=ids(CONSTRAINTS))
def test_every_constraint_resolves_and_builds_from_a_configuration(cls) -> None:
    for spelling in spellings(cls.__name__):
        assert regularizers.get_constraint(spelling) is cls, spelling
    constraint = {"type": snake_case(cls.__name__), **CONSTRAINT_ARGS.get(cls.__name__, {})}
    network = cfg.build(small(regularization={"constraint": constraint})).model.network
    assert isinstance(network[0]._constraints["weight"], cls)


@pytest.mark.parametrize("cls", REGULARIZERS, ids=ids(REGULARIZERS))
def test_every_regularizer_resolves_by_name(cls) -> None:
    for spelling in spellings(cls.__name__):
        assert regularizers.get_regularizer(spelling) is cls, spelling


def test_unknown_constraint_and_regularizer_list_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown constraint 'max'") as error:
        cfg.build(small(regularization={"constraint": {"type": "max"}}))
    assert_lists_every_name(error, regularizers.CONSTRAINTS.names())
    with pytest.raises(ValueError, match="unknown regularizer 'l3'") as error:
        regularizers.get_regularizer("l3")
    assert_lists_every_name(error, regularizers.REGULARIZERS.names())
    with pytest.raises(ValueError, match=r"regularization.constraint \(MaxValue\): .*'max_value'"):
        cfg.build(small(regularization={"constraint": {"type": "MaxValue"}}))
    with pytest.raises(ValueError, match="constraint needs a 'type'"):
        cfg.build(small(regularization={"constraint": {"max_value": 2.0}}))


# ----- optimizers -------------------------------------------------------------------------------
OPTIMIZER_CLASSES = all_of(nurinet.optim, Optimizer)


def test_every_public_optimizer_class_is_exported() -> None:
    defined = {cls for module in package_modules(nurinet.optim) for cls in public_classes(module, Optimizer)}
    assert defined and defined <= set(OPTIMIZER_CLASSES), sorted(ids(defined - set(OPTIMIZER_CLASSES)))


@pytest.mark.parametrize("cls", OPTIMIZER_CLASSES, ids=ids(OPTIMIZER_CLASSES))
def test_every_optimizer_resolves_by_name(cls) -> None:
    for spelling in spellings(cls.__name__):
        assert OPTIMIZERS.get(spelling) is cls, spelling
        assert type(get_optimizer(spelling, [Parameter(np.ones(2))])) is cls


@pytest.mark.parametrize(("name", "expected"), [
    ("momentum", {"momentum": 0.9, "nesterov": False}),
    ("nesterov", {"momentum": 0.9, "nesterov": True}),
    ("NAG", {"momentum": 0.9, "nesterov": True}),
    ("Nesterovs", {"momentum": 0.9, "nesterov": True}),
])
def test_momentum_presets(name, expected) -> None:
    optimizer = get_optimizer(name, [Parameter(np.ones(2))], lr=0.5)
    assert type(optimizer) is SGD
    assert {k: optimizer.param_groups[0][k] for k in expected} == expected


@pytest.mark.parametrize("name", ["none", "NoOp", "no_op", "NONE"])
def test_noop_never_changes_the_parameters(name) -> None:
    weight = Parameter(np.array([1.0, -2.0]))
    optimizer = get_optimizer(name, [weight])
    assert type(optimizer) is NoOp
    (weight * weight).sum().backward()
    assert optimizer.step(lambda: 7.0) == 7.0 and optimizer.step() is None
    np.testing.assert_array_equal(weight.array, [1.0, -2.0])
    assert optimizer.state == {} and optimizer.state_dict()["param_groups"][0]["lr"] == 0.0


def test_noop_in_a_configuration_keeps_the_weights() -> None:
    built = cfg.build(small(updater={"name": "none"}, schedule={"name": "step", "step_size": 1}))
    before = {k: v.copy() for k, v in built.model.state_dict().items()}
    built.model.fit(*blobs(), epochs=2, batch_size=8, verbose=0, callbacks=built.callbacks)
    assert all(np.array_equal(before[k], v) for k, v in built.model.state_dict().items())


def test_unknown_optimizer_lists_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'") as error:
        cfg.build(small(updater={"name": "adamax"}))
    assert_lists_every_name(error, OPTIMIZERS.names())
    assert {"nag", "nesterovs", "none", "noop", "momentum", "nesterov"} <= set(OPTIMIZERS.names())


# ----- activations ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", activation_registry.activation_names())
def test_every_activation_resolves_by_name(name) -> None:
    fn = nt.functional.get_activation(name)
    for spelling in (name.upper(), f"{name[:1].upper()}_{name[1:]}", f" {name} "):
        assert nt.functional.get_activation(spelling) is fn, spelling
    x = nt.tensor(np.array([[-1.0, 0.5]], np.float32))
    assert nn.Activation(name.swapcase()).eval()(x).shape == (1, 2)


def test_unknown_activation_lists_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown activation 'relu7'") as error:
        nt.functional.get_activation("relu7")
    assert_lists_every_name(error, activation_registry.activation_names())


def test_an_activation_that_is_a_layer_points_to_the_layer() -> None:
    assert list(inspect.signature(nn.Maxout).parameters)[:3] == ["in_features", "out_features", "pieces"]
    for name in ("maxout", "Maxout", "MAX_OUT"):
        with pytest.raises(ValueError, match=r"layer with its own weights.*"
                                             r"nn\.Maxout\(in_features, out_features, pieces\)") as error:
            nt.functional.get_activation(name)
        assert_lists_every_name(error, activation_registry.activation_names())
    with pytest.raises(ValueError, match=r"nn\.Maxout"):
        nn.Linear(3, 4, activation="maxout")
    with pytest.raises(ValueError, match=r"learned weight.*nn\.PReLU"):  # a function cannot learn
        nt.functional.get_activation("prelu")(nt.tensor([1.0]))
    assert isinstance(nn.Activation("PReLU").layer, nn.PReLU)  # the layer form learns


def test_the_maxout_advice_works_in_a_configuration() -> None:
    config = small()
    config["model"]["layers"][0] = {"type": "Maxout", "out_features": 6, "pieces": 2}
    network = cfg.build(config).model.network
    assert isinstance(network[0], nn.Maxout) and network[0].in_features == 4
    assert network[1].in_features == 6


# ----- layers -----------------------------------------------------------------------------------
LAYERS = sorted({*all_of(nn, nn.Module), *all_of(nurinet.models, nn.Module), nn.Module},
                key=lambda cls: cls.__name__)


@pytest.mark.parametrize("cls", LAYERS, ids=ids(LAYERS))
def test_every_public_layer_resolves_by_name(cls) -> None:
    for spelling in spellings(cls.__name__):
        assert get_layer_class(spelling) is cls, spelling


def test_saved_models_hold_classes_the_layer_packages_do_not_export() -> None:
    assert get_layer_class("Model") is nurinet.training.Model
    assert get_layer_class("OutputLayer") is nn.OutputLayer
    assert get_layer_class("swish") is nn.SiLU  # an exported alias


def test_layer_lookup_does_not_depend_on_what_is_imported() -> None:
    class Stray(nn.Module):  # a Module subclass defined anywhere is not a layer type by name
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match="unknown layer type 'Stray'.*register_layer") as error:
        get_layer_class("Stray")
    assert_lists_every_name(error, layer_type_names())
    assert {"linear", "conv2d", "model", "outputlayer"} <= set(layer_type_names())


# ----- metrics and losses -----------------------------------------------------------------------
METRIC_CLASSES = sorted(set(all_of(nurinet.training, nurinet.training.Metric)) - {nurinet.training.Mean},
                        key=lambda cls: cls.__name__)


@pytest.mark.parametrize("cls", METRIC_CLASSES, ids=ids(METRIC_CLASSES))
def test_every_public_metric_resolves_by_name(cls) -> None:
    from nurinet.training.metrics import METRICS, get_metric

    for spelling in spellings(cls.__name__):
        assert METRICS.get(spelling) is cls, spelling
    assert isinstance(get_metric(cls.__name__), cls) or cls is nurinet.training.ConfusionMatrix


def test_unknown_metric_and_loss_list_the_known_names() -> None:
    from nurinet.functional.loss_registry import LOSSES, loss_info
    from nurinet.training.metrics import METRICS, get_metric

    with pytest.raises(ValueError, match="unknown metric 'acuracy'") as error:
        get_metric("acuracy")
    assert_lists_every_name(error, METRICS.names())
    with pytest.raises(ValueError, match="unknown loss 'mcxnet'") as error:
        loss_info("mcxnet")
    assert_lists_every_name(error, LOSSES.names())
