"""scikit-learn estimators that train a nurinet network: ``NeuralNetClassifier`` and ``NeuralNetRegressor``.

They follow scikit-learn's conventions, so they work with ``Pipeline``, ``GridSearchCV``,
``cross_val_score`` and ``clone``: ``__init__`` only stores the hyperparameters, ``fit`` builds a
fresh network each time and sets the fitted attributes (names ending in ``_``). Example::

    from sklearn.model_selection import GridSearchCV
    from nurinet.sklearn import NeuralNetClassifier

    search = GridSearchCV(NeuralNetClassifier(epochs=30), {"hidden_layer_sizes": [(16,), (64,)]})
    search.fit(X, y)

The network is, in order of precedence:

- ``module``, a callable ``module(n_features_in, n_outputs, **module_kwargs)`` that returns an
  ``nn.Module``: called on every ``fit``;
- ``module``, an ``nn.Module``: deep-copied on every ``fit`` and its parameters re-initialized
  (the object you passed is never trained, as scikit-learn requires);
- by default a multilayer perceptron with ``hidden_layer_sizes``, ``activation`` and ``dropout``.

The classifier's network returns one score (logit) per class; ``predict_proba`` is their softmax.
The regressor's returns one value per target.

As scikit-learn's ``MLPClassifier``, ``early_stopping=True`` holds out ``validation_fraction`` of the
training data (stratified for the classifier) and stops once its score has not improved by more than
``tol`` for ``n_iter_no_change`` epochs, keeping the best epoch's weights (``validation_scores_``,
``best_validation_score_``). ``callbacks=[...]`` runs nurinet callbacks (``nurinet.training``) in
``fit``, as ``Model.fit`` does; each fit runs deep copies of them (``callbacks_``).

With an integer ``random_state`` a fit is reproducible: initialization, shuffling and dropout draw
from the estimator's own stream, seeded by it, and leave nurinet's default generator untouched.
With ``random_state=None`` that stream is seeded from the default generator (``nurinet.manual_seed``).

Needs scikit-learn (``pip install 'nurinet[sklearn]'``). Neither ``import nurinet`` nor
``import nurinet.sklearn`` imports it: the two classes are created, on scikit-learn's base classes,
the first time they are accessed.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet import nn, optim
from nurinet.autograd.grad_mode import no_grad
from nurinet.autograd.tensor import Tensor
from nurinet.random import Generator, default_generator

# Defined on first access by the module's __getattr__ (below), once scikit-learn is imported.
__all__ = ["NeuralNetClassifier", "NeuralNetRegressor"]  # noqa: F822


def _sklearn() -> Any:
    """scikit-learn's pieces the estimators use, imported on first use."""
    try:
        import sklearn.base
        import sklearn.utils
        import sklearn.utils.multiclass
        import sklearn.utils.validation
    except ImportError as error:  # an optional dependency: say how to get it
        raise ImportError("nurinet.sklearn needs scikit-learn: pip install 'nurinet[sklearn]' "
                          "(or pip install scikit-learn)") from error
    return sklearn


def _validate_data(estimator: Any, *args: Any, **kwargs: Any) -> Any:
    validation = _sklearn().utils.validation
    if hasattr(validation, "validate_data"):  # scikit-learn >= 1.6
        return validation.validate_data(estimator, *args, **kwargs)
    return estimator._validate_data(*args, **kwargs)


class _NeuralNetBase:
    """Shared fitting, prediction and randomness of the two estimators (the scikit-learn base classes
    are added when the estimators are defined, on first use)."""

    _default_loss = ""
    _is_classifier = False

    def __init__(self, module: Any = None, *, module_kwargs: dict | None = None,
                 hidden_layer_sizes: Sequence[int] = (64,), activation: str = "relu", dropout: float = 0.0,
                 input_shape: Sequence[int] | None = None, loss: Any = None, optimizer: str = "adam",
                 lr: float = 1e-3, weight_decay: float = 0.0, optimizer_kwargs: dict | None = None,
                 epochs: int = 100, batch_size: int = 32, shuffle: bool = True, random_state: Any = None,
                 verbose: int = 0, callbacks: Sequence[Any] | None = None, early_stopping: bool = False,
                 validation_fraction: float = 0.1, n_iter_no_change: int = 10, tol: float = 1e-4) -> None:
        self.module = module
        self.module_kwargs = module_kwargs
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.input_shape = input_shape
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer_kwargs = optimizer_kwargs
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol

    # ----- hooks the two estimators fill in -------------------------------------------------------
    def _encode_targets(self, y: Any, reset: bool, classes: Any = None) -> np.ndarray:
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError

    # ----- fitting ------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> Any:
        """Build a fresh network and train it for ``epochs`` epochs on ``(X, y)``; returns self.

        With ``early_stopping``, ``validation_fraction`` of the samples (stratified by class for
        the classifier) are held out, and training stops once their score (``score``: accuracy
        or R²) has not improved by more than ``tol`` for ``n_iter_no_change`` epochs; the
        network then gets back the weights of its best epoch.
        """
        X, y_checked = _validate_data(self, X, y, reset=True, dtype=np.float32, multi_output=True,
                                      y_numeric=not self._is_classifier)
        y = self._encode_targets(y_checked, reset=True)
        epochs = self._positive_int(self.epochs, "epochs")
        early = self._check_early_stopping()
        callbacks = self._fresh_callbacks()
        seed = self._seed()
        validation = None
        if early:
            train_rows, val_rows = self._holdout(y, seed)
            val_targets = self.classes_[y[val_rows]] if self._is_classifier else y_checked[val_rows]
            validation = (X[val_rows], val_targets)
            X, y = X[train_rows], y[train_rows]
        self._initialize(X.shape[1], seed)
        self.loss_curve_: list[float] = []
        self.validation_scores_: list[float] | None = [] if early else None
        self.best_validation_score_: float | None = None
        self._fit_epochs(X, y, epochs, callbacks, validation)
        return self

    def _check_early_stopping(self) -> bool:
        """Check the early-stopping parameters; whether early stopping is on."""
        name = type(self).__name__
        if self.early_stopping not in (True, False):
            raise ValueError(f"{name}: early_stopping must be True or False, got {self.early_stopping!r}")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.number)) \
                or not 0.0 < fraction < 1.0:
            raise ValueError(f"{name}: validation_fraction must be a number in (0, 1), got {fraction!r}")
        self._positive_int(self.n_iter_no_change, "n_iter_no_change")
        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, (int, float, np.number)) or not 0.0 <= tol < np.inf:
            raise ValueError(f"{name}: tol must be a number >= 0, got {tol!r}")
        return bool(self.early_stopping)

    def _fresh_callbacks(self) -> list[Any]:
        """Deep copies of ``callbacks`` for this fit: the objects passed in are never changed, so a
        refit, ``clone`` or a grid search starts each fit with fresh callback state."""
        from nurinet.training import Callback

        if self.callbacks is None:
            return []
        if isinstance(self.callbacks, (str, bytes, Callback)) or not isinstance(self.callbacks, Sequence):
            raise TypeError(f"{type(self).__name__}: callbacks must be a list of nurinet callbacks or None, "
                            f"got {type(self.callbacks).__name__}")
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"{type(self).__name__}: callbacks must be nurinet.training.Callback "
                                f"instances, got {type(callback).__name__}")
        try:
            return copy.deepcopy(list(self.callbacks))
        except Exception as error:  # a callback holding a file or a lock
            raise TypeError(f"{type(self).__name__}: each fit uses a deep copy of the callbacks (so that "
                            f"fits share no state), and copying them failed: {error}") from error

    def _holdout(self, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation rows: ``train_test_split(..., test_size=validation_fraction,
        random_state=seed % 2**32)``, stratified by class for the classifier (as scikit-learn's
        ``MLPClassifier``)."""
        from sklearn.model_selection import train_test_split

        rows = np.arange(len(y))
        try:
            train, val = train_test_split(rows, test_size=float(self.validation_fraction),
                                          random_state=seed % 2**32,
                                          stratify=y if self._is_classifier else None)
        except ValueError as error:
            raise ValueError(f"{type(self).__name__}: early_stopping cannot hold out "
                             f"validation_fraction={self.validation_fraction} of {len(y)} samples: {error}") \
                from None
        return np.sort(train), np.sort(val)

    def _fit_epochs(self, X: np.ndarray, y: np.ndarray, epochs: int, callbacks: list[Any],
                    validation: tuple[np.ndarray, Any] | None) -> None:
        """Train up to ``epochs`` epochs, with the callbacks (and early stopping on ``validation``)."""
        from nurinet.training import EarlyStopping, Model
        from nurinet.training.callbacks import CallbackList

        stopper = None
        if validation is not None:
            # scikit-learn stops when n_iter_no_change + 1 epochs in a row fail to improve
            stopper = EarlyStopping("val_score", mode="max", min_delta=float(self.tol),
                                    patience=int(self.n_iter_no_change) + 1, restore_best_weights=True)
        model = Model(self.module_)  # what the callbacks see: the network, its optimizer, stop_training
        model.optimizer = self.optimizer_
        self.callbacks_ = callbacks
        every = ([stopper] if stopper is not None else []) + callbacks
        hooks = CallbackList(every, model, {"epochs": epochs, "verbose": 0,
                                            "steps": -(-len(X) // self._positive_int(self.batch_size, "batch_size"))})
        model.stop_training = False
        hooks.call("on_train_begin", None)
        logs: dict[str, float] = {}
        for epoch in range(epochs):
            hooks.call("on_epoch_begin", epoch, None)
            self._train_epoch(X, y, hooks)
            logs = {"loss": self.loss_curve_[-1]}
            if validation is not None:
                score = float(self.score(*validation))
                self.validation_scores_.append(score)  # type: ignore[union-attr]
                logs["val_score"] = score
            hooks.call("on_epoch_end", epoch, logs)
            if model.stop_training:
                break
        hooks.call("on_train_end", logs)
        self.module_.eval()
        if stopper is not None:
            self.best_validation_score_ = float(stopper.best)

    def _partial_fit(self, X: Any, y: Any, classes: Any = None) -> Any:
        first = not hasattr(self, "module_")
        X, y = self._validate(X, y, reset=first, classes=classes)
        if first:
            self._initialize(X.shape[1])
            self.loss_curve_ = []
        self._train_epoch(X, y)
        return self

    def _validate(self, X: Any, y: Any, reset: bool, classes: Any = None) -> tuple[np.ndarray, np.ndarray]:
        X, y = _validate_data(self, X, y, reset=reset, dtype=np.float32, multi_output=True,
                              y_numeric=not self._is_classifier)
        return X, self._encode_targets(y, reset, classes)

    def _initialize(self, n_features: int, seed: int | None = None) -> None:
        """A fresh network, optimizer and random stream (seeded by ``seed``, else by random_state)."""
        seed = self._seed() if seed is None else seed
        self._stream_state = _fresh_state(seed)
        with self._own_stream():
            self.module_ = self._build_module(n_features)
        params = [p for p in self.module_.parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"{type(self).__name__}: the network has no trainable parameters")
        kwargs = {"lr": float(self.lr), **({"weight_decay": self.weight_decay} if self.weight_decay else {}),
                  **(self.optimizer_kwargs or {})}
        self.optimizer_ = optim.get_optimizer(self.optimizer, params, **kwargs)
        self.loss_fn_ = F.get_loss(self.loss if self.loss is not None else self._default_loss)
        self.n_iter_ = 0

    def _seed(self) -> int:
        if isinstance(self.random_state, (int, np.integer)) and not isinstance(self.random_state, bool):
            return int(self.random_state)
        if self.random_state is None:
            return int(default_generator.np.integers(2**63 - 1))
        random_state = _sklearn().utils.check_random_state(self.random_state)
        return int(random_state.randint(np.iinfo(np.int32).max))

    @contextlib.contextmanager
    def _own_stream(self) -> Iterator[None]:
        """Make nurinet's default generator draw from this estimator's stream while inside."""
        saved = default_generator.get_state()
        default_generator.set_state(self._stream_state)
        try:
            yield
        finally:
            self._stream_state = default_generator.get_state()
            default_generator.set_state(saved)

    def _build_module(self, n_features: int) -> Any:
        n_outputs, kwargs = self._n_outputs(), dict(self.module_kwargs or {})
        if self.module is None:
            return _mlp(n_features, n_outputs, self.hidden_layer_sizes, self.activation, self.dropout, **kwargs)
        if isinstance(self.module, nn.Module):
            module = copy.deepcopy(self.module)
            for layer in module.modules():
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
            return module
        if callable(self.module):
            module = self.module(n_features, n_outputs, **kwargs)
            if not isinstance(module, nn.Module):
                raise TypeError(f"{type(self).__name__}: module(n_features_in, n_outputs) must return an "
                                f"nn.Module, got {type(module).__name__}")
            return module
        raise TypeError(f"{type(self).__name__}: module must be None, an nn.Module or a callable "
                        f"module(n_features_in, n_outputs) -> nn.Module, got {type(self.module).__name__}")

    def _train_epoch(self, X: np.ndarray, y: np.ndarray, hooks: Any = None) -> None:
        """One pass over ``(X, y)``; ``hooks`` (a ``CallbackList``) sees each batch."""
        batch_size = self._positive_int(self.batch_size, "batch_size")
        total, n = 0.0, len(X)
        self.module_.train()
        with self._own_stream():
            order = default_generator.np.permutation(n) if self.shuffle else np.arange(n)
            for step, start in enumerate(range(0, n, batch_size)):
                if hooks is not None:
                    hooks.call("on_train_batch_begin", step, None)
                rows = order[start:start + batch_size]
                loss = self.loss_fn_(self.module_(Tensor(self._shape_input(X[rows]))), Tensor(y[rows]))
                self.optimizer_.zero_grad()
                loss.backward()
                self.optimizer_.step()
                total += float(loss.item()) * len(rows)
                if hooks is not None:
                    hooks.call("on_train_batch_end", step, {"loss": float(loss.item())})
        self.module_.eval()
        self.n_iter_ += 1
        self.loss_curve_.append(total / n)
        if not np.isfinite(self.loss_curve_[-1]):
            raise ValueError(f"{type(self).__name__}: the training loss became {self.loss_curve_[-1]} at epoch "
                             f"{self.n_iter_}; lower lr or scale the features (e.g. StandardScaler)")
        if self.verbose:
            print(f"epoch {self.n_iter_}: loss {self.loss_curve_[-1]:.6f}")

    def _shape_input(self, X: np.ndarray) -> np.ndarray:
        return X if self.input_shape is None else X.reshape(len(X), *self.input_shape)

    def _positive_int(self, value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{type(self).__name__}: {name} must be a positive integer, got {value!r}")
        return int(value)

    # ----- prediction ---------------------------------------------------------------------------
    def _forward(self, X: Any) -> np.ndarray:
        """The network's outputs for ``X``, in evaluation mode, as float64."""
        _sklearn().utils.validation.check_is_fitted(self, "module_")
        X = _validate_data(self, X, reset=False, dtype=np.float32)
        self.module_.eval()
        chunk = max(1024, self._positive_int(self.batch_size, "batch_size"))
        with no_grad():
            parts = [self.module_(Tensor(self._shape_input(X[i:i + chunk]))).numpy()
                     for i in range(0, len(X), chunk)]
        out = np.concatenate(parts) if parts else np.zeros((0, self._n_outputs()), np.float32)
        return out.astype(np.float64).reshape(len(X), -1)


def _mlp(n_features: int, n_outputs: int, hidden_layer_sizes: Sequence[int], activation: str, dropout: float,
         **kwargs: Any) -> Any:
    if kwargs:
        raise TypeError(f"module_kwargs {sorted(kwargs)} given, but they go to a module callable; the default "
                        "network takes hidden_layer_sizes, activation and dropout")
    layers: list[Any] = []
    width = n_features
    for size in tuple(hidden_layer_sizes):
        layers += [nn.Linear(width, int(size)), nn.Activation(activation)]
        if dropout:
            layers.append(nn.Dropout(float(dropout)))
        width = int(size)
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


def _fresh_state(seed: int) -> dict:
    return Generator(seed).get_state()


class _Classifier(_NeuralNetBase):
    """A scikit-learn classifier that trains a nurinet network with cross-entropy.

    Labels may be of any type (strings, ints, ...): ``classes_`` holds them sorted, and the
    network's output ``j`` scores ``classes_[j]``.

    Args:
        module: ``None`` (a multilayer perceptron), an ``nn.Module`` (copied and re-initialized
            on each fit) or a callable ``module(n_features_in, n_classes, **module_kwargs)``.
        module_kwargs: Extra keyword arguments of the ``module`` callable.
        hidden_layer_sizes: Widths of the default perceptron's hidden layers.
        activation: Activation of the default perceptron (a name, see ``F.get_activation``).
        dropout: Dropout probability after each hidden layer of the default perceptron.
        input_shape: Reshape each row to this shape before the network (e.g. ``(1, 8, 8)`` for a CNN).
        loss: A loss name (``F.get_loss``) or ``fn(logits, target_indices)``; cross-entropy by default.
        optimizer: Optimizer name (``optim.get_optimizer``: sgd, adam, ...).
        lr: Learning rate.
        weight_decay: L2 penalty passed to the optimizer (0 for none).
        optimizer_kwargs: Other optimizer hyperparameters.
        epochs: Passes over the data in ``fit``.
        batch_size: Samples per gradient step.
        shuffle: Reshuffle the samples at each epoch.
        random_state: Seed of initialization, shuffling and dropout (an int makes fits reproducible).
        verbose: Print the loss after each epoch.
        callbacks: nurinet callbacks (``nurinet.training.Callback``) run by ``fit``, as by
            ``Model.fit``: they see a ``Model`` wrapping the network (``model.optimizer`` is
            the optimizer; setting ``model.stop_training`` stops after the epoch), the logs
            ``{"loss"}`` of each batch and ``{"loss", "val_score"}`` of each epoch
            (``val_score`` with ``early_stopping``). Each ``fit`` runs deep copies
            (``copy.deepcopy``), kept in ``callbacks_``, so the objects passed in are never
            changed and a refit, ``clone`` or ``GridSearchCV`` shares no callback state.
            ``partial_fit`` runs no callbacks.
        early_stopping: Hold out ``validation_fraction`` of the training data (stratified by
            class) and stop when its score (``score``: the accuracy) has not improved by more
            than ``tol`` for ``n_iter_no_change`` consecutive epochs, then restore the weights
            of the best epoch (scikit-learn's ``MLPClassifier`` meaning, done by nurinet's
            ``EarlyStopping(monitor="val_score", min_delta=tol, patience=n_iter_no_change + 1,
            restore_best_weights=True)``; unlike scikit-learn, an improvement smaller than
            ``tol`` does not replace the kept weights). The held-out rows are
            ``train_test_split(X, y, test_size=validation_fraction, stratify=y,
            random_state=random_state)`` for an int ``random_state`` below 2**32.
            ``partial_fit`` ignores it, as scikit-learn does.
        validation_fraction: The fraction of the training data held out, in (0, 1).
        n_iter_no_change: Epochs without an improvement larger than ``tol`` before stopping.
        tol: The smallest validation-score improvement that counts.

    Attributes:
        classes_: The class labels, sorted.
        n_features_in_: Number of features seen in ``fit``.
        module_: The trained network.
        optimizer_: Its optimizer.
        loss_curve_: Mean training loss of each epoch.
        n_iter_: Epochs trained.
        validation_scores_: The held-out score after each epoch (None without early_stopping).
        best_validation_score_: The best held-out score, the one of the weights kept (None
            without early_stopping).
        callbacks_: The copies of ``callbacks`` that the last ``fit`` ran.
    """

    _default_loss = "cross_entropy"
    _is_classifier = True

    def _encode_targets(self, y: Any, reset: bool, classes: Any = None) -> np.ndarray:
        sklearn = _sklearn()
        y = sklearn.utils.validation.column_or_1d(y, warn=True)
        sklearn.utils.multiclass.check_classification_targets(y)
        if reset:
            labels = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if classes is not None and not np.isin(y, labels).all():
                raise ValueError(f"{type(self).__name__}: y has labels missing from classes={labels.tolist()}")
            self.classes_ = labels
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(f"{type(self).__name__}: classes={classes!r} differs from the classes of the "
                             f"first partial_fit {self.classes_.tolist()}")
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(f"{type(self).__name__}: y has labels {np.unique(y[unknown]).tolist()} not in "
                             f"classes_ {self.classes_.tolist()}")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> Any:
        """Train one epoch on ``(X, y)``; the first call builds the network and needs ``classes``
        unless ``y`` holds every class."""
        return self._partial_fit(X, y, classes)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``, the softmax of the network's scores."""
        logits = self._forward(X)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log of :meth:`predict_proba`, computed stably."""
        logits = self._forward(X)
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label of each sample."""
        scores = self._forward(X)
        return self.classes_[np.argmax(scores, axis=1)]


class _Regressor(_NeuralNetBase):
    """A scikit-learn regressor that trains a nurinet network with mean squared error.

    ``y`` may be 1-D (one target; ``predict`` returns 1-D) or 2-D (several targets).
    Arguments and attributes are those of :class:`NeuralNetClassifier`, with ``module`` called
    as ``module(n_features_in, n_targets, **module_kwargs)`` and ``loss`` defaulting to ``"mse"``;
    there is no ``classes_``, and ``n_outputs_`` is the number of targets. With
    ``early_stopping`` the validation score is R² (``score``) and the held-out part is not
    stratified.
    """

    _default_loss = "mse"

    def _encode_targets(self, y: Any, reset: bool, classes: Any = None) -> np.ndarray:
        y = np.asarray(y, dtype=np.float32)
        if reset:
            self._y_1d = y.ndim == 1
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        y2 = y.reshape(len(y), -1)
        if y2.shape[1] != self.n_outputs_:
            raise ValueError(f"{type(self).__name__}: y has {y2.shape[1]} targets, the network was built "
                             f"for {self.n_outputs_}")
        return y2

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def partial_fit(self, X: Any, y: Any) -> Any:
        """Train one epoch on ``(X, y)``; the first call builds the network."""
        return self._partial_fit(X, y)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets: ``(n_samples,)`` when fitted on a 1-D ``y``, else ``(n_samples, n_targets)``."""
        out = self._forward(X)
        return out[:, 0] if self._y_1d else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"multioutput": True}



def _define_estimators() -> None:
    """Create the public classes on scikit-learn's base classes (mixins first, BaseEstimator last)."""
    base = _sklearn().base

    class NeuralNetClassifier(base.ClassifierMixin, _Classifier, base.BaseEstimator):
        __doc__ = _Classifier.__doc__

    class NeuralNetRegressor(base.RegressorMixin, _Regressor, base.BaseEstimator):
        __doc__ = _Regressor.__doc__

    for cls in (NeuralNetClassifier, NeuralNetRegressor):
        cls.__module__, cls.__qualname__ = __name__, cls.__name__  # so pickle finds them here
        globals()[cls.__name__] = cls


def __getattr__(name: str) -> Any:
    # The estimators are defined on first access, so importing this module needs no scikit-learn.
    if name in __all__:
        _define_estimators()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
