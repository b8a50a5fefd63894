"""Bridges to other tools, each behind an optional extra.

- :mod:`nurinet.integrations.optuna`: :class:`~nurinet.integrations.optuna.OptunaPruningCallback`
  and :func:`~nurinet.integrations.optuna.objective`, for hyperparameter search with Optuna
  (``pip install 'nurinet[optuna]'``).
- :mod:`nurinet.integrations.mlflow`: :class:`~nurinet.integrations.mlflow.MLflowLogger`, a
  callback that records a training run in MLflow (``pip install 'nurinet[mlflow]'``).

Nothing is imported here: import the submodule you use. The third-party libraries are imported
only when a callback or helper is used, so ``import nurinet.integrations.optuna`` works without
Optuna installed and fails, with the extra to install, at the first use. These callbacks are
not exported by :mod:`nurinet.training`, so configurations do not name them.
"""
