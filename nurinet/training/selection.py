"""Model selection: K-fold splits, cross-validation, grid and random hyperparameter search.

Every model is built fresh by a function you give (``build_model()`` or
``build_fn(**params)``) returning a compiled :class:`~nurinet.training.Model`,
so no weights leak from one fold or one setting to the next.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nurinet.random import Generator, resolve
from nurinet.training.metrics import Metric, _array, get_metric


def _count(x: Any) -> int:
    return len(_array(x)) if not isinstance(x, np.ndarray) else len(x)


class KFold:
    """Split sample indices into ``n_splits`` folds; each fold is the test set once.

    The first ``n % n_splits`` folds hold one sample more (scikit-learn's layout).

    Args:
        n_splits: Number of folds (>= 2).
        shuffle: Shuffle the indices before cutting them into folds.
        generator: Source of the shuffle; the default generator when omitted.
    """

    def __init__(self, n_splits: int = 5, shuffle: bool = False, generator: Generator | None = None) -> None:
        if not isinstance(n_splits, int) or isinstance(n_splits, bool) or n_splits < 2:
            raise ValueError(f"{type(self).__name__}: n_splits must be an int >= 2, got {n_splits!r}")
        self.n_splits, self.shuffle, self.generator = n_splits, shuffle, generator

    def _check(self, n: int) -> None:
        if self.n_splits > n:
            raise ValueError(f"{type(self).__name__}: cannot make {self.n_splits} folds of {n} samples; "
                             "lower n_splits")

    def fold_ids(self, x: Any, y: Any = None) -> np.ndarray:
        """The fold number of every sample."""
        n = _count(x)
        self._check(n)
        sizes = np.full(self.n_splits, n // self.n_splits)
        sizes[: n % self.n_splits] += 1
        ids = np.repeat(np.arange(self.n_splits), sizes)
        order = resolve(self.generator).permutation(n) if self.shuffle else np.arange(n)
        out = np.empty(n, dtype=np.int64)
        out[order] = ids
        return out

    def split(self, x: Any, y: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_indices, test_indices)`` for each fold, in order."""
        ids = self.fold_ids(x, y)
        for k in range(self.n_splits):
            yield np.flatnonzero(ids != k), np.flatnonzero(ids == k)

    def get_n_splits(self) -> int:
        return self.n_splits


class StratifiedKFold(KFold):
    """K folds that keep the class proportions of ``y``: each fold gets each class's share, to within one.

    Each class's samples (shuffled when asked) are dealt round-robin to the
    folds, continuing where the previous class stopped so the folds' sizes
    also differ by at most one.
    """

    def fold_ids(self, x: Any, y: Any = None) -> np.ndarray:
        if y is None:
            raise ValueError("StratifiedKFold.split needs the class labels y")
        labels = np.asarray(_array(y))
        if labels.ndim != 1:
            raise ValueError(f"StratifiedKFold needs 1-d class labels, got shape {labels.shape}")
        n = len(labels)
        self._check(n)
        rng = resolve(self.generator)
        classes, counts = np.unique(labels, return_counts=True)
        if counts.min() < self.n_splits:
            warnings.warn(f"StratifiedKFold: the smallest class has {counts.min()} samples, fewer than "
                          f"n_splits={self.n_splits}; some folds will lack it", stacklevel=3)
        ids = np.empty(n, dtype=np.int64)
        start = 0
        for c in classes:
            members = np.flatnonzero(labels == c)
            if self.shuffle:
                members = rng.permutation(members)
            ids[members] = (start + np.arange(members.size)) % self.n_splits
            start += members.size
        return ids


def _fresh(metric: Any) -> Metric:
    fresh = copy.deepcopy(get_metric(metric)) if isinstance(metric, Metric) else get_metric(metric)
    fresh.reset_state()
    return fresh


def _built(build: Callable[..., Any], params: dict[str, Any], where: str) -> Any:
    model = build(**params)
    if not hasattr(model, "fit") or getattr(model, "loss_fn", None) is None:
        raise TypeError(f"{where}: the build function must return a compiled nurinet.training.Model "
                        f"(call model.compile(...) inside it), got {type(model).__name__}")
    return model


def _score_fold(model: Any, x_test: Any, y_test: Any, metrics: Sequence[Any]) -> dict[str, float]:
    scores = {k: float(v) for k, v in model.evaluate(x_test, y_test).items()}
    if metrics:
        prediction = model.predict(x_test)
        for metric in metrics:
            m = _fresh(metric)
            m.update_state(prediction, y_test)
            scores[m.name] = float(m.result())
    return scores


@dataclass
class CVResult:
    """Per-fold scores of a cross-validation, with their mean and standard deviation."""

    folds: list[dict[str, float]]
    models: list[Any] = field(default_factory=list, repr=False)

    @property
    def scores(self) -> dict[str, list[float]]:
        """``{metric: [value per fold]}``."""
        return {k: [f[k] for f in self.folds] for k in self.folds[0]}

    @property
    def mean(self) -> dict[str, float]:
        return {k: float(np.mean(v)) for k, v in self.scores.items()}

    @property
    def std(self) -> dict[str, float]:
        return {k: float(np.std(v)) for k, v in self.scores.items()}

    def __str__(self) -> str:
        names = list(self.folds[0])
        rows = [[f"fold {i}", *(f"{f[k]:.4f}" for k in names)] for i, f in enumerate(self.folds)]
        rows.append(["mean", *(f"{self.mean[k]:.4f}" for k in names)])
        rows.append(["std", *(f"{self.std[k]:.4f}" for k in names)])
        return format_table(["", *names], rows)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows of values as a text table with right-aligned columns."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cross_validate(build_model: Callable[[], Any], x: Any, y: Any, k: int = 5,
                   fit_kwargs: dict[str, Any] | None = None, metrics: Sequence[Any] = (),
                   generator: Generator | None = None, stratified: bool | None = None,
                   cv: KFold | None = None, keep_models: bool = False) -> CVResult:
    """Train a fresh model on each of ``k`` folds and score it on the held-out fold.

    Args:
        build_model: Returns a new compiled Model each call.
        x, y: The data (arrays).
        k: Number of folds.
        fit_kwargs: For ``fit`` (``epochs``, ``batch_size``...); ``verbose`` defaults to 0.
        metrics: Extra metrics (names or Metric objects, copied per fold)
            computed on the fold's predictions, besides the model's own
            ``evaluate`` logs (loss and compiled metrics).
        generator: Shuffles the folds (and each fit's batches).
        stratified: Keep class proportions per fold; default: when ``y`` is
            1-d integer labels.
        cv: A splitter (KFold/StratifiedKFold) to use instead of ``k``.
        keep_models: Keep the trained models in the result.

    Returns:
        A :class:`CVResult`: ``.folds``, ``.scores``, ``.mean``, ``.std``, printable.
    """
    labels = np.asarray(_array(y))
    if stratified is None:
        stratified = labels.ndim == 1 and labels.dtype.kind in "iu"
    splitter = cv or (StratifiedKFold if stratified else KFold)(k, shuffle=True, generator=generator)
    kwargs = {"verbose": 0, "generator": generator, **(fit_kwargs or {})}
    x_arr = _array(x)
    folds, models = [], []
    for train, test in splitter.split(x_arr, labels):
        model = _built(build_model, {}, "cross_validate")
        model.fit(x_arr[train], labels[train], **kwargs)
        folds.append(_score_fold(model, x_arr[test], labels[test], metrics))
        if keep_models:
            models.append(model)
    return CVResult(folds, models)


# ----- hyperparameter search --------------------------------------------------------------------
_FIT_PARAMS = ("epochs", "batch_size", "shuffle")


def _grid(param_grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]]) -> list[dict]:
    grids = [param_grid] if isinstance(param_grid, Mapping) else list(param_grid)
    out = []
    for grid in grids:
        for key, values in grid.items():
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise ValueError(f"GridSearch: param_grid[{key!r}] must be a non-empty list of values, "
                                 f"got {values!r}")
        keys = list(grid)
        out.extend(dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values()))
    return out


class _Search:
    """Shared by GridSearch and RandomSearch: score each candidate, rank them."""

    def __init__(self, build_fn: Callable[..., Any], cv: int | None = 3,
                 validation_split: float | None = None, scoring: str = "accuracy",
                 greater_is_better: bool | None = None, fit_kwargs: dict[str, Any] | None = None,
                 generator: Generator | None = None) -> None:
        if validation_split is None and (not isinstance(cv, int) or cv < 2):
            raise ValueError(f"{type(self).__name__}: give cv (an int >= 2 folds) or validation_split, "
                             f"got cv={cv!r}")
        if validation_split is not None and not 0.0 < validation_split < 1.0:
            raise ValueError(f"{type(self).__name__}: validation_split must be in (0, 1), got "
                             f"{validation_split}")
        self.build_fn, self.cv, self.validation_split = build_fn, cv, validation_split
        self.scoring = scoring
        self.greater_is_better = ("loss" not in scoring and scoring not in ("mae", "mse", "rmse")
                                  if greater_is_better is None else greater_is_better)
        self.fit_kwargs = dict(fit_kwargs or {})
        self.generator = generator
        self.results: list[dict[str, Any]] = []

    def candidates(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _split_params(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Build arguments vs fit arguments (epochs, batch_size, shuffle the build function does not take)."""
        signature = inspect.signature(self.build_fn).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.values())
        build, fit = {}, {}
        for key, value in params.items():
            if key in signature or takes_any:
                build[key] = value
            elif key in _FIT_PARAMS:
                fit[key] = value
            else:
                raise ValueError(f"{type(self).__name__}: build_fn does not take a parameter {key!r} "
                                 f"(and it is not one of fit's {_FIT_PARAMS})")
        return build, fit

    def _evaluate(self, params: dict[str, Any], x: np.ndarray, y: np.ndarray) -> list[float]:
        build, fit = self._split_params(params)
        kwargs = {**self.fit_kwargs, **fit}
        if self.validation_split is not None:
            order = resolve(self.generator).permutation(len(x))
            cut = len(x) - max(1, round(len(x) * self.validation_split))
            train, test = order[:cut], order[cut:]
            model = _built(self.build_fn, build, type(self).__name__)
            model.fit(x[train], y[train], **{"verbose": 0, "generator": self.generator, **kwargs})
            folds = [_score_fold(model, x[test], y[test], ())]
        else:
            folds = cross_validate(lambda: _built(self.build_fn, build, type(self).__name__), x, y,
                                   k=self.cv, fit_kwargs=kwargs, generator=self.generator).folds  # type: ignore[arg-type]
        if self.scoring not in folds[0]:
            raise ValueError(f"{type(self).__name__}: scoring={self.scoring!r} is not among the model's "
                             f"evaluate() logs {sorted(folds[0])}; compile the model with that metric")
        return [f[self.scoring] for f in folds]

    def fit(self, x: Any, y: Any) -> _Search:
        """Score every candidate setting; fills ``results``, ``best_params`` and ``best_score``."""
        x, y = _array(x), np.asarray(_array(y))
        self.results = []
        for params in self.candidates():
            scores = self._evaluate(params, x, y)
            self.results.append({"params": params, "mean_score": float(np.mean(scores)),
                                 "std_score": float(np.std(scores)), "scores": scores})
        sign = -1.0 if self.greater_is_better else 1.0
        order = sorted(range(len(self.results)), key=lambda i: sign * self.results[i]["mean_score"])
        for rank, i in enumerate(order, start=1):
            self.results[i]["rank"] = rank
        return self

    def _require_fit(self) -> None:
        if not self.results:
            raise RuntimeError(f"{type(self).__name__}: call fit(x, y) first")

    @property
    def best(self) -> dict[str, Any]:
        self._require_fit()
        return min(self.results, key=lambda r: r["rank"])

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best["params"])

    @property
    def best_score(self) -> float:
        return float(self.best["mean_score"])

    def table(self) -> str:
        """The results as text, best first."""
        self._require_fit()
        keys = list(dict.fromkeys(k for r in self.results for k in r["params"]))
        rows = [[r["rank"], *(_short(r["params"].get(k, "")) for k in keys),
                 f"{r['mean_score']:.4f}", f"{r['std_score']:.4f}"]
                for r in sorted(self.results, key=lambda r: r["rank"])]
        return format_table(["rank", *keys, f"mean {self.scoring}", "std"], rows)

    def __str__(self) -> str:
        return self.table() if self.results else f"{type(self).__name__}(not fitted)"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class GridSearch(_Search):
    """Try every combination of ``param_grid`` and rank them by cross-validated score.

    Args:
        build_fn: ``build_fn(**params)`` returns a compiled Model. Parameters
            it does not take but named ``epochs``, ``batch_size`` or ``shuffle``
            go to ``fit`` instead.
        param_grid: ``{name: [values]}`` (or a list of such grids).
        cv: Number of folds; or give ``validation_split`` for one held-out split.
        validation_split: Fraction held out (shuffled) instead of K folds.
        scoring: The ``evaluate`` log to rank by (``"accuracy"``, ``"loss"``...).
        greater_is_better: Default: False for losses and errors, else True.
        fit_kwargs: Passed to every ``fit``.
        generator: Shuffles folds and batches.

    Example:
        >>> search = GridSearch(build, {"hidden": [8, 32], "lr": [0.01, 0.1]}, cv=3).fit(x, y)
        >>> print(search.table()); search.best_params
    """

    def __init__(self, build_fn: Callable[..., Any], param_grid: Any, **kwargs: Any) -> None:
        super().__init__(build_fn, **kwargs)
        self.param_grid = param_grid
        self._candidates = _grid(param_grid)

    def candidates(self) -> list[dict[str, Any]]:
        return self._candidates


def uniform(low: float, high: float) -> Callable[[np.random.Generator], float]:
    """A distribution for RandomSearch: uniform on [low, high)."""
    return lambda rng: float(rng.uniform(low, high))


def log_uniform(low: float, high: float) -> Callable[[np.random.Generator], float]:
    """A distribution for RandomSearch: log-uniform on [low, high) (for learning rates)."""
    if not 0 < low < high:
        raise ValueError(f"log_uniform needs 0 < low < high, got {low}, {high}")
    return lambda rng: float(np.exp(rng.uniform(np.log(low), np.log(high))))


def randint(low: int, high: int) -> Callable[[np.random.Generator], int]:
    """A distribution for RandomSearch: an integer in [low, high)."""
    return lambda rng: int(rng.integers(low, high))


class RandomSearch(_Search):
    """Try ``n_iter`` random settings drawn from ``param_distributions``.

    Args:
        build_fn: As for :class:`GridSearch`.
        param_distributions: ``{name: list of values (drawn uniformly) or a
            function rng -> value}`` (see :func:`uniform`, :func:`log_uniform`, :func:`randint`).
        n_iter: Number of settings to try.
        generator: Draws the settings (and shuffles folds and batches).
        **kwargs: ``cv``, ``validation_split``, ``scoring``... as for GridSearch.
    """

    def __init__(self, build_fn: Callable[..., Any], param_distributions: Mapping[str, Any],
                 n_iter: int = 10, generator: Generator | None = None, **kwargs: Any) -> None:
        super().__init__(build_fn, generator=generator, **kwargs)
        if not isinstance(n_iter, int) or n_iter < 1:
            raise ValueError(f"RandomSearch: n_iter must be a positive int, got {n_iter!r}")
        for key, dist in param_distributions.items():
            if not callable(dist) and (isinstance(dist, str) or not isinstance(dist, Sequence) or not dist):
                raise ValueError(f"RandomSearch: param_distributions[{key!r}] must be a non-empty list "
                                 f"or a function of a numpy Generator, got {dist!r}")
        self.param_distributions, self.n_iter = dict(param_distributions), n_iter

    def candidates(self) -> list[dict[str, Any]]:
        rng = resolve(self.generator)
        return [{k: d(rng) if callable(d) else d[int(rng.integers(len(d)))]
                 for k, d in self.param_distributions.items()} for _ in range(self.n_iter)]
