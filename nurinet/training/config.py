"""Training configurations: a model, its updater and its training run described as data.

In the manner of Deeplearning4j's ``MultiLayerConfiguration`` and Keras's
``model.get_config()`` (here :meth:`nurinet.training.Model.training_config`), a
configuration (a dict, a JSON file, or a YAML file with the optional ``pyyaml``
extra) names each layer with its own activation and ends with an output layer
that owns its loss::

    seed: 0
    data: {dataset: digits, normalize: true, val_fraction: 0.1, test_fraction: 0.2, stratify: true}
    model:
      input_size: 64
      layers:
        - {type: Dense, units: 256, activation: relu}
        - {type: Dropout, p: 0.1}
        - {type: Output, units: 10, activation: softmax, loss: cross_entropy}
    updater: {name: adam, lr: 0.002}
    training: {epochs: 40, batch_size: 64, metrics: [accuracy]}

Layer types:

- ``Dense``: ``units``, ``activation`` (a name), ``bias`` (default true),
  ``activity_regularizer`` (below); its input width is the previous layer's ``units``
  (or ``model.input_size``).
- ``Output``: a Dense layer plus ``loss`` (:class:`nurinet.nn.OutputLayer`): any DL4J, Keras
  or PyTorch loss name (``MCXENT``, ``NEGATIVELOGLIKELIHOOD``, ``XENT``, ``mse``,
  ``sparse_categorical_crossentropy``...; ``docs/losses.md`` lists them). The layer outputs
  what its activation says (``predict`` gives probabilities after a softmax or a sigmoid)
  and the loss is computed from the logits behind them (stable, never a double softmax);
  a pairing that makes no sense (softmax + hinge) is refused with a message.
- ``Dropout``: ``p``.
- any other layer by class name (``LayerNorm``, ``Conv2d``, a layer registered
  with ``nurinet.io.register_layer``) with its constructor arguments; a missing
  ``in_features`` / ``num_features`` / ``normalized_shape`` is the current width,
  and an ``activation`` its constructor does not take adds an activation layer after it.
- ``ActivityRegularization``: ``l1``, ``l2``. A layer's ``activity_regularizer`` (Dense, the
  convolutions) is a regularizer of ``nurinet.nn.regularizers`` by name and arguments:
  ``{type: L1, l1: 0.001}``, ``{type: KLSparsity, rho: 0.05, beta: 3}``, or a name alone (``l2``).

Optional sections: ``schedule`` (a scheduler of ``nurinet.optim.lr_scheduler`` by
name and its arguments, stepped each epoch), ``callbacks`` (a list of
``{type: checkpoint | <Callback class name>, ...}``) and ``regularization``
(``{l1: .., l2: .., parameters: [weight], constraint: {type: MaxNorm, max_value: 3}}``,
attached to every layer's named parameters with ``nurinet.nn.regularizers``). A
section whose piece is not installed is rejected.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from nurinet.io.checkpoint import load_checkpoint
from nurinet.io.registry import (
    activation_name,
    constructor_args,
    decode_value,
    encode_value,
    get_layer_class,
    layer_name,
)
from nurinet.names import name_key
from nurinet.nn.linear import Linear
from nurinet.nn.module import Module
from nurinet.nn.output import OutputLayer
from nurinet.training.callback_names import get_callback
from nurinet.training.callbacks import Callback
from nurinet.training.checkpoint import CheckpointCallback
from nurinet.training.model import Model

__all__ = [
    "Built",
    "PreparedRun",
    "build",
    "build_network",
    "check_run_name",
    "check_settings",
    "confine_callback_paths",
    "load_config",
    "load_data",
    "model_to_config",
    "prepare_run",
    "run",
    "run_name",
    "save_config",
]

_SECTIONS = {"name", "seed", "data", "model", "updater", "training", "schedule", "callbacks",
             "regularization"}
_WIDTH_ARGS = ("in_features", "num_features", "normalized_shape")
_TRAINING_KEYS = {"epochs", "batch_size", "metrics", "shuffle", "verbose"}
_MAX_DEPTH = 100  # levels of a configuration text
_MAX_VALUES = 1_000_000  # values of a configuration text, YAML aliases expanded


@dataclasses.dataclass
class Built:
    """What a configuration builds: the compiled model and the arguments of its run."""

    model: Any
    fit_args: dict[str, Any]
    config: dict[str, Any]
    scheduler: Any = None
    callbacks: list = dataclasses.field(default_factory=list)


# ----- reading ----------------------------------------------------------------------------------
def load_config(source: Any) -> dict[str, Any]:
    """A configuration from a dict, a ``.json`` / ``.yaml`` / ``.yml`` file, or JSON/YAML text.

    Text is untrusted: nested more than ``_MAX_DEPTH`` levels, or holding more than
    ``_MAX_VALUES`` values once YAML aliases are expanded, it is refused.

    Raises:
        ValueError: the text is not valid, too deep or too large, or the result is not a mapping.
        FileNotFoundError: ``source`` names a ``.json`` / ``.yaml`` / ``.yml`` file that does not exist.
        ImportError: a YAML file is read without PyYAML installed.
    """
    if isinstance(source, Mapping):
        return dict(source)
    text, where = os.fspath(source) if isinstance(source, os.PathLike) else str(source), "the configuration text"
    if os.path.exists(text):
        where = text
        with open(text, encoding="utf-8") as f:
            text = f.read()
        is_yaml = where.endswith((".yaml", ".yml"))
    elif _looks_like_a_path(text):
        raise FileNotFoundError(f"configuration file {text!r} does not exist")
    else:
        is_yaml = not text.lstrip().startswith("{")
    try:
        config = _parse_yaml(text, where) if is_yaml else _parse_json(text, where)
    except RecursionError:
        raise ValueError(f"{where} is nested too deep (at most {_MAX_DEPTH} levels)") from None
    if not isinstance(config, dict):
        raise ValueError(  # noqa: TRY004 (bad configuration content)
            f"{where}: a configuration must be a mapping, got {type(config).__name__}")
    _check_size(config, where)
    return config


def _looks_like_a_path(text: str) -> bool:
    """A one-line text naming a configuration file (not one-line YAML or JSON)."""
    one_line = "\n" not in text and ": " not in text and not text.lstrip().startswith("{")
    return one_line and text.strip().endswith((".json", ".yaml", ".yml"))


def _check_size(config: Any, where: str) -> None:
    """Refuse a configuration nested too deep or too large (YAML aliases can make a few lines
    stand for billions of values, which saving the configuration would then write out)."""
    stack, seen = [(config, 1)], 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if depth > _MAX_DEPTH or seen > _MAX_VALUES:
            too = f"nested more than {_MAX_DEPTH} levels" if depth > _MAX_DEPTH else \
                f"larger than {_MAX_VALUES:,} values (YAML aliases count once per use)"
            raise ValueError(f"{where} is {too}")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children)


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{where} is not valid JSON: {error}") from None


def _parse_yaml(text: str, where: str) -> Any:
    try:
        import yaml
    except ImportError as error:
        raise ImportError(f"reading {where} as YAML needs PyYAML: pip install 'nurinet[yaml]' "
                          "(or write the configuration as JSON)") from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{where} is not valid YAML: {error}") from None


def save_config(config: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write ``config`` as YAML (``.yaml`` / ``.yml``, needs PyYAML) or JSON (any other name)."""
    path = os.fspath(path)
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError as error:
            raise ImportError("writing YAML needs PyYAML: pip install 'nurinet[yaml]'") from error
        text = yaml.safe_dump(dict(config), sort_keys=False)
    else:
        text = json.dumps(config, indent=2) + "\n"
    from nurinet.io.atomic import atomic_write_bytes

    atomic_write_bytes(path, text.encode("utf-8"))


# ----- checking ---------------------------------------------------------------------------------
_RUN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
_MAPPING_SECTIONS = ("data", "model", "updater", "training", "schedule", "regularization")
# Callback arguments that name a file or directory to write.
_PATH_SETTINGS = ("filepath", "filename", "path", "log_dir")


def _setting_error(setting: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"{setting} = {value!r} ({type(value).__name__}): {allowed}")


def check_run_name(name: Any) -> str:
    """``name`` when it is a plain run name, usable as one directory under ``runs/``.

    A run name is 1 to 100 letters, digits, ``-``, ``_`` and ``.``, not starting with
    ``.``: never absolute, never ``..``, never a path separator.

    Raises:
        ValueError: anything else (the configuration's ``name`` is refused, never cleaned).
    """
    if not isinstance(name, str) or not _RUN_NAME.fullmatch(name):
        raise _setting_error("name", name, "a run name is 1 to 100 letters, digits, '-', '_' and '.' "
                                           "(not first), e.g. 'digits_mlp'; it names the directory "
                                           "runs/<name>, so it cannot be a path")
    return name


def run_name(config: Mapping[str, Any], source: str | os.PathLike | None = None) -> str:
    """The run's name: the configuration's ``name`` (checked), else the file's name made plain."""
    if config.get("name") is not None:
        return check_run_name(config["name"])
    stem = os.path.splitext(os.path.basename(os.fspath(source or "")))[0]
    plain = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip(".")[:100]
    return plain or "run"


def confine_callback_paths(config: Mapping[str, Any], output_dir: str | os.PathLike) -> dict[str, Any]:
    """A copy of ``config`` whose callbacks write inside ``output_dir`` only.

    A relative ``filepath`` / ``filename`` / ``path`` / ``log_dir`` is placed under
    ``output_dir``; an absolute one, or one that climbs out with ``..``, is refused.

    Raises:
        ValueError: a callback path that would write outside ``output_dir``.
    """
    config = dict(config)
    specs = config.get("callbacks")
    if not isinstance(specs, list):
        return config  # check_settings reports a wrong type
    confined = []
    for i, spec in enumerate(specs):
        spec = dict(spec) if isinstance(spec, Mapping) else spec
        for key in _PATH_SETTINGS:
            value = spec.get(key) if isinstance(spec, dict) else None
            if isinstance(value, (str, os.PathLike)):
                spec[key] = _inside(output_dir, os.fspath(value), f"callbacks[{i}].{key}")
        confined.append(spec)
    config["callbacks"] = confined
    return config


def _inside(output_dir: str | os.PathLike, relative: str, setting: str) -> str:
    parts = relative.replace("\\", "/").split("/")
    if os.path.isabs(relative) or os.path.splitdrive(relative)[0] or ".." in parts:
        raise _setting_error(setting, relative, "a run writes only inside its output directory: give "
                                                "a relative path without '..' (it goes under the "
                                                "output directory)")
    return os.path.join(os.fspath(output_dir), relative)


def check_settings(config: Mapping[str, Any]) -> None:
    """Check the types and ranges of the top-level settings, naming the setting on error.

    Raises:
        ValueError: e.g. ``training.epochs = '3' (str): must be a whole number >= 0, e.g. 10``.
    """
    if config.get("name") is not None:
        check_run_name(config["name"])
    seed = config.get("seed")
    if seed is not None and (type(seed) is not int or seed < 0):
        raise _setting_error("seed", seed, "must be a non-negative integer or null")
    for section in _MAPPING_SECTIONS:
        value = config.get(section)
        if value and not isinstance(value, Mapping):  # an empty or null section is left out
            raise _setting_error(section, value, f"the '{section}' section must be a mapping of settings")
    callbacks = config.get("callbacks")
    if callbacks is not None and not isinstance(callbacks, list):
        raise _setting_error("callbacks", callbacks, "must be a list of mappings, e.g. "
                                                     "[{type: EarlyStopping, patience: 3}]")
    _check_training(config.get("training") or {})
    _check_data(config.get("data") or {})


def _positive_int(value: Any) -> bool:
    return type(value) is int and value > 0


def _check_training(training: Mapping[str, Any]) -> None:
    epochs = training.get("epochs", 10)
    if type(epochs) is not int or epochs < 0:
        raise _setting_error("training.epochs", epochs, "must be a whole number >= 0, e.g. 10")
    if "batch_size" in training and not _positive_int(training["batch_size"]):
        raise _setting_error("training.batch_size", training["batch_size"], "must be a positive "
                                                                            "integer, e.g. 32")
    if "shuffle" in training and not isinstance(training["shuffle"], bool):
        raise _setting_error("training.shuffle", training["shuffle"], "must be true or false")
    verbose = training.get("verbose", 1)
    if verbose not in (0, 1, 2, "auto") or isinstance(verbose, bool):
        raise _setting_error("training.verbose", verbose, "must be 0 (silent), 1 (progress bar), "
                                                          "2 (one line per epoch) or auto")
    metrics = training.get("metrics", [])
    if not isinstance(metrics, (list, tuple)) or not all(isinstance(m, str) for m in metrics):
        raise _setting_error("training.metrics", metrics, "must be a list of metric names, e.g. "
                                                          "[accuracy]")


def _check_data(data: Mapping[str, Any]) -> None:
    if "dataset" in data and not isinstance(data["dataset"], str):
        raise _setting_error("data.dataset", data["dataset"], "must be a dataset name (digits, iris, "
                                                              "moons, spiral, blobs)")
    for key in ("val_fraction", "test_fraction"):
        value = data.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise _setting_error(f"data.{key}", value, "must be a number in [0, 1), e.g. 0.2")
    for key in ("stratify", "normalize"):
        if key in data and not isinstance(data[key], bool):
            raise _setting_error(f"data.{key}", data[key], "must be true or false")


# ----- building ---------------------------------------------------------------------------------
def build_network(model_config: Mapping[str, Any]) -> Module:
    """The ``nn.Sequential`` of a configuration's ``model`` section."""
    from nurinet.nn import Sequential

    if not isinstance(model_config, Mapping) or not isinstance(model_config.get("layers"), list):
        raise ValueError(  # noqa: TRY004 (bad configuration content)
            "the 'model' section must be a mapping with a 'layers' list, e.g. "
            "{input_size: 64, layers: [{type: Dense, units: 10}]}")
    width = model_config.get("input_size")
    layers: list[Module] = []
    for i, spec in enumerate(model_config["layers"]):
        if not isinstance(spec, Mapping) or "type" not in spec:
            raise ValueError(f"model.layers[{i}] must be a mapping with a 'type', got {spec!r}")
        try:
            built, width = _build_layer(dict(spec), width)
        except (TypeError, ValueError) as error:
            raise ValueError(f"model.layers[{i}] ({spec['type']}): {error}") from error
        layers.extend(built)
    if not layers:
        raise ValueError("the 'model' section has no layers")
    return Sequential(*layers)


def _dense_args(spec: dict[str, Any], width: Any, kind: str) -> dict[str, Any]:
    if "units" not in spec:
        raise ValueError(f"a {kind} layer needs 'units'")
    in_features = spec.pop("in_features", width)
    if in_features is None:
        raise ValueError(f"the input width of this {kind} layer is unknown: set model.input_size "
                         "or the layer's in_features")
    return {"in_features": in_features, "units": spec.pop("units"), "bias": spec.pop("bias", True)}


def _build_layer(spec: dict[str, Any], width: Any) -> tuple[list[Module], Any]:
    from nurinet.nn import Activation, Dropout

    kind = spec.pop("type")
    key = name_key(kind)
    if key == "dense":
        args = _dense_args(spec, width, "Dense")
        layer = Linear(args["in_features"], args["units"], bias=args["bias"],
                       activation=spec.pop("activation", None),
                       activity_regularizer=_activity_regularizer(spec.pop("activity_regularizer", None)))
        _no_leftovers(spec)
        return [layer], layer.out_features
    if key in ("output", "outputlayer"):
        args = _dense_args(spec, width, "Output")
        layer = OutputLayer(args["in_features"], args["units"], spec.pop("activation", None),
                            spec.pop("loss", "cross_entropy"), bias=args["bias"])
        _no_leftovers(spec)
        return [layer], layer.units
    if key == "dropout":
        layer = Dropout(spec.pop("p", 0.5))
        _no_leftovers(spec)
        return [layer], width
    cls = get_layer_class(kind)
    parameters = inspect.signature(cls.__init__).parameters
    for name in _WIDTH_ARGS:
        if name in parameters and name not in spec and width is not None:
            spec[name] = width
    activation = spec.pop("activation", None) if "activation" not in parameters else None
    if spec.get("activity_regularizer") is not None:
        spec["activity_regularizer"] = _activity_regularizer(spec["activity_regularizer"])
    layer = cls(**{k: decode_value(v) for k, v in spec.items()})
    out = [layer] if activation is None else [layer, Activation(activation)]
    return out, getattr(layer, "out_features", width)


def _activity_regularizer(spec: Any) -> Any:
    """The regularizer a layer's ``activity_regularizer`` setting names: ``{type: L1, l1: ..}``,
    a name alone (its default arguments), the tagged form that ``nurinet.io`` writes, or None."""
    if spec is None:
        return None
    regularizers = importlib.import_module("nurinet.nn.regularizers")
    if isinstance(spec, regularizers.Regularizer):
        return spec
    if isinstance(spec, str):
        return regularizers.get_regularizer(spec)()  # its error lists the known names
    if isinstance(spec, Mapping) and set(spec) == {"__regularizer__"}:
        return regularizers.deserialize_regularizer(spec["__regularizer__"])
    if isinstance(spec, Mapping) and ("type" in spec or "name" in spec):
        args = dict(spec)
        kind = args.pop("type", None) or args.pop("name", None)
        cls = regularizers.get_regularizer(kind)
        return _construct(cls, (), args, f"activity_regularizer ({kind})")
    raise ValueError(f"activity_regularizer must be a regularizer's name or {{type: L1, l1: 0.001}}, "
                     f"got {spec!r}")


def _regularizer_spec(regularizer: Any) -> dict[str, Any]:
    """``{type: name, <arguments>}``: the configuration form of a regularizer."""
    stored = importlib.import_module("nurinet.nn.regularizers").serialize_regularizer(regularizer)
    return {"type": stored["class"], **stored["config"]}


def _no_leftovers(spec: dict[str, Any]) -> None:
    if spec:
        raise ValueError(f"unknown setting(s) {sorted(spec)}")


def _loss_of(network: Module) -> str:
    last = list(network.children())[-1] if len(list(network.children())) else network
    if not isinstance(last, OutputLayer):
        raise ValueError(  # noqa: TRY004 (bad configuration content)
            "the last layer must be an Output layer that names the loss, e.g. "
            "{type: Output, units: 10, activation: softmax, loss: cross_entropy}")
    return last.loss


def build(config: Any) -> Built:
    """Build and compile the model of a configuration, and the arguments of its ``fit``.

    Seeds ``nurinet.manual_seed(config["seed"])`` first when the configuration has a seed,
    so the initial weights are reproducible. The data is not loaded (see :func:`run`).

    Raises:
        ValueError: an unknown section, layer type, setting or name, or a setting of the wrong
            type or range (the message names the setting, its value and what is allowed).
    """
    import nurinet as nt

    config = load_config(config)
    unknown = sorted(set(config) - _SECTIONS)
    if unknown:
        raise ValueError(f"unknown configuration section(s) {unknown}; known ones are {sorted(_SECTIONS)}")
    check_settings(config)
    if config.get("seed") is not None:
        nt.manual_seed(config["seed"])
    model = Model(build_network(config.get("model")))
    updater = dict(config.get("updater") or {"name": "adam"})
    name = updater.pop("name", None) or updater.pop("type", None)
    if name is None:
        raise ValueError("the 'updater' section needs a 'name' (sgd, momentum, nesterov, adam, ...)")
    training = dict(config.get("training") or {})
    bad = sorted(set(training) - _TRAINING_KEYS)
    if bad:
        raise ValueError(f"unknown 'training' setting(s) {bad}; known ones are {sorted(_TRAINING_KEYS)}")
    try:
        model.compile(name, _loss_of(model.network), metrics=training.get("metrics", ["accuracy"]), **updater)
    except (TypeError, ValueError) as error:
        setting = "training.metrics" if "metric" in str(error) else f"updater ({name})"
        raise ValueError(f"{setting}: {error}") from error
    model.run_config = config  # kept for training_config(): data, seed and training are not in the layers
    scheduler = _scheduler(config.get("schedule"), model.optimizer)
    if config.get("regularization"):
        _regularization(config["regularization"], model.network)
    fit_args = {"epochs": training.get("epochs", 10), "batch_size": training.get("batch_size"),
                "shuffle": training.get("shuffle", True), "verbose": training.get("verbose", 1)}
    callbacks = _callbacks(config.get("callbacks") or [])
    if scheduler is not None:
        callbacks.append(_SchedulerStep(scheduler))
    return Built(model, fit_args, config, scheduler, callbacks)


# ----- optional sections -----------------------------------------------------------------------
def _scheduler(spec: Any, optimizer: Any) -> Any:
    if not spec:
        return None
    try:
        lr_scheduler = importlib.import_module("nurinet.optim.lr_scheduler")
    except ImportError as error:
        raise ValueError("the 'schedule' section needs nurinet.optim.lr_scheduler, which this "
                         "installation does not have; remove the section") from error
    spec = dict(spec)
    name = spec.pop("name", None) or spec.pop("type", None)
    if name is None:
        raise ValueError("the 'schedule' section needs a 'name' (StepLR, ExponentialLR, ...)")
    cls = lr_scheduler.get_scheduler(name)  # its error lists the known names
    return _construct(cls, (optimizer,), spec, f"schedule ({name})")


def _regularization(spec: Any, network: Module) -> None:
    """Attach ``L1L2(l1, l2)`` and an optional constraint to every parameter named in
    ``parameters`` (default: ``weight``) of every layer, as Deeplearning4j's ``l2(...)``."""
    try:
        regularizers = importlib.import_module("nurinet.nn.regularizers")
    except ImportError as error:
        raise ValueError("the 'regularization' section needs nurinet.nn.regularizers, which this "
                         "installation does not have; remove the section or use the updater's "
                         "weight_decay") from error
    spec = dict(spec)
    l1, l2 = spec.pop("l1", 0.0), spec.pop("l2", 0.0)
    names = spec.pop("parameters", ["weight"])
    constraint = dict(spec.pop("constraint", None) or {})
    _no_leftovers(spec)
    make_constraint = None
    if constraint:
        kind = constraint.pop("type", None) or constraint.pop("name", None)
        if kind is None:
            raise ValueError("regularization.constraint needs a 'type' (MaxNorm, NonNeg, ...)")
        cls = regularizers.get_constraint(kind)  # its error lists the known names
        _check_arguments(cls, (), constraint, f"regularization.constraint ({kind})")
        make_constraint = functools.partial(cls, **constraint)
    for module in network.modules():
        for name in names:
            if module._parameters.get(name) is None:
                continue
            if l1 or l2:
                regularizers.add_regularizer(module, name, regularizers.L1L2(l1, l2))
            if make_constraint is not None:
                regularizers.add_constraint(module, name, make_constraint())


def _callbacks(specs: list) -> list:
    out = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, Mapping) or "type" not in spec:
            raise ValueError(f"callbacks[{i}] must be a mapping with a 'type' (EarlyStopping, "
                             f"CSVLogger, ModelCheckpoint, checkpoint, ...), got {spec!r}")
        spec = dict(spec)
        kind = spec.pop("type")
        try:
            cls = get_callback(kind)
        except (TypeError, ValueError) as error:  # the message lists the known names
            raise ValueError(f"callbacks[{i}]: {error}") from None
        out.append(_construct(cls, (), spec, f"callbacks[{i}] ({kind})"))
    return out


def _construct(cls: type, args: tuple, kwargs: dict[str, Any], where: str) -> Any:
    """``cls(*args, **kwargs)``, after :func:`_check_arguments`."""
    _check_arguments(cls, args, kwargs, where)
    return cls(*args, **kwargs)


def _check_arguments(cls: type, args: tuple, kwargs: dict[str, Any], where: str) -> None:
    """Report a wrong or missing argument of a section as a configuration error naming the
    arguments ``cls`` takes, rather than as a TypeError from deep inside the build."""
    signature = inspect.signature(cls)
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        raise ValueError(f"{where}: {error}; {cls.__name__} takes "
                         f"{', '.join(signature.parameters)}") from None


class _SchedulerStep(Callback):
    """Steps a scheduler after each epoch (with the monitored value for ReduceLROnPlateau)."""

    def __init__(self, scheduler: Any, monitor: str = "val_loss") -> None:
        super().__init__()
        self.scheduler, self.monitor = scheduler, monitor

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if type(self.scheduler).__name__ == "ReduceLROnPlateau":
            logs = logs or {}
            self.scheduler.step(logs.get(self.monitor, logs.get("loss")))
        else:
            self.scheduler.step()


# ----- writing back ----------------------------------------------------------------------------
def model_to_config(model: Module) -> dict[str, Any]:
    """The configuration of a Sequential network or a ``Model`` wrapping one (inverse of :func:`build`).

    Dense, Output and Dropout layers are written in the short form; any other layer as
    ``{type: ClassName, <constructor arguments>}``. A compiled model adds its updater
    and metrics; a model built from a configuration keeps its data, seed and training sections.
    """
    from nurinet.nn import Dropout, Sequential

    network = model.network if isinstance(model, Model) and "network" in model._modules else model
    if not isinstance(network, Sequential):
        raise TypeError(f"model_to_config describes a Sequential network (or a Model around one), "
                         f"got {type(network).__name__}; use nurinet.io.layer_config for any module")
    layers, width, input_size = [], None, None
    for layer in network.children():
        if isinstance(layer, Linear) and input_size is None and not layers:
            input_size = width = layer.in_features
        if isinstance(layer, OutputLayer):
            spec = {"type": "Output", "units": layer.units, "activation": layer.output_activation,
                    "loss": layer.loss}
        elif type(layer) is Linear:
            spec = {"type": "Dense", "units": layer.out_features}
            if layer.activation is not None:
                spec["activation"] = _activation_label(layer.activation)
            if layer.activity_regularizer is not None:
                spec["activity_regularizer"] = _regularizer_spec(layer.activity_regularizer)
        elif type(layer) is Dropout:
            spec = {"type": "Dropout", "p": layer.p}
        else:
            spec = {"type": layer_name(layer),
                    **{k: _regularizer_spec(v) if k == "activity_regularizer" and v is not None
                       else encode_value(v, k) for k, v in constructor_args(layer).items()}}
        if spec["type"] in ("Dense", "Output"):
            if layer.in_features != width:
                spec["in_features"] = layer.in_features
            if layer.bias is None:
                spec["bias"] = False
            width = layer.out_features
        if spec.get("activation", "") is None:
            del spec["activation"]
        layers.append(spec)
    config = dict(getattr(model, "run_config", None) or {})
    config["model"] = {**({"input_size": input_size} if input_size is not None else {}), "layers": layers}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        group = optimizer.param_groups[0]
        config["updater"] = {"name": type(optimizer).__name__.lower(),
                             **{k: list(v) if isinstance(v, tuple) else v for k, v in group.items()
                                if k not in ("params", "name", "initial_lr")}}
    return config


def _activation_label(activation: Any) -> str:
    name = getattr(activation, "name", None)
    if isinstance(name, str):
        return name  # an nn.Activation built from a name
    label = activation_name(activation)
    if label is None and isinstance(activation, Module) and not list(activation.parameters()):
        label = type(activation).__name__  # a stateless activation module such as nn.ReLU()
    if label is None:
        raise ValueError(f"cannot write activation {activation!r} in a configuration: give it by name")
    return label


# ----- running ----------------------------------------------------------------------------------
def load_data(spec: Mapping[str, Any], seed: int | None) -> dict[str, Any]:
    """The ``data`` section's dataset split into ``train``, ``val`` and ``test`` ``(x, y)`` pairs."""
    import nurinet as nt
    from nurinet.data import datasets, train_val_test_split

    spec = dict(spec or {})
    name = spec.pop("dataset", None)
    split = {k: spec.pop(k) for k in ("val_fraction", "test_fraction", "stratify") if k in spec}
    loader = getattr(datasets, f"load_{name}", None) or getattr(datasets, f"make_{name}", None)
    if loader is None:
        raise ValueError(f"data.dataset {name!r} is not a bundled dataset (digits, iris) or a "
                         "generator (moons, spiral, blobs)")
    if loader.__name__.startswith("make_"):
        spec.setdefault("generator", nt.Generator(seed))
    x, y = loader(**spec)
    generator = nt.Generator(seed) if seed is not None else None
    train, val, test = train_val_test_split(x, y, generator=generator, **split)
    return {"train": train, "val": val, "test": test}


def run(config: Any, epochs: int | None = None, verbose: int | None = None,
        checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 1,
        resume: str | os.PathLike | None = None) -> dict[str, Any]:
    """Load the data, build the model and train it as the configuration says, then evaluate.

    The steps follow ``nurinet.demo.run`` (seed, data, model, fit with a shuffling
    ``Generator(seed)``), so a configuration of the demo's network reproduces its accuracy.
    It is :func:`prepare_run` (where every configuration error is raised) then
    :meth:`PreparedRun.train`.

    Args:
        config: A configuration (see :func:`load_config`).
        epochs: Override ``training.epochs``.
        verbose: Override ``training.verbose``.
        checkpoint: Write a checkpoint there every ``checkpoint_every`` epochs and after the
            last one (model, updater, scheduler, generators, the configuration as an extra).
        checkpoint_every: Epochs between checkpoints.
        resume: A checkpoint written by such a run: training continues from its epoch with its
            weights, updater, scheduler and random states (the result equals an uninterrupted run).

    Returns:
        ``{"model", "history", "accuracy", "confusion_matrix", "test_size", "train_size"}``.
    """
    return prepare_run(config, epochs, verbose, checkpoint, checkpoint_every, resume).train()


@dataclasses.dataclass
class PreparedRun:
    """A configuration's run with everything built and loaded, ready to train."""

    built: Built
    data: dict[str, Any]
    fit_args: dict[str, Any]
    callbacks: list
    shuffle: Any

    def train(self) -> dict[str, Any]:
        """Fit, then evaluate on the test split; returns what :func:`run` returns."""
        import numpy as np

        from nurinet.training.metrics import confusion_matrix

        model, data = self.built.model, self.data
        x_val, _ = data["val"]
        history = model.fit(*data["train"], validation_data=data["val"] if len(x_val) else None,
                            generator=self.shuffle, callbacks=self.callbacks, **self.fit_args)
        x_test, y_test = data["test"]
        scores = model.predict(x_test, batch_size=256)
        matrix = confusion_matrix(y_test, scores.argmax(axis=1), num_classes=scores.shape[1])
        return {"model": model, "history": history, "accuracy": float(np.trace(matrix) / matrix.sum()),
                "confusion_matrix": matrix, "test_size": len(x_test), "train_size": len(data["train"][0])}


def prepare_run(config: Any, epochs: int | None = None, verbose: int | None = None,
                checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 1,
                resume: str | os.PathLike | None = None) -> PreparedRun:
    """Everything :func:`run` does before training: check, seed, load the data, build, resume.

    Arguments as :func:`run`. A wrong configuration fails here, before any training.

    Raises:
        ValueError: a setting of the wrong type or range, an unknown name, a damaged resume file.
        FileNotFoundError: the configuration or resume file does not exist.
        ImportError: an optional piece the configuration needs is not installed.
    """
    import nurinet as nt

    config = load_config(config)
    check_settings(config)
    seed = config.get("seed")
    if seed is not None:
        nt.manual_seed(seed)
    try:
        data = load_data(config.get("data") or {}, seed)
    except TypeError as error:  # a setting the dataset's loader does not take
        raise ValueError(f"data: {error}") from error
    built = build({**config, "seed": None})  # seeded once above, before the data, as the demo
    built.model.run_config = config
    fit_args = dict(built.fit_args)
    if epochs is not None:
        fit_args["epochs"] = epochs
    if verbose is not None:
        fit_args["verbose"] = verbose
    shuffle = nt.Generator(seed)
    callbacks = list(built.callbacks)
    if checkpoint is not None:
        callbacks.append(CheckpointCallback(checkpoint, checkpoint_every, generators={"shuffle": shuffle},
                                            scheduler=built.scheduler, extra={"config": config}))
    if resume is not None:
        info = load_checkpoint(resume, built.model, built.model.optimizer, scheduler=built.scheduler,
                               generators={"shuffle": shuffle})
        fit_args["initial_epoch"] = int(info["epoch"] or 0)
    return PreparedRun(built, data, fit_args, callbacks, shuffle)
