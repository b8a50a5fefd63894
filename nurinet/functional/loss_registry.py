"""Losses by name: every common name of Deeplearning4j, Keras and PyTorch, resolved to the
objective that framework means (``get_loss("MCXENT")``, ``get_loss("nll_loss")``).

Each loss is a :class:`LossInfo`: its function, what its input is (logits, probabilities,
log-probabilities or plain values), the activation that links the network's output to its
probabilities, and the output activations it refuses (softmax before a hinge loss, say).
Names ignore case, ``_``, ``-``, spaces and a trailing "loss"; ``docs/losses.md`` lists them.

The losses that take probabilities compute their stable logit form when their input is the
output of ``softmax``, ``sigmoid`` or ``log_softmax`` (see
:mod:`nurinet.functional.loss_probability`), so a softmax output layer with
``categorical_crossentropy`` or DL4J's ``NEGATIVELOGLIKELIHOOD`` trains the log-likelihood,
never a double softmax. A network without a final activation is taken to output logits
for the cross-entropy names (PyTorch's convention) and probabilities for
``binary_crossentropy``; ``Model.compile(from_logits=...)`` says otherwise.

A custom loss is a plain function of Tensors returning a scalar Tensor; register it with
:func:`register_loss` to use it by name.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from nurinet.functional import loss_regression as lr
from nurinet.functional.activation import activation_source, log_softmax
from nurinet.functional.loss import (
    contrastive_loss,
    cosine_embedding_loss,
    hinge_loss,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    smooth_l1_loss,
    squared_hinge_loss,
)
from nurinet.functional.loss_probability import (
    binary_crossentropy,
    categorical_crossentropy,
    kl_divergence,
    negative_log_likelihood,
    source_logits,
    sparse_categorical_crossentropy,
)
from nurinet.names import NameTable

LOGITS, PROBABILITIES, LOG_PROBABILITIES, VALUES = "logits", "probabilities", "log-probabilities", "values"


@dataclasses.dataclass(frozen=True)
class LossInfo:
    """A loss known by name.

    Attributes:
        name: The name the docs use.
        fn: ``fn(output, target) -> Tensor``, what :func:`get_loss` returns.
        takes: What a network output without a final softmax/sigmoid is taken to be:
            ``"logits"``, ``"probabilities"``, ``"log-probabilities"`` or ``"values"``.
        link: ``"softmax"`` or ``"sigmoid"``: the activation that turns logits into this
            loss's probabilities (None for regression losses).
        refuses: Output activations that make no sense before this loss.
        advice: The good pairing named when one is refused.
        computes: One line for the docs table.
        logits_fn: ``fn(logits, target)`` when the output is said to hold logits.
        probabilities_fn: ``fn(probabilities, target)`` when it is said to hold probabilities.
    """

    name: str
    fn: Callable[..., Any]
    takes: str
    link: str | None = None
    refuses: tuple[str, ...] = ()
    advice: str = ""
    computes: str = ""
    logits_fn: Callable[..., Any] | None = None
    probabilities_fn: Callable[..., Any] | None = None

    def check_pairing(self, activation: str | None, where: str = "") -> None:
        """Refuse an output activation that makes no sense before this loss.

        Raises:
            ValueError: naming the pair and a good one.
        """
        key = _activation_key(activation)
        if key in self.refuses:
            prefix = f"{where}: " if where else ""
            raise ValueError(f"{prefix}loss {self.name!r} after a {activation} output makes no sense; "
                             f"{self.advice}")

    def for_output(self, from_logits: bool | None = None) -> Callable[..., Any]:
        """The function to call on a network's output, given what the user said it holds."""
        if from_logits is True and self.logits_fn is not None:
            return self.logits_fn
        if from_logits is False and self.probabilities_fn is not None:
            return self.probabilities_fn
        return self.fn


def _activation_key(activation: Any) -> str:
    if activation is None:
        return "identity"
    key = "".join(ch for ch in str(activation).lower() if ch.isalnum())
    return {"logsoftmax": "log_softmax", "linear": "identity", "none": "identity"}.get(key, key)


# ----- adapters: PyTorch's logit and log-probability losses after a softmax/sigmoid output -----
def _cross_entropy(output: Any, target: Any, **kwargs: Any) -> Any:
    """PyTorch's ``cross_entropy`` (classes on axis 1, logits); a softmax output's logits."""
    axis = 1 if getattr(output, "ndim", 2) >= 2 else 0
    fused = source_logits(output, ("softmax", "log_softmax"), axis) is not None
    return categorical_crossentropy(output, target, from_logits=not fused, axis=axis, **kwargs)


def _kl_div(output: Any, target: Any, **kwargs: Any) -> Any:
    """PyTorch's ``kl_div`` of log-probabilities; a softmax output gives its log-softmax."""
    source = activation_source(output)
    if source is not None and source.activation == "softmax":
        output = log_softmax(source.logits, axis=source.axis)
    return kl_div(output, target, **kwargs)


def _logits_unless_after(loss: Callable[..., Any], activations: tuple[str, ...]) -> Callable[..., Any]:
    """``loss`` of an output that one of ``activations`` produced (its probabilities, computed from
    the logits it remembers), and of any other output taken as logits."""
    def of_output(output: Any, target: Any, **kwargs: Any) -> Any:
        fused = source_logits(output, activations) is not None
        return loss(output, target, from_logits=not fused, **kwargs)

    of_output.__name__ = f"{loss.__name__}_of_output"
    return of_output


_SOFTMAX_OUTPUTS = ("softmax", "log_softmax")
_categorical_default = _logits_unless_after(categorical_crossentropy, _SOFTMAX_OUTPUTS)
_sparse_default = _logits_unless_after(sparse_categorical_crossentropy, _SOFTMAX_OUTPUTS)
_bce_with_logits = _logits_unless_after(binary_crossentropy, ("sigmoid",))
_categorical_logits = functools.partial(categorical_crossentropy, from_logits=True)
_sparse_logits = functools.partial(sparse_categorical_crossentropy, from_logits=True)
_binary_logits = functools.partial(binary_crossentropy, from_logits=True)
_kld_logits = functools.partial(kl_divergence, from_logits=True)


# ----- the table ------------------------------------------------------------------------------
_SOFTMAX_ADVICE = ("it needs one class per sample: use activation softmax (or none, for logits); "
                   "for independent labels use a sigmoid output with binary_crossentropy (XENT)")
_SIGMOID_ADVICE = ("binary cross-entropy treats each output as its own yes/no: use activation "
                   "sigmoid (or none, for logits); for one class per sample use a softmax output "
                   "with categorical_crossentropy (MCXENT)")
_HINGE_ADVICE = ("hinge losses take raw scores with targets -1/+1: use activation identity (or "
                 "tanh); for class probabilities use softmax with categorical_crossentropy")
_CATEGORICAL = {"link": "softmax", "refuses": ("sigmoid",), "advice": _SOFTMAX_ADVICE}
_BINARY = {"link": "sigmoid", "refuses": ("softmax", "log_softmax"), "advice": _SIGMOID_ADVICE}
_HINGE = {"refuses": ("softmax", "sigmoid", "log_softmax"), "advice": _HINGE_ADVICE}

_LOSSES: list[tuple[LossInfo, tuple[str, ...]]] = [
    (LossInfo("categorical_crossentropy", _categorical_default, LOGITS, computes=
              "-sum t log softmax(z) per sample; one-hot or index targets",
              logits_fn=_categorical_logits, probabilities_fn=categorical_crossentropy,
              **_CATEGORICAL),
     ("categorical_crossentropy", "mcxent", "cce")),
    (LossInfo("sparse_categorical_crossentropy", _sparse_default, LOGITS, computes=
              "the same, with class-index targets", logits_fn=_sparse_logits,
              probabilities_fn=sparse_categorical_crossentropy, **_CATEGORICAL),
     ("sparse_categorical_crossentropy", "sparse_mcxent", "scce")),
    (LossInfo("cross_entropy", _cross_entropy, LOGITS, computes=
              "PyTorch's cross_entropy of logits (classes on axis 1); index or probability targets",
              logits_fn=_cross_entropy, probabilities_fn=categorical_crossentropy, **_CATEGORICAL),
     ("cross_entropy", "CrossEntropyLoss")),
    (LossInfo("negative_log_likelihood", negative_log_likelihood, LOG_PROBABILITIES, computes=
              "-log p of the target class: of a softmax output (DL4J) or of log-probabilities "
              "(PyTorch's nll_loss)", logits_fn=_categorical_logits,
              probabilities_fn=categorical_crossentropy, **_CATEGORICAL),
     ("negative_log_likelihood", "nll", "nll_loss", "NLLLoss")),
    (LossInfo("binary_crossentropy", binary_crossentropy, PROBABILITIES, computes=
              "-(t log p + (1 - t) log(1 - p)) per element; of a sigmoid output's logits",
              logits_fn=_binary_logits, **_BINARY),
     ("binary_crossentropy", "binary_cross_entropy", "bce", "BCELoss", "xent",
      "reconstruction_crossentropy")),
    (LossInfo("binary_cross_entropy_with_logits", _bce_with_logits, LOGITS, computes=
              "the same of sigmoid(z), from the logits z", logits_fn=_bce_with_logits,
              probabilities_fn=binary_crossentropy, **_BINARY),
     ("binary_cross_entropy_with_logits", "bce_with_logits", "BCEWithLogitsLoss")),
    (LossInfo("kl_divergence", kl_divergence, PROBABILITIES, link="softmax", refuses=("sigmoid",),
              advice=_SOFTMAX_ADVICE, computes="sum t log(t / p) per sample (Keras, DL4J)",
              logits_fn=_kld_logits),
     ("kl_divergence", "kld", "kullback_leibler_divergence")),
    (LossInfo("kl_div", _kl_div, LOG_PROBABILITIES, link="softmax", refuses=("sigmoid",),
              advice=_SOFTMAX_ADVICE, computes="PyTorch's kl_div of log-probabilities, mean over elements"),
     ("kl_div", "KLDivLoss")),
    (LossInfo("mean_squared_error", mse_loss, VALUES, computes="mean (p - t)^2"),
     ("mse", "mean_squared_error", "mse_loss", "squared_error")),
    (LossInfo("sum_squared_error", lr.sum_squared_error, VALUES,
              computes="sum (p - t)^2 per sample (DL4J's L2, SQUARED_LOSS)"),
     ("l2", "sum_squared_error", "squared_loss")),
    (LossInfo("mean_absolute_error", l1_loss, VALUES, computes="mean |p - t|"),
     ("mae", "mean_absolute_error", "l1", "l1_loss")),
    (LossInfo("huber", huber_loss, VALUES, computes="0.5 d^2 within 1, |d| - 0.5 beyond"),
     ("huber", "huber_loss")),
    (LossInfo("smooth_l1", smooth_l1_loss, VALUES, computes="0.5 d^2 / beta within beta, |d| - 0.5 beta beyond"),
     ("smooth_l1", "SmoothL1Loss")),
    (LossInfo("mean_absolute_percentage_error", lr.mean_absolute_percentage_error, VALUES,
              computes="100 |t - p| / |t|"), ("mape", "mean_absolute_percentage_error")),
    (LossInfo("mean_squared_logarithmic_error", lr.mean_squared_logarithmic_error, VALUES,
              computes="(log(1 + p) - log(1 + t))^2"), ("msle", "mean_squared_logarithmic_error")),
    (LossInfo("poisson", lr.poisson, VALUES, computes="p - t log p (p a rate > 0)"), ("poisson",)),
    (LossInfo("poisson_nll_loss", lr.poisson_nll_loss, VALUES,
              computes="exp(x) - t x of log-rates x (PyTorch)"), ("poisson_nll", "PoissonNLLLoss")),
    (LossInfo("log_cosh", lr.log_cosh, VALUES, computes="log cosh(p - t)"), ("log_cosh", "logcosh")),
    (LossInfo("cosine_proximity", lr.cosine_proximity, VALUES, computes="-cos(p, t) per sample"),
     ("cosine_proximity", "cosine_similarity")),
    (LossInfo("wasserstein", lr.wasserstein, VALUES, computes="mean t p (DL4J; labels -1/+1)"),
     ("wasserstein",)),
    (LossInfo("hinge", hinge_loss, VALUES, computes="max(0, 1 - t s), targets -1/+1 (or 0/1)", **_HINGE),
     ("hinge", "HingeLoss")),
    (LossInfo("squared_hinge", squared_hinge_loss, VALUES, computes="max(0, 1 - t s)^2", **_HINGE),
     ("squared_hinge",)),
    (LossInfo("categorical_hinge", lr.categorical_hinge, VALUES,
              computes="max(0, 1 + max_other s - s_target), one-hot targets"), ("categorical_hinge",)),
    (LossInfo("cosine_embedding", cosine_embedding_loss, VALUES,
              computes="1 - cos for similar pairs, max(0, cos - margin) otherwise (three inputs)"),
     ("cosine_embedding", "CosineEmbeddingLoss")),
    (LossInfo("contrastive", contrastive_loss, VALUES,
              computes="y d^2 + (1 - y) max(0, margin - d)^2 of distances d"), ("contrastive",)),
]

LOSSES = NameTable("loss", suffixes=("loss",),
                   hint="Add your own with nurinet.functional.register_loss(name, fn)")
for _info, _names in _LOSSES:
    LOSSES.register(_names[0], _info, *_names[1:])


def loss_names() -> list[str]:
    """The names :func:`get_loss` knows (normalized: lowercase, letters and digits)."""
    return LOSSES.names()


def loss_info(name_or_fn: Any) -> LossInfo | None:
    """The :class:`LossInfo` of a loss name (None for a callable).

    Raises:
        ValueError: the name is unknown (the message lists the known names).
    """
    if callable(name_or_fn):
        return None
    if not isinstance(name_or_fn, str):
        raise TypeError(f"get_loss expects a name or a callable, got {name_or_fn!r}")
    return LOSSES.get(name_or_fn)


def get_loss(name_or_fn: Any) -> Any:
    """The loss function called ``name`` (or ``name_or_fn`` itself when callable).

    Names ignore case, ``_``, ``-``, spaces and a trailing "loss": DL4J's ``"MCXENT"``,
    ``"NEGATIVELOGLIKELIHOOD"`` and ``"XENT"``, Keras's ``"categorical_crossentropy"`` and
    ``"mse"``, PyTorch's ``"CrossEntropyLoss"`` and ``"nll_loss"`` all work
    (``docs/losses.md`` lists every name and what it computes).

    Raises:
        ValueError: the name is unknown (the message lists the known names).
    """
    info = loss_info(name_or_fn)
    return name_or_fn if info is None else info.fn


def register_loss(name: str, fn: Any = None, overwrite: bool = False) -> Any:
    """Make the loss function ``fn(input, target) -> Tensor`` available to :func:`get_loss`.

    Used without ``fn``, this is a decorator. The loss takes the network's output as it is.

    Raises:
        ValueError: ``name`` is taken and ``overwrite`` is False.
    """
    if fn is None:
        return lambda f: register_loss(name, f, overwrite)
    if not callable(fn):
        raise TypeError(f"register_loss: {name!r} must map to a callable, got {fn!r}")
    LOSSES.register(name, LossInfo(name, fn, VALUES, computes="registered by the user"),
                    overwrite=overwrite)
    return fn
