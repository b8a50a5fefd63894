"""A Keras-like training layer: ``Model.compile`` / ``fit`` / ``evaluate`` / ``predict``.

``Model`` is an ``nn.Module``: subclass it and write ``forward``, or wrap any
module with ``Model(network)``. ``fit`` hands each batch to ``train_step``,
which a GAN or a DQN overrides while keeping ``fit``, callbacks and the progress
bar.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Tensor
from nurinet.backend import to_numpy
from nurinet.nn.module import Module, module_device
from nurinet.nn.regularizers import (
    add_activity_penalties,
    attached_constraints,
    attached_regularizers,
    penalty_or_none,
)
from nurinet.training.batch_methods import (
    closure_train_step,
    fit_batch_size,
    holds_samples,
    needs_closure,
)
from nurinet.training.callbacks import Callback, CallbackList, History, ProgressBar
from nurinet.training.ema import ExponentialMovingAverage
from nurinet.training.fit_options import (
    EpochBatches,
    FitOptions,
    fit_options,
    sample_count,
    split_validation,
    unpack_batch,
    validation_parts,
)
from nurinet.training.loss_weights import (
    check_class_weight_loss,
    check_sample_weight,
    check_weightable,
    class_sample_weights,
    weighted_loss,
)
from nurinet.training.metrics import Mean, Metric, get_metric
from nurinet.training.optimizer_steps import (
    OptimizerSteps,
    check_accumulation,
    split_schedule,
)
from nurinet.training.outputs import (
    Objective,
    OutputSpec,
    classes,
    describe_output,
    logits,
    probabilities,
    update_metrics,
)


class Model(Module):
    """A trainable model with Keras's workflow.

    Args:
        network: A module to train; omit it when subclassing and writing ``forward``.
    """

    def __init__(self, network: Module | None = None) -> None:
        super().__init__()
        if network is not None:
            self.network = network
        self.optimizer: Any = None
        self.loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None
        self.from_logits: bool | None = None
        self.compiled_metrics: list[Metric] = []
        self.stop_training = False
        self.optimizer_steps = OptimizerSteps(None)
        self.ema_momentum: float | None = None
        self._class_weight: dict[int, float] | None = None

    def forward(self, *inputs: Any) -> Any:
        if "network" not in self._modules:
            raise NotImplementedError(
                f"{type(self).__name__} has no forward: pass a network to Model(network) "
                "or subclass Model and define forward"
            )
        return self.network(*inputs)

    # ----- configuration ------------------------------------------------------------
    def compile(self, optimizer: Any = "adam", loss: Any = None, metrics: Sequence[Any] = (),
                from_logits: bool | None = None, *, gradient_accumulation_steps: int | None = None,
                use_ema: bool = False, ema_momentum: float = 0.99, **optimizer_kwargs: Any) -> None:
        """Choose the optimizer, the loss and the metrics.

        A loss given by name is applied as the name means (``docs/losses.md``): after a final
        ``nn.Softmax``/``nn.Sigmoid`` (or a softmax/sigmoid output layer) the cross-entropy
        of those probabilities is computed from their logits, never with a second softmax.

        Keras 3 puts gradient accumulation, learning-rate schedules and the moving average of
        the weights on its optimizer; nurinet's optimizers are PyTorch's, so they are given
        here, under Keras's names (``training/optimizer_steps.py``, ``training/ema.py``).

        Args:
            optimizer: A name (``"sgd"``, ``"adam"``...), an Optimizer, or a
                callable taking the parameters and returning an Optimizer.
            loss: A name (``"sparse_categorical_crossentropy"``, ``"MCXENT"``, ``"mse"``...),
                a loss module or a function ``loss(prediction, target) -> scalar Tensor``.
            metrics: Names or :class:`Metric` objects reported during training.
            from_logits: What a network without a final softmax/sigmoid outputs: True for
                logits, False for probabilities; None follows the loss (the cross-entropy
                names take logits, ``binary_crossentropy`` probabilities).
            gradient_accumulation_steps: Sum the gradients of this many consecutive batches
                (each loss divided by it) and step the optimizer once on them: the update of
                their mean. An epoch's last, unfinished group is applied at the epoch's end as
                the mean of its batches. None or 1: a step per batch.
            use_ema: Keep an exponential moving average of the weights during ``fit`` and copy
                it into the model at the end of each ``fit`` (an
                :class:`ExponentialMovingAverage` callback is added).
            ema_momentum: The average's decay, in [0, 1).
            **optimizer_kwargs: Hyperparameters for an optimizer given by name (``lr=0.01``).
                ``lr`` (or ``learning_rate``) may be a schedule ``schedule(step) -> float``, as
                Keras's ``LearningRateSchedule``: evaluated before every optimizer step with the
                number of steps taken since compile (from 0); with an Optimizer given, it
                drives that optimizer's rates.
        """
        if from_logits not in (None, True, False):
            raise TypeError(f"compile: from_logits must be True, False or None, got {from_logits!r}")
        if use_ema not in (True, False):
            raise TypeError(f"compile: use_ema must be True or False, got {use_ema!r}")
        if use_ema:
            ExponentialMovingAverage(ema_momentum)  # checks the momentum now, not at fit
        schedule, optimizer_kwargs = split_schedule(optimizer, optimizer_kwargs)
        self.optimizer = _resolve_optimizer(optimizer, self.parameters(), optimizer_kwargs)
        self.optimizer_steps = OptimizerSteps(
            self.optimizer, check_accumulation(gradient_accumulation_steps, self.optimizer), schedule)
        self.ema_momentum = float(ema_momentum) if use_ema else None
        self.from_logits = from_logits
        self.loss_fn = _resolve_loss(loss, from_logits)
        self.compiled_metrics = [get_metric(m) for m in metrics]
        self.loss_tracker = Mean("loss")
        self.regularization_tracker = Mean("regularization")

    def _require_compiled(self, what: str) -> None:
        if self.loss_fn is None:
            raise RuntimeError(f"call model.compile(optimizer=..., loss=...) before model.{what}()")

    def training_config(self) -> dict[str, Any]:
        """This model as a training configuration (see
        :func:`nurinet.training.config.model_to_config`): its Sequential network's layers,
        the updater when compiled, and the data and training sections when it was built
        from a configuration."""
        from nurinet.training.config import model_to_config  # it imports this module

        return model_to_config(self)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as every layer's ``get_config`` (``nurinet.save`` rebuilds
        ``Model(network)`` from them); the training configuration is :meth:`training_config`.

        A subclass with other constructor arguments overrides this, or is registered with
        ``nurinet.io.register_layer``, which records them.
        """
        return {"network": self._modules.get("network")}

    # ----- saving (Keras's names; nurinet/training/saving.py) ----------------------------
    def save(self, path: Any, include_optimizer: bool = True) -> None:
        """Write the model, its compile settings and its optimizer state to ``path``;
        :func:`nurinet.training.load_model` reads it back compiled."""
        from nurinet.training.saving import save_model  # it imports this module

        save_model(self, path, include_optimizer=include_optimizer)

    def save_weights(self, path: Any) -> None:
        """Write the ``state_dict`` alone to ``path`` (a safetensors file)."""
        from nurinet.training.saving import save_weights

        save_weights(self, path)

    def load_weights(self, path: Any, strict: bool = True) -> Any:
        """Load weights by ``state_dict`` keys from ``path`` (a weights, model or checkpoint
        file); a key or shape mismatch raises ``ValueError`` listing every one."""
        from nurinet.training.saving import load_weights

        return load_weights(self, path, strict=strict)

    def summary(self, input_shape: Any, print_fn: Callable[[str], Any] | None = None, **kwargs: Any) -> None:
        """Print the table of layers, output shapes and parameter counts, as Keras's ``summary()``.

        It returns None, as Keras does: a notebook would otherwise show the table
        twice, printed and then as the cell's value. :func:`nurinet.summary.summary`
        returns the table as an object (``.rows``, ``.total_params``) without printing.

        Args:
            input_shape: The shape of one sample, without the batch dim.
            print_fn: Called with each line of the table (Keras's ``print_fn``);
                ``print`` by default. ``lines.append`` collects them.
            **kwargs: Passed to :func:`nurinet.summary.summary` (``batch_size``, ``dtype``).
        """
        from nurinet.summary import summary

        summary(self, input_shape, print_fn=print_fn or print, **kwargs)

    # ----- steps -------------------------------------------------------------------------
    def compute_loss(self, prediction: Tensor, target: Tensor, sample_weight: Any = None) -> Tensor:
        """The training objective; override to add terms (auxiliary losses).

        The penalties attached with ``nn.regularizers.add_regularizer`` and the activity
        penalties the forward recorded are added here (and logged as ``"regularization"``).

        Args:
            prediction: The model's output.
            target: The targets.
            sample_weight: ``(N,)`` weights of the samples, or None: the loss is then Keras's
                ``sum_i w_i loss_i / N`` (see ``training/loss_weights.py``). The penalties are
                not weighted.
        """
        if sample_weight is None:
            loss = self.loss_fn(prediction, target)  # type: ignore[misc]
        else:
            loss = weighted_loss(self.loss_fn, prediction, target, sample_weight)
        penalty = penalty_or_none(self._attachments()[0])
        penalty = add_activity_penalties(self, penalty)  # the layers' activity_regularizer terms
        self._last_penalty = None if penalty is None else penalty.item()
        return loss if penalty is None else loss + penalty

    def train_step(self, batch: tuple[Tensor, ...]) -> dict[str, float]:
        """One optimization step on one batch ``(x, y)`` or ``(x, y, sample_weight)``; returns
        the running logs. With ``gradient_accumulation_steps=k`` the optimizer steps on every
        ``k``-th batch (``training/optimizer_steps.py``)."""
        if needs_closure(self.optimizer):  # L-BFGS, CG, ...: a closure (training/batch_methods.py)
            return self._closure_step(batch)
        x, y, sample_weight = unpack_batch(batch)
        prediction = self(x)
        sample_weight = self._training_weights(prediction, y, sample_weight)
        loss = self.compute_loss(prediction, y) if sample_weight is None \
            else self.compute_loss(prediction, y, sample_weight=sample_weight)
        self.optimizer_steps.minimize(self, loss)  # backward, step, constraints (MaxNorm...)
        return self._update_metrics(loss, prediction, y)

    def _closure_step(self, batch: Any) -> dict[str, float]:
        if self._class_weight is not None or unpack_batch(batch)[2] is not None:
            raise ValueError(f"fit: class_weight and sample_weight need a first-order optimizer; "
                             f"{type(self.optimizer).__name__} evaluates the loss through a closure")
        self.optimizer_steps.before_step(self.optimizer)
        logs = closure_train_step(self, batch[:2])
        self.optimizer_steps.after_step()
        return logs

    def _training_weights(self, prediction: Tensor, y: Any, sample_weight: Any) -> Any:
        """The batch's sample weights times its class weights (during ``fit(class_weight=...)``)."""
        if self._class_weight is None:
            return sample_weight
        weights = class_sample_weights(self._class_weight, prediction, y)
        if sample_weight is not None:
            weights = weights * _numpy(sample_weight).reshape(len(weights))
        return weights

    def _attachments(self) -> tuple[list, list]:
        """The (parameter, regularizer) and (parameter, constraint) pairs: collected once per
        fit/evaluate (walking the module tree every step costs ~0.1 ms on a deep model)."""
        cached = self.__dict__.get("_attachment_cache")
        if cached is not None:
            return cached
        return attached_regularizers(self), attached_constraints(self)

    @contextlib.contextmanager
    def _cached_attachments(self) -> Iterator[None]:
        previous = self.__dict__.get("_attachment_cache")
        self.__dict__["_attachment_cache"] = (attached_regularizers(self), attached_constraints(self))
        try:
            yield
        finally:
            self.__dict__["_attachment_cache"] = previous

    def test_step(self, batch: tuple[Tensor, ...]) -> dict[str, float]:
        """Loss and metrics on one batch ``(x, y)`` or ``(x, y, sample_weight)``, without training."""
        x, y, sample_weight = unpack_batch(batch)
        prediction = self(x)
        loss = self.compute_loss(prediction, y) if sample_weight is None \
            else self.compute_loss(prediction, y, sample_weight=sample_weight)
        return self._update_metrics(loss, prediction, y)

    def predict_step(self, x: Tensor) -> Tensor:
        return self(x)

    def output_spec(self, output: Any) -> OutputSpec:
        """What ``output`` (one of this model's outputs) holds: logits, probabilities,
        log-probabilities or values (see :mod:`nurinet.training.outputs`)."""
        loss = self.loss_fn
        info = loss.info if isinstance(loss, Objective) else None
        return describe_output(output, info, self.from_logits)

    def _update_metrics(self, loss: Tensor, prediction: Tensor, y: Tensor) -> dict[str, float]:
        self.loss_tracker.update_state(loss.item(), len(y))
        if getattr(self, "_last_penalty", None) is not None:
            self.regularization_tracker.update_state(self._last_penalty, len(y))
        if self.compiled_metrics:
            update_metrics(self.compiled_metrics, prediction, self.output_spec(prediction), y.array)
        return self._logs()

    def _logs(self, prefix: str = "") -> dict[str, float]:
        logs = {prefix + "loss": self.loss_tracker.result()}
        if self.regularization_tracker.count:
            logs[prefix + "regularization"] = self.regularization_tracker.result()
        for metric in self.compiled_metrics:
            logs[prefix + metric.name] = metric.result()
        return logs

    def _reset_metrics(self) -> None:
        self.loss_tracker.reset_state()
        self.regularization_tracker.reset_state()
        for metric in self.compiled_metrics:
            metric.reset_state()

    # ----- loops ------------------------------------------------------------------------
    def fit(self, x: Any = None, y: Any = None, batch_size: int | None = None, epochs: int = 1,
            verbose: int | str = "auto", callbacks: Sequence[Callback] = (),
            validation_split: float = 0.0, validation_data: Any = None, shuffle: bool = True,
            initial_epoch: int = 0, generator: Any = None, *, class_weight: dict[int, float] | None = None,
            sample_weight: Any = None, steps_per_epoch: int | None = None,
            validation_steps: int | None = None, validation_freq: int = 1) -> History:
        """Train for ``epochs`` passes over the data.

        The options after ``generator`` are keyword-only, with Keras's names and meanings;
        ``docs/porting.md`` lists where nurinet had to choose.

        Args:
            x: Inputs (array or Tensor), or a DataLoader yielding ``(x, y)`` or
                ``(x, y, sample_weight)`` batches.
            y: Targets, when ``x`` is an array.
            batch_size: Samples per gradient step (arrays only); None: 32, or the whole
                training set for a batch optimizer (LBFGS, ConjugateGradient, ...), whose
                epochs are then its steps (see ``training/batch_methods.py``).
            epochs: Number of passes over the training data.
            verbose: 0 silent, 1 progress bar on stdout (one line per epoch when
                neither a terminal nor a notebook), 2 one line per epoch; "auto" is 1.
            callbacks: Callbacks; a :class:`History` is always added and returned.
            validation_split: Fraction of the arrays (taken from the end, before
                shuffling, as Keras does) held out for validation, ``sample_weight`` included.
            validation_data: ``(x_val, y_val)``, ``(x_val, y_val, val_sample_weight)`` or a
                DataLoader, evaluated after each epoch (see ``validation_freq``).
            shuffle: Reshuffle the training data each epoch.
            initial_epoch: Epoch to start counting from (when resuming).
            generator: A ``nurinet.Generator`` for the shuffling order.
            class_weight: ``{class index: weight}``: each training sample's loss is multiplied
                by the weight of its class (integer or one-hot targets; an unlisted class
                weighs 1). Combined with ``sample_weight`` by multiplication.
            sample_weight: ``(n,)`` weights of the samples of ``x`` (arrays only), shuffled
                and split with them. The batch loss is Keras's ``sum_i w_i loss_i / N``;
                the metrics are not weighted (``training/loss_weights.py``).
            steps_per_epoch: Batches per epoch; the next epoch continues where this one
                stopped, and finite data starts over when it runs out (Keras 3). None: one pass.
            validation_steps: Batches per validation, read from the validation data's start
                each time. None: all of it.
            validation_freq: Validate after every this many epochs (a whole number >= 1).

        Returns:
            The History, whose ``history`` maps each log name to its per-epoch values.
        """
        self._require_compiled("fit")
        verbose = _verbosity(verbose)
        _check_epochs(epochs, initial_epoch)
        options = fit_options(steps_per_epoch, validation_steps, validation_freq, class_weight)
        train, val = self._fit_data(x, y, batch_size, shuffle, generator, sample_weight,
                                    validation_split, validation_data, options)
        history = History()
        extra = [ProgressBar(verbose)] if verbose else []
        ema = [] if self.ema_momentum is None else [ExponentialMovingAverage(self.ema_momentum)]
        cbs = CallbackList([*ema, *callbacks, *extra, history], self,
                           {"epochs": epochs, "steps": train.length(), "verbose": verbose})
        self.stop_training = False
        cbs.call("on_train_begin", None)
        logs: dict[str, float] = {}
        with self._cached_attachments(), self._weighting_classes(options.class_weight):
            for epoch in range(initial_epoch, epochs):
                logs = self._run_epoch(epoch, train, val if options.validates(epoch) else None, cbs)
                if self.should_stop():
                    break
        cbs.call("on_train_end", logs)
        return history

    def _fit_data(self, x: Any, y: Any, batch_size: int | None, shuffle: bool, generator: Any,
                  sample_weight: Any, validation_split: float, validation_data: Any,
                  options: FitOptions) -> tuple[EpochBatches, EpochBatches | None]:
        """The training and validation batches of ``fit``, weights included."""
        x, y, sample_weight = _as_arrays(x, y, sample_weight)
        if validation_split and validation_data is None:
            x, y, sample_weight, validation_data = split_validation(x, y, sample_weight, validation_split)
        elif not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        if sample_weight is not None and not holds_samples(x):
            raise ValueError("fit: sample_weight goes with arrays x and y; a DataLoader gives its weights "
                             "as the third item of each batch (x, y, sample_weight)")
        if sample_weight is not None or options.class_weight is not None:
            check_weightable(self.loss_fn, "class_weight" if sample_weight is None else "sample_weight")
        if options.class_weight is not None:
            check_class_weight_loss(self.loss_fn)
        batch_size = fit_batch_size(self.optimizer, x, batch_size)
        train = _loader(x, y, batch_size, shuffle, generator, "fit", needs_targets=True,
                        sample_weight=sample_weight)
        if validation_data is None:
            return EpochBatches(train, options.steps_per_epoch), None
        vx, vy, vw = validation_parts(validation_data)
        if vw is not None:
            check_weightable(self.loss_fn, "the validation sample weights")
        val = _loader(vx, vy, batch_size, False, None, "fit (validation_data)", needs_targets=True,
                      sample_weight=vw)
        return (EpochBatches(train, options.steps_per_epoch),
                EpochBatches(val, options.validation_steps, restart=True, who="fit (validation_data)"))

    @contextlib.contextmanager
    def _weighting_classes(self, class_weight: dict[int, float] | None) -> Iterator[None]:
        previous, self._class_weight = self._class_weight, class_weight
        try:
            yield
        finally:
            self._class_weight = previous

    def should_stop(self) -> bool:
        """Whether ``fit`` stops now: read after every callback has seen the batch or epoch.

        ``stop_training`` on its own; data-parallel training (``DistributedCallback``) makes it
        the decision of any process, so that every process stops at the same step.
        """
        return self.stop_training

    def _run_epoch(self, epoch: int, train: EpochBatches, val: EpochBatches | None,
                   cbs: CallbackList) -> dict[str, float]:
        self.train()
        self._reset_metrics()
        cbs.call("on_epoch_begin", epoch, None)
        logs: dict[str, float] = {}
        device = self._device()
        for step, batch in enumerate(train.epoch()):
            cbs.call("on_train_batch_begin", step, None)
            logs = self.train_step(_on_device(batch, device))
            cbs.call("on_train_batch_end", step, logs)
            if self.should_stop():
                break
        self.optimizer_steps.flush(self)  # the unfinished accumulation group, if any
        if train.exhausted:  # a one-pass iterator ran out (steps_per_epoch): Keras stops too
            self.stop_training = True
        logs = dict(logs)
        if val is not None:
            logs.update(self._evaluate_loader(val.epoch(), cbs, prefix="val_"))
        cbs.call("on_epoch_end", epoch, logs)
        return logs

    def _evaluate_loader(self, loader: Any, cbs: CallbackList | None, prefix: str = "") -> dict:
        self._reset_metrics()
        if cbs:
            cbs.call("on_test_begin", None)
        device = self._device()
        with self._eval_mode(), no_grad():
            for step, batch in enumerate(loader):
                if cbs:
                    cbs.call("on_test_batch_begin", step, None)
                logs = self.test_step(_on_device(batch, device))
                if cbs:
                    cbs.call("on_test_batch_end", step, logs)
        if not self.loss_tracker.count:
            raise ValueError(f"{'validation' if prefix else 'evaluate'}: the data has no samples")
        logs = self._logs(prefix)
        if cbs:
            cbs.call("on_test_end", logs)
        return logs

    def evaluate(self, x: Any = None, y: Any = None, batch_size: int = 32, verbose: int = 0,
                 callbacks: Sequence[Callback] = (), return_dict: bool = True) -> Any:
        """Loss and metrics over a dataset (no training).

        Returns:
            ``{"loss": ..., "accuracy": ...}``, or a list in that order when
            ``return_dict=False``.
        """
        self._require_compiled("evaluate")
        loader = _loader(x, y, batch_size, False, None, "evaluate", needs_targets=True)
        cbs = CallbackList(list(callbacks), self, {"steps": len(loader), "verbose": verbose})
        with self._cached_attachments():
            logs = self._evaluate_loader(loader, cbs)
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        return logs if return_dict else list(logs.values())

    def predict(self, x: Any, batch_size: int = 32, callbacks: Sequence[Callback] = (),
                logits: bool = False) -> np.ndarray:
        """The model's outputs for ``x`` as one NumPy array (eval mode, no graph).

        The outputs are what the network's last activation says, as in Keras and DL4J:
        probabilities after a softmax or sigmoid output, raw scores for a network that ends
        in logits.

        Args:
            x: Inputs (array or Tensor), or a DataLoader.
            batch_size: Samples per forward pass (arrays only).
            callbacks: Callbacks with ``on_predict_begin`` / ``on_predict_end``.
            logits: Return the logits behind a softmax/sigmoid output instead.
        """
        if logits:
            return self._predict_arrays(x, batch_size, callbacks,
                                        lambda out: _numpy(_logits_of(self, out)))
        return self._predict_arrays(x, batch_size, callbacks, lambda out: to_numpy(out.array))

    def predict_proba(self, x: Any, batch_size: int = 32) -> np.ndarray:
        """Class probabilities for ``x``: the softmax/sigmoid output, or the probabilities of
        logits when the model was compiled with a classification loss.

        Raises:
            ValueError: the model's output holds plain values (a regression).
        """
        return self._predict_arrays(x, batch_size, (),
                                    lambda out: _numpy(probabilities(out, self.output_spec(out))))

    def predict_classes(self, x: Any, batch_size: int = 32, threshold: Any = 0.5) -> np.ndarray:
        """Predicted classes for ``x``: the argmax for a softmax output; for a sigmoid output
        ``p > threshold`` per label (a number, or one threshold per label).

        Returns:
            ``(N,)`` class indices, or ``(N, L)`` 0/1 labels of a multi-label output.
        """
        def predicted(out: Tensor) -> np.ndarray:
            spec = self.output_spec(out)
            return classes(_numpy(probabilities(out, spec)), spec, threshold)

        return self._predict_arrays(x, batch_size, (), predicted)

    def _predict_arrays(self, x: Any, batch_size: int, callbacks: Sequence[Callback],
                        convert: Callable[[Tensor], np.ndarray]) -> np.ndarray:
        loader = _loader(x, None, batch_size, False, None, "predict")
        cbs = CallbackList(list(callbacks), self, {"steps": len(loader)})
        cbs.call("on_predict_begin", None)
        outputs, device = [], self._device()
        with self._eval_mode(), no_grad():
            for batch in loader:
                inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
                outputs.append(convert(self.predict_step(_on_device(inputs, device))))
        cbs.call("on_predict_end", None)
        if not outputs:
            raise ValueError("predict: the data has no samples")
        return np.concatenate(outputs, axis=0)

    def _device(self) -> str:
        """Where the parameters are: the loops move host batches there, as Keras does."""
        return module_device(self)

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Evaluation mode for a block; the previous mode comes back on every exit path."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)


def _resolve_optimizer(optimizer: Any, params: Any, kwargs: dict[str, Any]) -> Any:
    from nurinet import optim

    if isinstance(optimizer, str):
        return optim.get_optimizer(optimizer, params, **kwargs)
    if isinstance(optimizer, optim.Optimizer):
        return optimizer
    if callable(optimizer):
        return optimizer(params)
    raise TypeError(f"optimizer must be a name, an Optimizer or a factory, got {optimizer!r}")


def _resolve_loss(loss: Any, from_logits: bool | None) -> Callable[[Tensor, Tensor], Tensor]:
    if loss is None:
        raise ValueError("compile needs a loss: a name such as 'cross_entropy' or a function")
    if isinstance(loss, str):
        return Objective(loss, from_logits)
    if not callable(loss):
        raise TypeError(f"loss must be a name or a callable, got {loss!r}")
    return loss


def _on_device(batch: Any, device: str) -> Any:
    """``batch`` (a Tensor or a tuple/list of them) on ``device``; nothing to do on the CPU."""
    if device == "cpu":
        return batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(_on_device(item, device) for item in batch)
    return batch.to(device) if isinstance(batch, Tensor) else batch


def _numpy(array: Any) -> np.ndarray:
    return to_numpy(array.array if isinstance(array, Tensor) else array)


def _logits_of(model: Model, output: Tensor) -> Any:
    return logits(output, model.output_spec(output))


def _verbosity(verbose: Any) -> int:
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or not isinstance(verbose, (int, np.integer)) or verbose not in (0, 1, 2):
        raise ValueError(f"fit: verbose must be 0 (silent), 1 (progress bar), 2 (one line per "
                         f"epoch) or 'auto', got {verbose!r}")
    return int(verbose)


def _check_epochs(epochs: Any, initial_epoch: Any) -> None:
    for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"fit: {name} must be a whole number >= 0, got {value!r}")


def _as_arrays(*data: Any) -> tuple[Any, ...]:
    """pandas DataFrames and Series among ``data`` as arrays, the rest as they are."""
    from nurinet.data import to_array

    return tuple(to_array(d) for d in data)


def _loader(x: Any, y: Any, batch_size: int, shuffle: bool, generator: Any, who: str = "fit",
            needs_targets: bool = False, sample_weight: Any = None) -> Any:
    """A DataLoader over arrays (and their sample weights), or ``x`` itself when it already is
    an iterable of batches.

    Raises:
        ValueError: no data, no samples, no targets where they are needed, lengths that
            differ, or a batch size that is not a positive whole number.
        TypeError: ``x`` is neither arrays nor an iterable of batches.
    """
    from nurinet.data import DataLoader, TensorDataset

    x, y, sample_weight = _as_arrays(x, y, sample_weight)
    if x is None:
        raise ValueError(f"{who}: no data given: pass arrays x (and y) or a DataLoader")
    if isinstance(x, (dict, str, bytes)) or not (holds_samples(x) or hasattr(x, "__iter__")):
        raise TypeError(f"{who}: x must be an array, a Tensor or a DataLoader yielding (x, y) "
                        f"batches, got {type(x).__name__}")
    if not holds_samples(x):
        return x
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"{who}: batch_size must be a whole number >= 1, got {batch_size!r}")
    if needs_targets and y is None:
        raise ValueError(f"{who}: targets y are missing: pass {who.split()[0]}(x, y, ...) or a "
                         "DataLoader yielding (x, y) batches")
    if sample_count(x) == 0:
        raise ValueError(f"{who}: x has no samples (its first axis has length 0)")
    if y is not None and sample_count(x) != sample_count(y):
        raise ValueError(
            f"{who}: x and y have different numbers of samples: x has {sample_count(x)}, y has {sample_count(y)}"
        )
    weights = check_sample_weight(sample_weight, sample_count(x), f"{who}: sample_weight")
    if weights is not None:
        if y is None:
            raise ValueError(f"{who}: sample_weight needs targets y")
        return DataLoader(TensorDataset(x, y, weights), batch_size=batch_size, shuffle=shuffle,
                          generator=generator)
    dataset = TensorDataset(x) if y is None else TensorDataset(x, y)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator)
