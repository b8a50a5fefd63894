"""The claim experiments c19-c25 (issue 19) run with a tiny budget and record what they measured.

Each script runs in a subprocess (--quick, one seed, one BLAS thread, no figure)
and writes its JSON to a temporary folder. The test checks the record's
structure and the measurements each script promises, never the verdict.
``tests/test_claims_quick.py`` runs the same scripts for the shape every claim shares.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MISSING_FEATURE_EXIT = 3

# script -> the keys its "results" must hold
EXPECTED = {
    "c19_relu_hidden": ("stats", "effect", "effect_at_5_epochs", "mean_curves", "mean_loss"),
    "c20_mse_mae_outliers": ("stats", "log10_error_effect", "error_ratio_geometric_mean", "per_seed"),
    "c21_too_few_epochs": ("budgets", "stats", "effects_10_vs_1", "grades", "plateau_epochs", "plateau_reached"),
    "c22_batch_size_cost": ("batch_sizes", "stats", "seed_fraction", "per_seed"),
    "c23_more_data": ("stats", "effect_simple_all_vs_better_10pct", "data_gain", "model_gain", "per_seed"),
    "c24_max_norm": ("stats", "gap_effect_with_dropout", "gap_effect_without_dropout",
                     "test_accuracy_change_maxnorm_vs_decay", "main_part_held", "especially_with_dropout"),
    "c25_dbn_pretraining": ("stats", "effect", "mean_curves", "reconstruction_error", "per_seed"),
}


def _run(name: str, out: Path) -> tuple[subprocess.CompletedProcess, dict | None]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", f"examples.claims.{name}", "--quick", "--seeds", "1", "--no-plot", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    path = out / f"{name}.json"
    return proc, (json.loads(path.read_text()) if path.exists() else None)


def test_every_new_script_exists():
    for name in EXPECTED:
        assert (ROOT / "examples" / "claims" / f"{name}.py").is_file(), name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_new_claim_records_its_measurements(name, tmp_path):
    proc, record = _run(name, tmp_path)
    if proc.returncode == MISSING_FEATURE_EXIT:
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert record is not None
    assert record["name"] == name and record["quick"] is True and record["seeds"] == [0]
    assert record["command"] == f"python -m examples.claims.{name} --quick"
    assert "criterion" in record["config"], "the criterion is recorded with the run"
    verdict = record["verdict"]
    assert isinstance(verdict["held"], bool)
    assert verdict["strength"] in ("strong", "moderate", "weak", "none", "partial")
    assert verdict["text"].startswith(("HELD", "DID NOT HOLD")) and verdict["text"] in proc.stdout
    for key in EXPECTED[name]:
        assert key in record["results"], (name, key)
    assert record["figure"] is None  # --no-plot


def _stats_are_finite(stats: dict) -> None:
    for value in stats.values():
        if isinstance(value, dict):
            _stats_are_finite(value)
        elif isinstance(value, float):
            assert math.isfinite(value)


@pytest.mark.parametrize("name", ["c20_mse_mae_outliers", "c22_batch_size_cost"])
def test_new_claim_measurements_are_sane(name, tmp_path):
    proc, record = _run(name, tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = record["results"]
    _stats_are_finite(results["stats"])
    if name == "c22_batch_size_cost":
        assert results["batch_sizes"] == [16, 64, 256]
        for b in ("16", "64", "256"):
            assert results["stats"][b]["seconds_per_epoch"]["mean"] > 0
            assert results["stats"][b]["peak_step_bytes"]["mean"] > 0
    else:
        for key in ("MSE clean", "MAE clean", "MSE outliers", "MAE outliers"):
            assert results["stats"][key]["error"]["mean"] >= 0
