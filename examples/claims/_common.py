"""What every claim experiment shares: arguments, training helpers, verdicts, JSON and figures.

Each script ``examples/claims/cNN_*.py`` reproduces one claim of the concept
catalog. It trains real nurinet models over several seeds, writes
``results/<name>.json`` (and ``<name>.png`` when matplotlib is installed) and
prints a summary. ``--quick`` runs a reduced version (fewer seeds, epochs and
samples, results under ``results/quick/``) that finishes in seconds.

The verdict helpers turn measured numbers into a sentence with thresholds fixed
in advance (in the script, before anything runs); nothing is tuned towards a
verdict.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import nurinet as nt
from nurinet.backend import to_numpy

RESULTS = Path(__file__).resolve().parent / "results"


# ----- arguments ---------------------------------------------------------------------------
def parse_args(description: str, argv: Sequence[str] | None, full_seeds: int = 5,
               quick_seeds: int = 2) -> argparse.Namespace:
    """The common command line: ``--quick``, ``--seeds N``, ``--out DIR``, ``--no-plot``.

    ``args.seed_list`` holds the seeds to run (0..N-1).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run (seconds): fewer seeds, epochs and samples")
    parser.add_argument("--seeds", type=int, default=None,
                        help=f"number of seeds (default {full_seeds}, {quick_seeds} with --quick)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the JSON and PNG (default examples/claims/results, "
                             "or results/quick with --quick)")
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    args = parser.parse_args(list(argv) if argv is not None else None)
    n = args.seeds if args.seeds is not None else (quick_seeds if args.quick else full_seeds)
    if n < 1:
        parser.error(f"--seeds must be at least 1, got {n}")
    args.seed_list = list(range(n))
    if args.out is None:
        args.out = RESULTS / "quick" if args.quick else RESULTS
    return args


# ----- features that may not exist yet ----------------------------------------------------
MISSING_FEATURE_EXIT = 3


def require(*paths: str) -> None:
    """Exit with status 3 and a clear line when a needed nurinet feature is not there yet.

    Args:
        *paths: Dotted names such as ``"nurinet.nn.BatchNorm1d"``.
    """
    import importlib

    missing = []
    for path in paths:
        module, _, attr = path.rpartition(".")
        try:
            if not hasattr(importlib.import_module(module), attr):
                missing.append(path)
        except ImportError:
            missing.append(path)
    if missing:
        print(f"this experiment needs {', '.join(missing)}, which nurinet does not have yet")
        raise SystemExit(MISSING_FEATURE_EXIT)


# ----- statistics and verdicts -------------------------------------------------------------
def summary(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation, min and max of per-seed values."""
    a = np.asarray(values, dtype=np.float64)
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return {"mean": float(a.mean()), "std": std, "min": float(a.min()), "max": float(a.max()),
            "n": int(a.size)}


def paired_effect(better: Sequence[float], worse: Sequence[float],
                  higher_is_better: bool = True) -> dict[str, float]:
    """How much ``better`` beats ``worse``, seed by seed (same seed = same data and init).

    Returns the mean and standard deviation of the per-seed advantage (positive
    when the claim's direction holds) and the fraction of seeds where it holds.
    """
    b, w = np.asarray(better, dtype=np.float64), np.asarray(worse, dtype=np.float64)
    advantage = (b - w) if higher_is_better else (w - b)
    std = float(advantage.std(ddof=1)) if advantage.size > 1 else 0.0
    return {"mean_advantage": float(advantage.mean()), "std_advantage": std,
            "seeds_agreeing": float((advantage > 0).mean()), "n": int(advantage.size)}


def strength(effect: dict[str, float], min_effect: float) -> str:
    """Grade a paired effect: ``strong``, ``moderate``, ``weak`` or ``none``.

    strong: every seed agrees and the mean advantage is at least ``min_effect``
    and at least twice its seed-to-seed standard deviation. moderate: the mean
    advantage is at least ``min_effect`` and at least 2/3 of the seeds agree.
    weak: the mean advantage is positive but smaller, or too few seeds agree.
    none: the mean advantage is zero or negative.
    """
    mean, std, agree = effect["mean_advantage"], effect["std_advantage"], effect["seeds_agreeing"]
    if mean <= 0:
        return "none"
    if mean >= min_effect and agree == 1.0 and mean >= 2 * std:
        return "strong"
    if mean >= min_effect and agree >= 2 / 3:
        return "moderate"
    return "weak"


def verdict(claim: str, held: bool, grade: str, evidence: str) -> dict[str, Any]:
    """The verdict record every result file carries.

    Args:
        claim: The claim as the catalog states it.
        held: Whether the measurements support it (by the script's fixed criterion).
        grade: ``strong``, ``moderate``, ``weak``, ``none`` or ``partial``.
        evidence: One or two sentences with the numbers that decided it.
    """
    word = "HELD" if held else "DID NOT HOLD"
    return {"claim": claim, "held": bool(held), "strength": grade,
            "text": f"{word} ({grade}): {evidence}"}


def effect_verdict(claim: str, effect: dict[str, float], min_effect: float, evidence: str) -> dict:
    """A verdict from one paired effect: held when graded strong or moderate."""
    grade = strength(effect, min_effect)
    return verdict(claim, grade in ("strong", "moderate"), grade, evidence)


# ----- training helpers --------------------------------------------------------------------
def batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled index arrays covering ``range(n)`` once (one epoch of mini-batches)."""
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def train_classifier(model: nt.nn.Module, optimizer: Any, x: np.ndarray, y: np.ndarray,
                     epochs: int, batch_size: int, seed: int,
                     loss_fn: Callable[[Any, Any], Any] | None = None,
                     penalty: Callable[[], Any] | None = None,
                     on_epoch: Callable[[int], None] | None = None) -> list[float]:
    """Mini-batch training; returns the mean training loss of each epoch.

    ``loss_fn(logits, y)`` defaults to cross-entropy; ``penalty()`` (an extra
    scalar such as an L1 term) is added to every batch's loss.
    """
    loss_fn = loss_fn or nt.F.cross_entropy
    rng = np.random.default_rng(10_000 + seed)
    xt, yt = nt.tensor(x), nt.tensor(y)
    losses = []
    for epoch in range(epochs):
        model.train()
        total = 0.0
        for idx in batches(len(x), batch_size, rng):
            loss = loss_fn(model(xt[idx]), yt[idx])
            if penalty is not None:
                loss = loss + penalty()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        losses.append(total / len(x))
        if on_epoch is not None:
            on_epoch(epoch)
    return losses


def predict(model: nt.nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's outputs in eval mode, without a graph, as NumPy."""
    model.eval()
    with nt.no_grad():
        out = to_numpy(model(nt.tensor(x)).array)
    model.train()
    return out


def accuracy(model: nt.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows whose argmax score is the label."""
    return float((predict(model, x).argmax(axis=1) == y).mean())


def digits_split(seed: int, n_train: int | None = None, test_fraction: float = 0.3,
                 val_fraction: float = 0.0) -> dict[str, np.ndarray]:
    """The bundled 8x8 digits in [0, 1], split (stratified) by ``seed``.

    ``n_train`` keeps only that many training samples (for overfitting studies).
    Returns ``x_train, y_train, x_val, y_val, x_test, y_test`` (val empty when 0).
    """
    x, y = nt.data.load_digits(normalize=True)
    (xtr, ytr), (xva, yva), (xte, yte) = nt.data.train_val_test_split(
        x, y, val_fraction=val_fraction, test_fraction=test_fraction, stratify=True,
        generator=nt.Generator(seed))
    if n_train is not None:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    return {"x_train": xtr, "y_train": ytr, "x_val": xva, "y_val": yva, "x_test": xte, "y_test": yte}


# ----- output ------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return round(value, 6)
    return value


class Run:
    """One experiment run: times it, then writes the JSON (and the figure) and prints the verdict.

    Example:
        >>> run = Run("c01_perceptron_xor", args)          # doctest: +SKIP
        >>> run.finish(config, results, verdict, plot=draw)  # doctest: +SKIP
    """

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.name, self.args = name, args
        self.start = time.perf_counter()

    def finish(self, config: dict, results: dict, verdict_record: dict,
               plot: Callable[[Any], None] | None = None, lines: Sequence[str] = ()) -> dict:
        """Write ``<out>/<name>.json`` and ``<name>.png``; print the summary; return the record."""
        out = Path(self.args.out)
        out.mkdir(parents=True, exist_ok=True)
        record = {
            "name": self.name,
            "command": f"python -m examples.claims.{self.name}" + (" --quick" if self.args.quick else ""),
            "quick": bool(self.args.quick),
            "seeds": list(self.args.seed_list),
            "config": config,
            "results": results,
            "verdict": verdict_record,
            "seconds": round(time.perf_counter() - self.start, 1),
            "environment": {"python": platform.python_version(), "numpy": np.__version__,
                            "nurinet": nt.__version__},
            "figure": None,
        }
        if plot is not None and not self.args.no_plot:
            record["figure"] = save_figure(plot, out / f"{self.name}.png")
        (out / f"{self.name}.json").write_text(json.dumps(_jsonable(record), indent=1) + "\n")
        print(f"== {self.name} ({record['seconds']} s, seeds {record['seeds']}) ==")
        for line in lines:
            print(line)
        print(verdict_record["text"])
        where = out / f"{self.name}.json"
        print(f"wrote {where}" + (f" and {record['figure']}" if record["figure"] else
                                  " (no figure: matplotlib is not installed or --no-plot)"))
        return record


def save_figure(plot: Callable[[Any], None], path: Path) -> str | None:
    """Draw with ``plot(fig)`` into a small PNG; None (and a note) when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: writing the JSON only (pip install matplotlib for figures)")
        return None
    fig = plt.figure(figsize=(7.5, 3.4), dpi=90)
    try:
        plot(fig)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
    finally:
        plt.close(fig)
    return path.name
