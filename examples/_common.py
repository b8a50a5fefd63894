"""What the example scripts share: the MNIST split, the run options, BLAS threads and the JSON result.

An example puts the repository root on ``sys.path`` (so that it runs from a checkout without installing
nurinet), then imports this module as ``examples._common``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

import nurinet
from nurinet import threads
from nurinet.data import load_mnist, train_val_test_split

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "examples" / "results"
DEFAULT_MNIST = ROOT.parent / "shared" / "datasets" / "mnist"
MNIST_SPLIT = "t10k split 8000/2000 by train_val_test_split(test_fraction=0.2, Generator(seed))"
SMALL_STEPS = "the matrices of one step are small, and one thread was faster on a busy 2-core machine"


def load_mnist_split(path: Path, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 8,000 / 2,000 split of the 10,000 MNIST test images ("t10k"; float32 in [0, 1], NCHW).

    ``(x_train, y_train, x_test, y_test)``, split once by ``train_val_test_split(..., test_fraction=0.2,
    generator=nurinet.Generator(seed))``, so every example and run with the same seed sees the same split.
    """
    x, y = load_mnist(path, kind="t10k")
    (x_train, y_train), _, (x_test, y_test) = train_val_test_split(
        x, y, val_fraction=0.0, test_fraction=0.2, generator=nurinet.Generator(seed))
    return x_train, y_train, x_test, y_test


def add_run_options(parser: argparse.ArgumentParser, *, seed: str, quick: str, out: str,
                    threads_help: str | None = None) -> None:
    """Adds ``--seed`` (default 0), ``--threads`` (default 1, when ``threads_help`` is given), ``--quick``
    and ``--out``: ``seed`` says what the seed drives, ``quick`` what the smoke test runs and ``out`` the
    default file name under ``examples/results/``."""
    parser.add_argument("--seed", type=int, default=0, help=f"seed of {seed}")
    if threads_help is not None:
        parser.add_argument("--threads", type=int, default=1, help=f"BLAS threads (0: leave as is); {threads_help}")
    parser.add_argument("--quick", action="store_true", help=f"smoke test: {quick}")
    parser.add_argument("--out", default=None, help=f"JSON result (default examples/results/{out})")


def blas_threads(n: int) -> contextlib.AbstractContextManager:
    """``threads.limit_threads(n)``, or nothing for ``n <= 0`` (the BLAS thread count is left as it is)."""
    return threads.limit_threads(n) if n > 0 else contextlib.nullcontext()


def config(args: argparse.Namespace, leave_out: Iterable[str] = ("out",)) -> dict[str, Any]:
    """The run's options for the JSON result, without those in ``leave_out`` (paths, by default ``--out``)."""
    skip = set(leave_out)
    return {k: v for k, v in vars(args).items() if k not in skip}


def runtime() -> dict[str, Any]:
    """How nurinet ran, for the JSON result: whether the C kernels were on (the default wherever a C
    compiler builds them; ``NURINET_NATIVE=0`` turns them off), the matrix-product provider (``auto``
    picks MKL when it is installed, else nurinet's own GEMM on CPUs with AVX-512) and the ``NURINET_*`` environment variables set. The fast and the
    reference paths agree up to float rounding, so a run that feeds its outputs back (an RL agent, a
    long training) can follow a different trajectory on each: a stored result names its path here."""
    from nurinet import _native, gemm

    reason = _native.reason()
    return {
        "native_kernels": "on" if not reason else f"off: {reason}",
        "matmul_provider": gemm.provider(),
        "environment": {name: value for name, value in sorted(os.environ.items()) if name.startswith("NURINET_")},
        "numpy": np.__version__,
    }


def result_name(stem: str, quick: bool) -> str:
    """``stem.json``, or ``stem_quick.json`` for a smoke test."""
    return f"{stem}{'_quick' if quick else ''}.json"


def result_path(out: str | None, name: str) -> Path:
    """``out``, or ``examples/results/name``, with its folder made."""
    path = Path(out) if out else RESULTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_json(result: dict[str, Any], path: Path) -> Path:
    """Writes ``result`` to ``path`` as indented JSON and returns ``path``."""
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def write_result(result: dict[str, Any], out: str | None, name: str) -> Path:
    """Writes ``result`` as JSON to ``out``, or to ``examples/results/name``, with :func:`runtime`'s record
    under ``"runtime"`` (unless ``result`` has one); returns the path."""
    if "runtime" not in result:
        result = {**result, "runtime": runtime()}
    return write_json(result, result_path(out, name))


def digits_split(seed: int, train_fraction: float = 0.7) -> dict[str, np.ndarray]:
    """The bundled digits (scaled to [0, 1]) split by image into training and held-out parts."""
    x, y = nurinet.data.load_digits(normalize=True)
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y)
    order = nurinet.Generator(seed).np.permutation(len(x))
    cut = int(train_fraction * len(x))
    train, test = order[:cut], order[cut:]
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def pca_basis(x_train: np.ndarray, components: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, axes)``: the mean of ``x_train`` and its first ``components`` principal axes (rows)."""
    mean = x_train.mean(axis=0)
    _, _, vt = np.linalg.svd(x_train - mean, full_matrices=False)
    return mean, vt[:components]


def pca_codes(x_train: np.ndarray, x: np.ndarray, components: int) -> np.ndarray:
    """``x`` projected on the first ``components`` principal axes of ``x_train`` (a linear baseline)."""
    mean, axes = pca_basis(x_train, components)
    return (x - mean) @ axes.T


def stop_at_mean(agent: Any, window: int, target: float, seconds: float, every: int,
                 value_format: str = "6.1f") -> Any:
    """A ``stop(returns)`` for ``agent.train``: True once the mean of the last ``window`` returns
    reaches ``target`` or ``seconds`` have passed; prints progress every ``every`` episodes."""
    start = time.perf_counter()

    def stop(returns: list[float]) -> bool:
        mean = float(np.mean(returns[-window:]))
        done = len(returns) >= window and mean >= target
        if len(returns) % every == 0 or done:
            print(f"episode {len(returns):5d}  steps {agent.steps:6d}  epsilon {agent.epsilon:.2f}  "
                  f"mean of last {window}: {mean:{value_format}}  {time.perf_counter() - start:5.1f} s", flush=True)
        return done or time.perf_counter() - start > seconds

    return stop
