"""Keras's saving habit for :class:`~nurinet.training.Model`: ``save``, ``load_model``,
``save_weights``, ``load_weights``.

``Model.save(path)`` writes a training checkpoint (:func:`nurinet.io.save_checkpoint`):
the weights, the architecture, the optimizer's state, and the compile settings as JSON
in the checkpoint's extras (``"nurinet.compile"``): the optimizer's class and hyperparameters,
the loss, the metrics, ``from_logits``, ``gradient_accumulation_steps``, ``use_ema`` /
``ema_momentum`` and the count of optimizer steps (Keras's ``optimizer.iterations``, which a
learning-rate schedule reads). :func:`load_model` rebuilds the model and compiles it again,
optimizer state included, so ``fit`` continues where it stopped. The moving average of
``use_ema`` lives for one ``fit`` and is copied into the weights at its end, so a file saved
between fits holds it; one saved during a ``fit`` (``ModelCheckpoint``) holds the raw weights.

A learning-rate schedule (``compile(lr=schedule)``) is code: as Keras does, the file holds its
name (``module.qualname``) and ``load_model(path, custom_objects={"name": schedule})`` gives
it back; without it, loading raises a ``ValueError`` naming it (nothing is ever imported).
nurinet's own schedulers (``nurinet.optim.lr_scheduler``) are per-epoch objects with PyTorch's
API, not ``schedule(step)`` callables, so there is no named schedule to store by configuration.
``nurinet.load(path)`` reads the same file and returns the model, uncompiled.

Only what has a name can be stored: an optimizer of ``nurinet.optim`` over all the
model's parameters in one group, a loss given by name, a loss module or a registered
loss function, and the metrics of ``nurinet.training``. Anything else (a lambda as the
loss, a metric of your own) is code, which a file never carries: ``Model.save`` warns
and the file loads uncompiled (call ``compile`` again after loading).

``save_weights`` / ``load_weights`` write and read the ``state_dict`` alone (a plain
safetensors file, the same as ``nurinet.save(model.state_dict(), path)``).
"""

from __future__ import annotations

import inspect
import json
import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from nurinet.io.checkpoint import load_checkpoint, save_checkpoint
from nurinet.io.registry import allowing, layer_config
from nurinet.io.safetensors import CorruptFileError, read_checked_header
from nurinet.io.serialize import load, save
from nurinet.io.validation import build_guarded, check_architecture, parse_json
from nurinet.nn.module import IncompatibleKeys, Module
from nurinet.training.model import Model

COMPILE_KEY = "nurinet.compile"  # the checkpoint extra that holds the compile settings (a JSON string)
_METRIC_NUMBER_LIMIT = 2**20  # a metric's saved number (num_classes, k) larger than this is crafted


class NotStorable(ValueError):
    """A compile setting is code (a lambda, a class of the user's) that a file cannot hold."""


# ----- compile settings -> JSON --------------------------------------------------------------------
def compile_record(model: Module, include_optimizer: bool = True) -> dict[str, Any] | None:
    """The compile settings of ``model`` as JSON data, or None when it is not compiled.

    Returns:
        ``{"optimizer": {"class": "Adam", "hyperparameters": {...}}, "optimizer_state": bool,
        "loss": {"name": ...} | {"layer": ...} | {"functional": ...} | {"function": ...}, "metrics": [...],
        "from_logits": ...}``, or ``{"stored": False, "reason": ...}`` when a setting cannot
        be stored (a callable).
    """
    if not isinstance(model, Model) or model.loss_fn is None:
        return None
    try:
        return {
            "stored": True,
            "optimizer": _optimizer_record(model),
            "optimizer_state": bool(include_optimizer),
            "loss": _loss_record(model.loss_fn),
            "metrics": [_metric_record(metric) for metric in model.compiled_metrics],
            "from_logits": model.from_logits,
            **_steps_record(model),
        }
    except NotStorable as reason:
        return {"stored": False, "reason": str(reason)}


def _steps_record(model: Model) -> dict[str, Any]:
    """Gradient accumulation, the moving average of the weights and the learning-rate schedule."""
    steps = model.optimizer_steps
    return {
        "gradient_accumulation_steps": int(steps.accumulation_steps),
        "use_ema": model.ema_momentum is not None,
        "ema_momentum": 0.99 if model.ema_momentum is None else float(model.ema_momentum),
        "schedule": None if steps.schedule is None else {"callable": schedule_name(steps.schedule)},
        "iterations": int(steps.iterations),
    }


def schedule_name(schedule: Any) -> str:
    """The name a learning-rate schedule is saved under: ``module.qualname`` of a function, or of
    the class of a callable object (``load_model(custom_objects=...)`` gives it back)."""
    owner = schedule if inspect.isfunction(schedule) or inspect.ismethod(schedule) else type(schedule)
    qualname = getattr(owner, "__qualname__", None) or getattr(owner, "__name__", None) or repr(owner)
    module = getattr(owner, "__module__", None)
    return f"{module}.{qualname}" if module else str(qualname)


def _optimizer_record(model: Model) -> dict[str, Any]:
    from nurinet import optim

    optimizer = model.optimizer
    cls = type(optimizer)
    if getattr(optim, cls.__name__, None) is not cls:
        raise NotStorable(f"the optimizer {cls.__qualname__} is not one of nurinet.optim's")
    groups = optimizer.param_groups
    if len(groups) != 1 or [id(p) for p in groups[0]["params"]] != [id(p) for p in model.parameters()]:
        raise NotStorable("the optimizer does not hold all the model's parameters in one group "
                          "(compile(optimizer='name') does)")
    return {"class": cls.__name__, "hyperparameters": _json_hyperparameters(cls, groups[0])}


def _json_hyperparameters(cls: type, group: dict[str, Any]) -> dict[str, Any]:
    """The group's constructor arguments that JSON holds (``load_state_dict`` restores all)."""
    accepted = inspect.signature(cls.__init__).parameters
    found = {}
    for key, value in group.items():
        value = list(value) if isinstance(value, tuple) else value
        if key in accepted and key != "params" and _is_json_scalar_or_list(value):
            found[key] = value
    return found


def _is_json_scalar_or_list(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_json_scalar_or_list(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _loss_record(loss: Any) -> dict[str, Any]:
    from nurinet.functional.loss_registry import loss_info
    from nurinet.training.outputs import Objective

    if isinstance(loss, Objective):
        return {"name": loss.info.name}
    if isinstance(loss, Module):
        try:
            return {"layer": layer_config(loss)}
        except (ValueError, TypeError) as error:
            raise NotStorable(f"the loss module cannot be stored: {error}") from None
    name = getattr(loss, "__name__", None)
    if isinstance(name, str) and _functional_loss(name) is loss:
        return {"functional": name}
    try:
        info = loss_info(name) if isinstance(name, str) else None
    except ValueError:  # not a loss name: a function of the user's
        info = None
    if info is not None and info.fn is loss:
        return {"function": name}
    raise NotStorable(f"the loss {loss!r} is a function of your own; a file stores a loss by name "
                      "(compile(loss='cross_entropy')), a loss module, or a function registered "
                      "with nurinet.functional.register_loss")


def _metric_record(metric: Any) -> dict[str, Any]:
    from nurinet import training

    cls = type(metric)
    if getattr(training, cls.__name__, None) is not cls:
        raise NotStorable(f"the metric {cls.__qualname__} is not one of nurinet.training's")
    config = {}
    for name, parameter in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        value = getattr(metric, name, inspect.Parameter.empty)
        named = parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        if named and _is_json_scalar_or_list(value):  # kept under its own name: storable
            config[name] = value
    return {"class": cls.__name__, "config": config}


# ----- JSON -> compile settings --------------------------------------------------------------------
def compile_from_record(model: Model, record: dict[str, Any], path: str,
                        custom_objects: Mapping[str, Any] | None = None) -> None:
    """Compile ``model`` as ``record`` (from :func:`compile_record`) says.

    Args:
        model: The model to compile.
        record: The saved compile settings.
        path: The file, for messages.
        custom_objects: ``{name: callable}`` giving back a learning-rate schedule of the user's.

    Raises:
        CorruptFileError: the record is malformed (a crafted file).
        ValueError: the record names a learning-rate schedule that ``custom_objects`` lacks.
    """
    schedule = _schedule_from_record(record.get("schedule") if isinstance(record, dict) else None,
                                     path, custom_objects)
    try:
        optimizer = record["optimizer"]
        loss = _loss_from_record(record["loss"], path)
        metrics = [_metric_from_record(m, path) for m in record["metrics"]]
        hyperparameters = dict(optimizer["hyperparameters"])
        if schedule is not None:
            hyperparameters.pop("learning_rate", None)
            hyperparameters["lr"] = schedule
        model.compile(optimizer=optimizer["class"], loss=loss, metrics=metrics,
                      from_logits=record["from_logits"],
                      gradient_accumulation_steps=record.get("gradient_accumulation_steps"),
                      use_ema=record.get("use_ema", False), ema_momentum=record.get("ema_momentum", 0.99),
                      **hyperparameters)
        iterations = record.get("iterations", 0)
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ValueError(f"iterations must be a whole number >= 0, got {iterations!r}")
        model.optimizer_steps.iterations = iterations
    except CorruptFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CorruptFileError(f"{path!r} cannot be loaded: its compile settings are not what "
                               f"Model.save writes ({type(error).__name__}: {error})") from None


def _schedule_from_record(record: Any, path: str, custom_objects: Mapping[str, Any] | None) -> Any:
    """The learning-rate schedule a file names, taken from ``custom_objects`` (never imported).

    The name is looked up as saved (``module.qualname``), then by its qualified name, then by
    its last part, so ``custom_objects={"warmup": warmup}`` finds ``mypackage.train.warmup``.
    """
    if record is None:
        return None
    name = record.get("callable") if isinstance(record, dict) else None
    if not isinstance(name, str):
        raise CorruptFileError(f"{path!r} cannot be loaded: its learning-rate schedule is not what "
                               "Model.save writes")
    objects = dict(custom_objects or {})
    for key in _lookup_names(name):
        if key in objects:
            found = objects[key]
            if not callable(found):
                raise TypeError(f"load_model: custom_objects[{key!r}] must be the schedule "
                                f"schedule(step) -> float, got {type(found).__name__}")
            return found
    raise ValueError(f"load_model: {path!r} was compiled with the learning-rate schedule {name!r}, a "
                     "callable of your own that a file cannot hold; pass it back with "
                     f"load_model(path, custom_objects={{{_lookup_names(name)[-1]!r}: <the schedule>}}), "
                     "or load_model(path, compile=False) and compile again")


def _lookup_names(name: str) -> list[str]:
    """``a.b.Outer.fn`` -> ``["a.b.Outer.fn", "Outer.fn", "fn"]`` (the module part is a guess:
    the qualified name may itself hold dots, ``Outer.<locals>.fn``)."""
    parts = name.split(".")
    return [".".join(parts[i:]) for i in range(len(parts))]


def _loss_from_record(record: dict[str, Any], path: str) -> Any:
    from nurinet.functional.loss_registry import get_loss

    if "name" in record:
        return str(record["name"])
    if "functional" in record:
        found = _functional_loss(record["functional"])
        if found is None:
            raise CorruptFileError(f"{path!r} cannot be loaded: its loss {record['functional']!r} is "
                                   "not a function of nurinet.functional")
        return found
    if "function" in record:
        return get_loss(str(record["function"]))
    # A loss module holds no tensors in the file: it may draw only the build slack.
    check_architecture(record["layer"], {}, path)
    return build_guarded(record["layer"], path, 0)


def _functional_loss(name: Any) -> Any:
    """The public function ``nurinet.functional.<name>`` (``F.cross_entropy``), or None."""
    from nurinet import functional

    found = getattr(functional, name, None) if name in getattr(functional, "__all__", ()) else None
    return found if inspect.isfunction(found) else None


def _metric_from_record(record: dict[str, Any], path: str) -> Any:
    from nurinet.training.metrics import METRICS

    config = dict(record["config"])
    for key, value in config.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and abs(value) > _METRIC_NUMBER_LIMIT:
            raise CorruptFileError(f"{path!r} cannot be loaded: metric {record['class']!r} has "
                                   f"{key} = {value!r}, larger than {_METRIC_NUMBER_LIMIT:,}")
    return METRICS.get(str(record["class"]))(**config)


# ----- Model.save / load_model -----------------------------------------------------------------------
def save_model(model: Model, path: str | os.PathLike, include_optimizer: bool = True) -> None:
    """Write ``model`` with its compile settings and optimizer state (``Model.save``).

    Args:
        model: The model (compiled or not).
        path: Destination (``*.safetensors`` by convention).
        include_optimizer: Store the optimizer's state (moments, step counts) too.

    Raises:
        ValueError: a layer cannot be described (see ``nurinet.save``).

    Warns:
        UserWarning: a compile setting is a callable a file cannot hold; the file loads
            uncompiled.
    """
    layer_config(model)  # the architecture's own error, before save_checkpoint would drop it
    record = compile_record(model, include_optimizer)
    if record is not None and not record["stored"]:
        warnings.warn(f"Model.save: {record['reason']}; {os.fspath(path)!r} is saved without its "
                      "compile settings, so load_model returns it uncompiled (call compile after "
                      "loading)", UserWarning, stacklevel=3)
    optimizer = model.optimizer if record and record["stored"] and include_optimizer else None
    save_checkpoint(path, model, optimizer, extra=compile_extra(model, include_optimizer, record))


def compile_extra(model: Module, include_optimizer: bool = True,
                  record: dict[str, Any] | None = None) -> dict[str, str]:
    """The checkpoint extras that keep ``model``'s compile settings (empty when uncompiled)."""
    record = record if record is not None else compile_record(model, include_optimizer)
    return {} if record is None else {COMPILE_KEY: json.dumps(record, separators=(",", ":"))}


def _weights_file_kind(path: str) -> str | None:
    """The file's ``nurinet.format`` (``"model"``, ``"checkpoint"``, ``"state_dict"``, or None for a
    plain safetensors file); a saved structure, which holds no one model's weights, is refused."""
    header, _ = read_checked_header(path)
    kind = (header.get("__metadata__") or {}).get("nurinet.format")
    if kind == "structure":
        raise ValueError(f"{path!r} holds a saved structure (e.g. a dict of state_dicts, written by "
                         "nurinet.save), not one model's weights: load it with nurinet.load(path) and pass "
                         "its entry to model.load_state_dict(...)")
    return kind


def load_model(path: str | os.PathLike, *, compile: bool = True,
               classes: Iterable[type] | None = None,
               allowed_modules: Iterable[str] | None = None,
               custom_objects: Mapping[str, Any] | None = None) -> Module:
    """Load a model written by ``Model.save`` (or ``ModelCheckpoint``, ``nurinet.save``),
    compiled as it was saved, with its optimizer state.

    The compile options ``gradient_accumulation_steps``, ``use_ema`` / ``ema_momentum`` and the
    count of optimizer steps are restored. A learning-rate schedule (``compile(lr=schedule)``) is
    code: the file holds only its name, and ``custom_objects`` gives it back, as in Keras.

    Args:
        path: The file.
        compile: Compile the model with the saved settings (Keras's argument).
        classes: Your own ``Module`` classes the file may name (see ``nurinet.load``).
        allowed_modules: Packages the file's classes may be imported from.
        custom_objects: Keras's argument: ``{name: object}``. A learning-rate schedule is found
            under its saved name (``"mypackage.train.warmup"``), its qualified name or its
            bare name (``"warmup"``); ``Module`` subclasses among the values are added to
            ``classes``. Nothing is ever imported to find a name.

    Returns:
        The model; compiled when the file holds compile settings.

    Raises:
        CorruptFileError: the file is damaged or crafted.
        ValueError: the file holds weights only (use ``model.load_weights``), or it was compiled
            with a learning-rate schedule that ``custom_objects`` does not give.

    Warns:
        UserWarning: the model was saved compiled with settings a file cannot hold.
    """
    path = os.fspath(path)
    if custom_objects is not None and not isinstance(custom_objects, Mapping):
        raise TypeError(f"load_model: custom_objects must be a dict {{name: object}}, got "
                        f"{type(custom_objects).__name__}")
    layer_classes = [v for v in (custom_objects or {}).values() if isinstance(v, type) and issubclass(v, Module)]
    if layer_classes:
        classes = [*((classes,) if isinstance(classes, type) else tuple(classes or ())), *layer_classes]
    kind = _weights_file_kind(path)
    if kind not in ("checkpoint", "model"):
        raise ValueError(f"{path!r} holds weights only (a state_dict), no architecture: build the "
                         "model, then call model.load_weights(path)")
    if kind == "model":
        return load(path, classes=classes, allowed_modules=allowed_modules)
    with allowing(classes, allowed_modules):
        restored = load_checkpoint(path, restore_default_generator=False)
        model, record = restored["model"], _saved_record(restored["extra"], path)
        if compile and record is not None and isinstance(model, Model):
            _compile_saved(model, record, path, custom_objects)
    return model


def _saved_record(extra: Any, path: str) -> dict[str, Any] | None:
    text = extra.get(COMPILE_KEY) if isinstance(extra, dict) else None
    if text is None:
        return None
    record = parse_json(text, path, "compile settings") if isinstance(text, str) else text
    if not isinstance(record, dict) or not isinstance(record.get("stored"), bool):
        raise CorruptFileError(f"{path!r} cannot be loaded: its compile settings are not a mapping "
                               "written by Model.save")
    return record


def _compile_saved(model: Model, record: dict[str, Any], path: str,
                   custom_objects: Mapping[str, Any] | None = None) -> None:
    if not record["stored"]:
        warnings.warn(f"load_model: {path!r} was saved without its compile settings "
                      f"({record.get('reason')}); the model is returned uncompiled",
                      UserWarning, stacklevel=3)
        return
    compile_from_record(model, record, path, custom_objects)
    if record.get("optimizer_state"):
        load_checkpoint(path, model=model, optimizer=model.optimizer, restore_default_generator=False)


# ----- weights only ----------------------------------------------------------------------------------
def save_weights(model: Module, path: str | os.PathLike) -> None:
    """Write ``model``'s ``state_dict`` alone (Keras's ``save_weights``)."""
    save(model.state_dict(), path)


def load_weights(model: Module, path: str | os.PathLike, strict: bool = True) -> IncompatibleKeys:
    """Load weights into ``model`` by ``state_dict`` keys (Keras's ``load_weights``).

    Reads a weights file (``save_weights``, ``nurinet.save(model.state_dict())``, any
    safetensors file with the same keys), a model file or a checkpoint.

    Args:
        model: The model to fill, in place.
        path: The file.
        strict: Require the keys to match exactly (shapes must always match).

    Returns:
        The missing and unexpected keys (both empty when ``strict``).

    Raises:
        ValueError: the keys or shapes do not match (all mismatches listed).
    """
    path = os.fspath(path)
    kind = _weights_file_kind(path)
    if kind in ("checkpoint", "model") and strict:
        load(path, model=model)  # a checkpoint's or model file's weights, strictly
        return IncompatibleKeys([], [])
    weights = load(path) if kind not in ("checkpoint", "model") else _file_weights(path, kind)
    try:
        return model.load_state_dict(weights, strict=strict)
    except RuntimeError as error:
        raise ValueError(f"the weights in {path!r} do not fit {type(model).__name__}: {error}") from None


def _file_weights(path: str, kind: str) -> dict[str, Any]:
    """The weights of a model file or a checkpoint, by ``state_dict`` key."""
    from nurinet.io.safetensors import load_file

    tensors, _ = load_file(path)
    if kind == "model":
        return tensors
    return {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
