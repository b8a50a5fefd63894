"""Forecast a noisy seasonal signal one step ahead with an LSTM, against a naive baseline.

Data (generated here, seeded): ``x_t = sin(2 pi t / 24) + 0.5 sin(2 pi t / 100) + 0.002 t
+ 0.3 e_t`` with e_t ~ N(0, 1): a daily-like cycle, a slower cycle, a drift and noise. Each
sample is a window of the last 48 values; the target is the next value. The first 80% of the
series (in time) trains, the last 20% tests; the inputs are standardized with the training
mean and standard deviation.

Models: ``SequenceClassifier(kind="lstm", num_classes=1)`` (one LSTM layer of 32 units, a
linear head on the last step), trained with Adam on the mean squared error, against the naive
forecast "the next value equals the last one" (and, for context, the seasonal naive forecast
"the value one period, 24 steps, ago"). The test MSE of each is reported in the signal's units.

Usage::

    python examples/time_series_forecast.py            # full run (3,000 points, 30 epochs)
    python examples/time_series_forecast.py --quick    # smoke test (seconds)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that the example runs from a checkout without installing nurinet

import nurinet as nt
from examples import _common as common
from nurinet.models import SequenceClassifier

WINDOW, PERIOD = 48, 24


def make_series(n: int, seed: int) -> np.ndarray:
    """The noisy seasonal series (float32, length n)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    x = np.sin(2 * np.pi * t / PERIOD) + 0.5 * np.sin(2 * np.pi * t / 100) + 0.002 * t
    return (x + 0.3 * rng.standard_normal(n)).astype(np.float32)


def windows(series: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``(window,)`` inputs and the value that follows each: ``(M, window, 1)`` and ``(M,)``."""
    index = np.arange(window)[None, :] + np.arange(len(series) - window)[:, None]
    return series[index][:, :, None], series[window:]


def split(series: np.ndarray, window: int) -> tuple[np.ndarray, ...]:
    """Chronological 80/20 split of the windows; the test windows only look at test-time targets."""
    x, y = windows(series, window)
    cut = int(0.8 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def train_lstm(x_train: np.ndarray, y_train: np.ndarray, args: argparse.Namespace) -> tuple[Any, list[float]]:
    """Fit the LSTM regressor; return it and the mean training loss of each epoch."""
    nt.manual_seed(args.seed)
    model = SequenceClassifier("lstm", num_classes=1, input_size=1, hidden_size=args.hidden)
    opt = nt.optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    curve = []
    for epoch in range(args.epochs):
        order, total = rng.permutation(len(x_train)), 0.0
        for start in range(0, len(order), args.batch_size):
            idx = order[start:start + args.batch_size]
            loss = nt.F.mse_loss(model(nt.tensor(x_train[idx])).reshape(-1), nt.tensor(y_train[idx]))
            opt.zero_grad()
            loss.backward()
            nt.nn.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss.item()) * len(idx)
        curve.append(total / len(x_train))
        print(f"  epoch {epoch + 1}: train MSE (standardized) {curve[-1]:.4f}", flush=True)
    return model, curve


def predict(model: Any, x: np.ndarray, batch: int = 512) -> np.ndarray:
    model.eval()
    with nt.no_grad():
        return np.concatenate([model(nt.tensor(x[i:i + batch])).numpy().reshape(-1)
                               for i in range(0, len(x), batch)])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--length", type=int, default=3000, help="points in the series")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    common.add_run_options(parser, seed="the data, initialization and shuffling",
                           quick="400 points, 2 epochs, 16 units", out="time_series_forecast[_quick].json")
    args = parser.parse_args(argv)
    if args.quick:
        args.length, args.epochs, args.hidden = 400, 2, 16
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    series = make_series(args.length, args.seed)
    x_train, y_train, x_test, y_test = split(series, WINDOW)
    mean, std = float(x_train.mean()), float(x_train.std())
    print(f"Forecast: {len(x_train)} training and {len(x_test)} test windows of {WINDOW} steps", flush=True)
    start = time.perf_counter()
    model, curve = train_lstm((x_train - mean) / std, (y_train - mean) / std, args)
    lstm = predict(model, (x_test - mean) / std) * std + mean
    result = {
        "config": common.config(args) | {"window": WINDOW},
        "train_loss_curve": curve,
        "seconds": round(time.perf_counter() - start, 2),
        "test_mse": {
            "lstm": float(np.mean((lstm - y_test) ** 2)),
            "naive_last_value": float(np.mean((x_test[:, -1, 0] - y_test) ** 2)),
            "seasonal_naive": float(np.mean((x_test[:, -PERIOD, 0] - y_test) ** 2)),
        },
        "noise_variance": 0.09,
    }
    for name, mse in result["test_mse"].items():
        print(f"test MSE {name:17s} {mse:.4f}")
    print("(the noise alone has variance 0.09: no forecast can do better on average)")
    out = common.write_result(result, args.out, common.result_name("time_series_forecast", args.quick))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
